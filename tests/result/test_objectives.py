"""Objectives evaluated on a result dict (surge.result.objectives): each metric,
the step and scenario filters, and the failed-request rule shared with the
reports (surge.result.failed)."""
import pytest

from surge.core._histogram import Histogram
from surge.plan.objective import parse_objective
from surge.result.failed import error_rate
from surge.result.objectives import evaluate, measure
from surge.run.merge import latency_summary


def latency(*values_us: int) -> dict:
    hist = Histogram()
    for value in values_us:
        hist.record(value)
    return latency_summary(hist)


def step(scenario, name, requests, errors, failed, checks=0, check_failures=0, lat=(1000,)):
    return {"scenario": scenario, "step": name, "requests": requests, "responses_by_status": {"200": requests},
            "errors": {"connect": 0, "timeout": errors}, "failed": {"count": failed, "by_reason": {}},
            "checks": checks, "check_failures": check_failures, "latency": latency(*lat)}


@pytest.fixture
def result():
    steps = [step("browse", "home", 90, 10, 40, checks=100, check_failures=5, lat=(100, 200, 300)),
             step("buy", "pay", 50, 0, 0, checks=50, check_failures=0, lat=(5000, 7000))]
    return {
        "totals": {"requests": 140, "duration_s": 10.0, "errors": {"connect": 0, "timeout": 10},
                   "failed": {"count": 40, "by_reason": {"status 500": 30, "timeout": 10}}, "dropped": 3},
        "latency": latency(100, 200, 300, 5000, 7000),
        "steps": steps,
        "scenarios": [{"name": "browse", "requests": 90, "errors": 10, "failed": {"count": 40, "by_reason": {}},
                       "checks": 100, "check_failures": 5, "latency": steps[0]["latency"]},
                      {"name": "buy", "requests": 50, "errors": 0, "failed": {"count": 0, "by_reason": {}},
                       "checks": 50, "check_failures": 0, "latency": steps[1]["latency"]}],
    }


def value(text, result):
    return measure(parse_objective(text), result)


def test_totals_metrics(result):
    assert value("error_rate < 1", result) == pytest.approx(40 / 150)      # failed / (responses + errors)
    assert value("check_rate > 0", result) == pytest.approx(1 - 5 / 150)
    assert value("throughput > 0", result) == pytest.approx(14.0)
    assert value("requests > 0", result) == 140.0
    assert value("dropped < 5", result) == 3.0
    assert value("max < 1s", result) == result["latency"]["max"]
    assert value("p50 < 1s", result) == pytest.approx(300, rel=0.01)


def test_step_and_scenario_filters(result):
    assert value("error_rate{step=home} < 1", result) == pytest.approx(40 / 100)
    assert value("error_rate{scenario=buy} < 1", result) == 0.0
    assert value("error_rate{scenario=browse} < 1", result) == pytest.approx(40 / 100)
    assert value("check_rate{step=home} > 0", result) == pytest.approx(0.95)
    assert value("p99{scenario=buy,step=pay} < 1s", result) == pytest.approx(7000, rel=0.01)
    assert value("throughput{step=pay} > 0", result) == pytest.approx(5.0)
    assert value("p99{step=home,scenario=buy} < 1s", result) is None        # no such pair


def test_error_rate_is_the_reports_rule(result):
    """One rule: the objective's error rate is the one every report shows."""
    assert value("error_rate < 1", result) == error_rate(result["totals"])
    assert value("error_rate{step=home} < 1", result) == error_rate(result["steps"][0])
    assert value("error_rate{scenario=browse} < 1", result) == error_rate(result["scenarios"][0])


def test_result_older_than_the_failed_rule_counts_transport_errors(result):
    del result["totals"]["failed"]
    assert value("error_rate < 1", result) == pytest.approx(10 / 150)


def test_stage_rows_in_steps_are_not_steps(result):
    """A result's `steps` may hold stage rows (name, start_s, end_s): no step name, no checks."""
    result["steps"].append({"name": "ramp", "start_s": 0.0, "end_s": 5.0, "requests": 70})
    assert value("check_rate > 0", result) == pytest.approx(1 - 5 / 150)
    assert value("requests{step=ramp} > 0", result) is None


def test_evaluate_keeps_the_plans_order_and_an_unmeasurable_objective_fails(result):
    objectives = [parse_objective("error_rate < 0.1"), parse_objective("p99{step=nowhere} < 1s"),
                  parse_objective("requests >= 140", abort_on_fail=True)]
    outcomes = evaluate(objectives, result)
    assert [o["name"] for o in outcomes] == ["error_rate < 0.1", "p99{step=nowhere} < 1s", "requests >= 140"]
    assert [o["passed"] for o in outcomes] == [False, False, True]
    assert outcomes[1]["value"] is None and outcomes[2]["abort_on_fail"] is True
    assert [o["unit"] for o in outcomes] == ["fraction", "us", "count"]
