"""The terminal summary, live progress and CSV at their edges: short runs and the
saturation claim (issue 9 item 7), plurals, a run without responses, queued
requests, rates, labels and units."""
import csv
import io
import re

import pytest

from surge.report.csv_export import write_csv
from surge.report.live import LiveProgress
from surge.report.numbers import client_cpu_by_worker, format_rate, saturated_workers
from surge.report.summary import render_summary
from tests.helpers import run_surge
from tests.report.synthetic import make_result


def _cpu(result: dict, percents: list[float | None]) -> dict:
    """Worker 0's per-second CPU samples (worker 1 idle)."""
    for point, percent in zip(result["timeseries"], percents):
        point["workers"] = [{"index": 0, "cpu_percent": percent, "rss_kb": 1},
                            {"index": 1, "cpu_percent": 10.0, "rss_kb": 1}]
    return result


# ---- item 7: saturation on steady seconds only ------------------------------------------------
def test_start_up_second_and_partial_last_second_make_no_claim():
    result = _cpu(make_result(2, model="closed"), [1282.0, 228.0])
    result["timeseries"][-1]["t"] = 1.4                  # the last second is partial
    assert client_cpu_by_worker(result) == {} and saturated_workers(result) == []
    assert "bottleneck" not in render_summary(result)


def test_no_claim_without_per_second_samples_even_if_usage_says_so():
    result = make_result(3, model="closed", per_point_workers=False)
    result["resources"]["workers"] = [{"index": 0, "user_s": 30.0, "sys_s": 9.0, "max_rss_kb": 1}]
    assert saturated_workers(result) == [] and "bottleneck" not in render_summary(result)


def test_steady_saturation_is_claimed_and_capped_at_one_core():
    result = _cpu(make_result(5, model="closed"), [900.0, 97.0, 130.0, 125.0, 300.0])
    result["timeseries"][-1]["t"] = 4.5                  # partial: its 300% is left out
    assert saturated_workers(result) == [(0, 1.0)]       # median of 97, 130, 125 -> 125 -> capped
    text = render_summary(result)
    assert "worker 0 at 100% of a core" in text and "worker 1" not in text.split("bottleneck")[1]


@pytest.mark.parametrize("count", ["1", "100"])
def test_short_real_runs_claim_no_bottleneck(surge_server, count):
    """Before: `-n 1` said 1282% of a core, `-n 100` 228% (start-up CPU over a few ms)."""
    server = surge_server()
    run = run_surge("run", server.url, "-n", count, "-q")
    assert run.code == 0, run.stderr
    assert "bottleneck" not in run.stdout
    assert all(w["cpu_percent"] is None or w["cpu_percent"] >= 0
               for p in run.result["timeseries"] for w in p.get("workers", []))


# ---- summary edges ------------------------------------------------------------------------------
def _single(result: dict) -> dict:
    result["config"].update({"workers": 1, "connections": 1, "requests": 1, "duration_s": None})
    result["totals"]["requests"] = 1
    return result


def test_singular_and_plural():
    text = render_summary(_single(make_result(1, model="closed", steps=False, scenarios=False)))
    assert "1 request, 1 connection, 1 worker," in text and "1 request in" in text
    assert "1 workers" not in text and "1 requests" not in text and "1 connections" not in text
    text = render_summary(make_result(2, model="closed", steps=False, scenarios=False))
    assert "64 connections, 2 workers" in text


def test_every_request_failed_shows_no_responses():
    result = make_result(2, model="open", steps=False, scenarios=False)
    empty = {"unit": "us", "count": 0, "min": 0, "mean": 0.0, "stdev": 0.0, "max": 0,
             "percentiles": {"50": 0, "99": 0}, "hdr": ""}
    result["latency"] = result["latency_uncorrected"] = empty
    result["totals"].update({"requests": 0, "responses_by_status": {}, "errors": {"timeout": 40},
                             "failed": {"count": 40, "by_reason": {"timeout": 40}}})
    text = render_summary(result)
    assert text.count("no responses") == 2 and not re.search(r"(?<![\d.])0\.00us", text)
    assert "Failed: 40 (100.00%) — timeout: 40" in text


def test_failed_line_most_frequent_reason_first_and_none():
    result = make_result(2, model="closed", steps=False, scenarios=False)
    result["totals"]["failed"] = {"count": 100, "by_reason": {"timeout": 2, "status 500": 98}}
    result["totals"]["requests"], result["totals"]["errors"] = 98, {"timeout": 2}
    assert "  Failed: 100 (100.00%) — status 500: 98, timeout: 2" in render_summary(result).splitlines()
    result["totals"]["failed"] = {"count": 0, "by_reason": {}}
    assert "  Failed: none" in render_summary(result).splitlines()


def test_queued_at_the_stop_is_warned_about():
    result = make_result(1, model="open", steps=False, scenarios=False)
    result["totals"].update({"due": 1_000_000, "dropped": 0, "queued_at_stop": 943_000})
    text = render_summary(result)
    assert "WARNING: 943,000 requests were due but still QUEUED at the stop" in text
    result["totals"]["queued_at_stop"] = 0
    assert "QUEUED" not in render_summary(result)


def test_address_used_is_shown_when_known():
    result = make_result(1, model="closed", steps=False, scenarios=False)
    result["config"].update({"url": "http://localhost:8082/", "address": "127.0.0.1:8082"})
    assert "  Target: http://localhost:8082/ (127.0.0.1:8082)" in render_summary(result).splitlines()


def test_step_and_scenario_tables_show_failed():
    result = make_result(2, model="closed")
    for step in result["steps"]:
        step.update({"scenario": "s", "step": step["name"], "errors": {"timeout": 0}, "check_failures": 0,
                     "responses_by_status": {"200": step["requests"] - 10, "404": 10},
                     "failed": {"count": 10, "by_reason": {"status 404": 10}}})
        step["latency"].setdefault("count", step["requests"])
    result["steps"][0]["latency"]["count"] = 0           # a step with no response: no latencies
    text = render_summary(result)
    header = next(line for line in text.splitlines() if line.startswith("  Steps"))
    assert "failed" in header
    row = next(line for line in text.splitlines() if line.startswith("  s/warm"))
    assert " 10 " in row and "%" in row and row.count(" - ") >= 1


@pytest.mark.parametrize("rate, shown", [(68737.0, "68,737"), (100.0, "100"), (40.5, "40.5"), (5.0, "5.0"),
                                         (None, "-")])
def test_rates(rate, shown):
    assert format_rate(rate) == shown


# ---- live progress ------------------------------------------------------------------------------
def test_plain_live_has_a_banner_and_shows_the_last_second():
    result = make_result(3, model="open")
    result["timeseries"][-1]["t"] = 2.5
    out = io.StringIO()
    progress = LiveProgress(result["config"], stream=out)
    for k, point in enumerate(result["timeseries"][:-1], 1):     # the last came only with the final reports
        progress.update(k, point)
    progress.finish(result)
    progress.close()
    banner, *lines = out.getvalue().splitlines()
    assert banner.startswith("surge ") and "GET http://127.0.0.1:8080/api?q=1" in banner
    assert len(lines) == 3 and lines[-1].strip().startswith("2.500s/3s")
    dropped = [p["dropped"] for p in result["timeseries"]]
    assert f"dropped {dropped[0]} this second, {dropped[0]} in all" in lines[0]
    assert f"dropped {dropped[2]} this second, {sum(dropped)} in all" in lines[2]


def test_plan_live_target_is_iterations():
    out = io.StringIO()
    progress = LiveProgress({"model": "open", "plan": "shop", "duration_s": 10, "rate": 40}, stream=out)
    progress.update(1, {"t": 1.0, "requests": 105, "errors": 0, "failed": 3, "p50": 1, "p99": 2, "max": 3,
                        "target": 40.0, "dropped": 0})
    line = out.getvalue().splitlines()[-1]
    assert "105 req/s" in line and "target 40.0 iterations/s" in line and "failed 3 (2.9%)" in line


def test_live_cpu_never_above_one_core():
    out = io.StringIO()
    progress = LiveProgress({"model": "closed", "duration_s": 5}, stream=out)
    progress.update(1, {"t": 1.0, "requests": 5, "errors": 0, "p50": 1, "p99": 2, "max": 3,
                        "workers": [{"index": 0, "cpu_percent": 1282.0}]})
    assert "w0:100%" in out.getvalue()


# ---- CSV ----------------------------------------------------------------------------------------
def test_csv_latency_columns_carry_their_unit_and_steps_their_failed(tmp_path):
    result = make_result(3, model="open")
    for point in result["timeseries"]:
        point["failed"] = point["errors"] + point["statuses"]["404"]
    result["steps"][0]["failed"] = {"count": 7, "by_reason": {"status 404": 5, "timeout": 2}}
    result["steps"][0]["errors"] = {"timeout": 2}
    write_csv(result, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"p50_us", "p99_us", "max_us", "p99_uncorrected_us", "failed"} <= set(rows[0])
    assert not {"p50", "p99", "max"} & set(rows[0])
    assert [int(r["failed"]) for r in rows] == [p["failed"] for p in result["timeseries"]]
    with open(tmp_path / "r.steps.csv", newline="") as f:
        steps = list(csv.DictReader(f))
    assert "latency_p99_us" in steps[0] and "latency_p99" not in steps[0]
    assert steps[0]["failed"] == "7" and steps[0]["failed_status_404"] == "5" and steps[0]["failed_timeout"] == "2"
    attempts = result["steps"][0]["requests"] + 2
    assert float(steps[0]["error_rate"]) == pytest.approx(7 / attempts)


def test_live_second_without_responses_shows_no_latency():
    out = io.StringIO()
    progress = LiveProgress({"model": "closed", "duration_s": 5}, stream=out)
    progress.update(1, {"t": 1.0, "requests": 0, "errors": 4, "failed": 4, "p50": 0, "p99": 0, "max": 0})
    line = out.getvalue().splitlines()[-1]
    assert "0us" not in line and "p50        -" in line and "failed 4 (100.0%)" in line


def test_plain_banner_waits_for_the_first_second(surge_server):
    """A run refused before its start ends in its one-line error alone (no banner before it)."""
    from tests.helpers import assert_one_line_error
    server = surge_server()
    port = server.port
    server.stop()
    run = run_surge("run", f"http://127.0.0.1:{port}/", "-d", "1s", json_result=False)
    assert_one_line_error(run, 1, "connection refused")


# ---- one duration formatter (issue 10 item 8): the summary's fixed style and the others' ------
@pytest.mark.parametrize("value_us, fixed, short", [
    (0, "0.00us", "0us"), (412, "412.00us", "412us"), (412.5, "412.50us", "412.5us"),
    (999.99, "999.99us", "1000.0us"), (1000, "1.00ms", "1.00ms"), (1250, "1.25ms", "1.25ms"),
    (999_999, "1000.00ms", "1000.00ms"), (2_100_000, "2.10s", "2.10s"), (None, "-", "-"),
])
def test_duration_formats(value_us, fixed, short):
    from surge.report.numbers import format_us
    assert format_us(value_us, us_digits=2) == fixed and format_us(value_us) == short


def test_summary_latencies_keep_wrks_fixed_columns():
    result = make_result(2, model="closed")
    result["latency"].update({"min": 412, "mean": 412.5, "stdev": 12, "max": 2_100_000})
    line = next(line for line in render_summary(result).splitlines() if "412.00us" in line)
    assert line.split() == ["412.00us", "412.50us", "12.00us", "2.10s"]
