"""Per-step rows: the result's own, or derived from the plan's stages and the time series."""
from surge.core._histogram import Histogram
from surge.report.steps import derived_steps, steps_of
from tests.helpers import run_surge
from tests.report.synthetic import make_result


def staged(result: dict, stages: list[dict], start: float = 0.0) -> dict:
    result = dict(result)
    result["config"] = {**result["config"], "stages": stages, "start": start}
    result.pop("steps", None)
    return result


def test_explicit_steps_win():
    result = make_result(10, seed=1)
    assert steps_of(result) == result["steps"]


def test_derived_from_stages_cover_every_second_once():
    result = staged(make_result(30, seed=2), [{"duration_s": 10.0, "target": 2000.0},
                                              {"duration_s": 20.0, "target": 4000.0}], start=1000.0)
    rows = steps_of(result)
    assert [r["name"] for r in rows] == ["1: 1000->2000 over 10s", "2: 2000->4000 over 20s"]
    assert sum(r["requests"] for r in rows) == result["totals"]["requests"]
    assert rows[0]["target (req/s)"] == "1000->2000"
    assert sum(r["dropped"] for r in rows) == result["totals"]["dropped"]
    # Exact percentiles: the merged histograms of the step's own seconds.
    second_half = Histogram()
    for point in result["timeseries"][10:]:
        second_half.add(Histogram.decode(point["hdr"]))
    assert rows[1]["latency"]["percentiles"]["99"] == second_half.value_at_percentile(99)
    assert rows[1]["rps"] == round(rows[1]["requests"] / 20, 3)


def test_no_stages_no_steps():
    assert derived_steps(make_result(3, seed=1, steps=False)) == []


def test_real_closed_model_stages(surge_server):
    server = surge_server()
    run = run_surge("run", server.url, "--stages", "1s:2,1s:4", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    rows = steps_of(run.result)
    assert len(rows) == 2 and rows[1]["target (connections)"] == "2->4"
    assert sum(r["requests"] for r in rows) == run.result["totals"]["requests"]
    assert all(r["latency"]["percentiles"]["50"] > 0 for r in rows)
