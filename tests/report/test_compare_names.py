"""`surge compare` matches plan steps by `scenario/step` name, tests them on
their own seconds (`step_timeseries`), and says which steps exist in one run only."""
import json

import numpy as np
import pytest

from surge.core._histogram import Histogram
from surge.report.compare import compare
from surge.run.merge import latency_summary
from tests.report.synthetic import make_result


def plan_result(seed: int, steps: dict[str, float], seconds: int = 20, per_second: int = 200,
                with_step_series: bool = True) -> dict:
    """A plan-shaped result: `steps` maps "scenario/step" to its median latency (µs),
    in the order the result lists them; each step has its own per-second histograms."""
    rng = np.random.default_rng(seed)
    result = make_result(seconds, seed=seed, model="closed", steps=False, scenarios=False, objectives=False)
    result["steps"], series = [], []
    for key, median_us in steps.items():
        scenario, step = key.split("/")
        total, points = Histogram(), []
        for k in range(1, seconds + 1):
            second = Histogram()
            n = int(rng.normal(per_second, per_second * 0.03))
            second.record_many(np.maximum(rng.lognormal(np.log(median_us), 0.4, n), 1).astype(np.int64))
            total.add(second)
            points.append({"t": float(k), "requests": n, "errors": 0, "failed": 0, "hdr": second.encode()})
        requests = sum(p["requests"] for p in points)
        result["steps"].append({"scenario": scenario, "step": step, "requests": requests,
                                "responses_by_status": {"200": requests},
                                "errors": {"timeout": 0}, "failed": {"count": 0, "by_reason": {}},
                                "latency": latency_summary(total)})
        series.append({"scenario": scenario, "step": step, "points": points})
    if with_step_series:
        result["step_timeseries"] = series
    names = list(dict.fromkeys(key.split("/")[0] for key in steps))
    result["scenarios"] = [{"name": name, "weight": 1, "requests": 0} for name in names]
    return result


BASE = {"shop/login": 1000.0, "shop/cart": 3000.0, "browse/search": 8000.0}


def step_metric(comparison, scope, name="p50"):
    return next(m for m in comparison.metrics if m.scope == scope and m.name == name)


def test_reordered_scenarios_compare_the_same_steps():
    baseline = plan_result(1, BASE)
    # The current plan lists browse first, and only browse/search got slower.
    current = plan_result(2, {"browse/search": 8000.0 * 1.5, "shop/login": 1000.0, "shop/cart": 3000.0})
    comparison = compare(baseline, current)
    assert {m.scope for m in comparison.metrics} == {"run", "shop/login", "shop/cart", "browse/search"}
    search = step_metric(comparison, "browse/search")
    assert search.baseline == baseline["steps"][2]["latency"]["percentiles"]["50"]
    assert search.regression and search.change == pytest.approx(0.5, abs=0.1)
    assert not step_metric(comparison, "shop/login").regression
    assert abs(step_metric(comparison, "shop/login").change) < 0.1       # not login against search
    text = comparison.render()
    assert "step browse/search" in text and "step shop/login" in text
    assert "p50 (browse/search)" in text.splitlines()[-1]


def test_per_step_rows_are_tested_on_the_steps_own_seconds():
    comparison = compare(plan_result(1, BASE), plan_result(2, BASE))
    for scope in ("shop/login", "shop/cart", "browse/search"):
        for name in ("requests/s", "p50", "p99"):
            m = step_metric(comparison, scope, name)
            assert m.samples == (20, 20) and m.p_value is not None and not m.untested, m
    assert "not tested" not in comparison.render()


def test_steps_in_one_run_only_are_named():
    baseline = plan_result(1, {**BASE, "admin/report": 500.0})
    current = plan_result(2, {"shop/login": 1000.0, "shop/cart": 3000.0, "browse/search": 8000.0,
                              "shop/checkout": 4000.0})
    comparison = compare(baseline, current)
    assert comparison.only_in_baseline == ["step admin/report", "scenario admin"]
    assert comparison.only_in_current == ["step shop/checkout"]
    text = comparison.render()
    assert "only in the baseline (not compared): step admin/report, scenario admin" in text
    assert "only in the current run (not compared): step shop/checkout" in text
    assert "admin/report" not in {m.scope for m in comparison.metrics}


def test_a_file_without_step_samples_says_why_in_the_row():
    comparison = compare(plan_result(1, BASE, with_step_series=False), plan_result(2, BASE))
    m = step_metric(comparison, "shop/login")
    assert m.p_value is None and not m.significant
    assert "no per-step per-second samples" in m.untested and "in the baseline" in m.untested
    assert m.untested in comparison.render()


def test_step_requests_per_second_is_the_steps_own_rate():
    result = plan_result(1, BASE)
    comparison = compare(result, plan_result(2, BASE))
    rate = step_metric(comparison, "shop/cart", "requests/s")
    assert rate.baseline == pytest.approx(result["steps"][1]["requests"] / result["totals"]["duration_s"])


def test_failed_statuses_count_in_the_error_rate():
    """Every request answered 500: no transport error, yet every one failed."""
    baseline = make_result(20, seed=1, model="closed", error_every=0, steps=False)
    current = make_result(20, seed=2, model="closed", error_every=0, steps=False)
    baseline["totals"]["failed"] = {"count": 0, "by_reason": {}}       # both written under the rule
    for point in baseline["timeseries"]:
        point["failed"] = 0
    for point in current["timeseries"]:
        point["failed"] = point["requests"]
    failed = sum(p["failed"] for p in current["timeseries"])
    current["totals"]["failed"] = {"count": failed, "by_reason": {"status 500": failed}}
    current["totals"]["error_rate"] = 1.0
    comparison = compare(baseline, current)
    rate = next(m for m in comparison.metrics if m.scope == "run" and m.name == "error rate")
    assert rate.current == pytest.approx(1.0) and rate.regression


def test_a_file_from_before_the_failed_rule_is_not_a_regression_against_itself():
    """A run answered 404 throughout, compared with the same run as an older surge
    wrote it (no `failed`): the error rates must compare the same thing."""
    current = make_result(20, seed=2, model="closed", error_every=0, steps=False)
    for point in current["timeseries"]:
        point["failed"] = point["requests"]
    failed = sum(p["failed"] for p in current["timeseries"])
    current["totals"]["failed"] = {"count": failed, "by_reason": {"status 404": failed}}
    current["totals"]["error_rate"] = 1.0
    old = json.loads(json.dumps(current))
    del old["totals"]["failed"], old["totals"]["error_rate"]
    for point in old["timeseries"]:
        del point["failed"]
    comparison = compare(old, current)
    rate = next(m for m in comparison.metrics if m.scope == "run" and m.name == "error rate")
    assert not rate.regression and rate.baseline == rate.current
    assert any("predates the failed-request rule" in note for note in comparison.notes)


# ---- end to end: real plans against `surge serve --app demo` -----------------------------------
PLAN = """name: shop-{tag}
target: {url}
load: {{model: closed, vus: 4, duration: 3s}}
scenarios:
{scenarios}
"""
SEARCH = """  - name: browse
    steps:
      - {name: search, request: "GET /search?q=x"}
      - {name: item, request: "GET /items/7"}
"""
ADMIN = """  - name: admin
    steps:
      - {name: report, request: GET /admin/report}
"""
MISSING = """  - name: lost
    steps:
      - {name: gone, request: GET /no-such-page}
"""


def test_real_plans_in_another_order_compare_by_name(surge_server, tmp_path):
    from tests.helpers import run_surge, run_surge_together
    # The two plans run at once, each against its own demo app: what is asserted is
    # which steps match by name and that each has its own seconds, not their speeds.
    files, plans = {}, {}
    for tag, scenarios in (("a", SEARCH + ADMIN + MISSING), ("b", ADMIN + SEARCH)):
        server = surge_server(app="demo")
        plans[tag] = tmp_path / f"{tag}.yaml"
        plans[tag].write_text(PLAN.format(tag=tag, url=server.url.rstrip("/"), scenarios=scenarios))
    runs = run_surge_together(*[["run", str(plan), "-w", "1", "-q"] for plan in plans.values()])
    for tag, run in zip(plans, runs):
        assert run.result is not None, run.stderr
        files[tag] = tmp_path / f"{tag}.json"
        files[tag].write_text(json.dumps(run.result))
        assert [s["step"] for s in run.result["step_timeseries"]] == [s["step"] for s in run.result["steps"]]
    compared = run_surge("compare", str(files["a"]), str(files["b"]), json_result=False)
    # The whole runs differ (a's third scenario only gets 404s): the gate may well say so (3).
    assert compared.code in (0, 3, 4) and not compared.stderr, compared.stdout + compared.stderr
    text = compared.stdout
    for name in ("step browse/search", "step browse/item", "step admin/report"):
        assert name in text
    assert "only in the baseline (not compared): step lost/gone, scenario lost" in text
    assert "not tested" not in text                 # every step has its own seconds
    comparison = compare(json.loads(files["a"].read_text()), json.loads(files["b"].read_text()))
    for scope in ("browse/search", "admin/report"):
        m = step_metric(comparison, scope, "requests/s")
        assert min(m.samples) >= 3, m
