"""The failed-request rule (k6's http_req_failed): a request failed when it had a
transport error or a status >= 400; in a plan step with `expect.status`, that
list alone decides. Against real `surge serve` targets, through the real CLI."""
import re

import pytest

from tests.helpers import run_surge


def write_plan(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return str(path)


def assert_points_add_up(result: dict) -> None:
    """Per-second failed counts add up to the total (plan runs: from per-step deltas)."""
    assert sum(p["failed"] for p in result["timeseries"]) == result["totals"]["failed"]["count"]


# ---- the rule itself ------------------------------------------------------------------------
@pytest.mark.parametrize("status, allowed, failed", [
    (200, (), False), (302, (), False), (399, (), False), (400, (), True), (404, (), True), (500, (), True),
    (500, (500,), False), (200, (500,), True), (404, (200, 404), False), (201, (200, 204), True),
])
def test_status_rule(status, allowed, failed):
    from surge.run.failed_rule import is_failed_status
    assert is_failed_status(status, allowed) is failed


def test_failed_requests_by_reason():
    from surge.run.failed_rule import failed_requests
    failed = failed_requests({"200": 5, "404": 3, "500": 7}, {"connect": 0, "timeout": 2})
    assert failed == {"count": 12, "by_reason": {"status 500": 7, "status 404": 3, "timeout": 2}}
    assert failed_requests({"200": 5}, {"timeout": 0}) == {"count": 0, "by_reason": {}}


def test_a_snapshot_is_counted_by_its_steps_rules_and_one_step_is_its_totals():
    from surge.core._limits import ERROR_KINDS
    from surge.run.failed_rule import failed_count, snapshot_failed
    errors = [0] * len(ERROR_KINDS)
    errors[ERROR_KINDS.index("timeout")] = 2
    totals = {"statuses": {200: 5, 404: 3, 500: 7}, "errors": dict(zip(ERROR_KINDS, errors))}
    one_step = {**totals, "flows": {"steps": [(15, 0, 0, errors, totals["statuses"], None)], "scenarios": []}}
    expected = {"count": 12, "by_reason": {"status 500": 7, "status 404": 3, "timeout": 2}}
    assert snapshot_failed(one_step, [()]) == snapshot_failed(totals, [()]) == expected
    assert failed_count(one_step, [()]) == failed_count(totals, [()]) == 12
    # two steps, the second expecting 404: only the first step's 404 fails
    two = {**totals, "flows": {"steps": [(8, 0, 0, errors, {200: 5, 404: 3}, None),
                                         (7, 0, 0, [0] * len(ERROR_KINDS), {404: 7}, None)], "scenarios": []}}
    assert snapshot_failed(two, [(), (404,)]) == {"count": 5, "by_reason": {"status 404": 3, "timeout": 2}}
    assert failed_count(two, [(), (404,)]) == 5


def test_numbers_read_failed_and_fall_back_to_errors_for_old_results():
    from surge.result.failed import error_rate, failed_count
    new = {"requests": 90, "errors": {"timeout": 10}, "failed": {"count": 40, "by_reason": {}}}
    old = {"requests": 90, "errors": {"timeout": 10}}
    scenario = {"requests": 90, "errors": 10, "failed": {"count": 40, "by_reason": {}}}
    point = {"requests": 90, "errors": 10, "failed": 40}
    assert failed_count(new) == failed_count(scenario) == failed_count(point) == 40
    assert error_rate(new) == error_rate(scenario) == error_rate(point) == pytest.approx(0.4)
    assert failed_count(old) == 10 and error_rate(old) == pytest.approx(0.1)
    assert error_rate({"requests": 0, "errors": {}}) == 0.0


# ---- a URL run ------------------------------------------------------------------------------
def test_all_500s_fail_everywhere(surge_server):
    server = surge_server(status=500)
    run = run_surge("run", server.url, "-n", "300", "-c", "4", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    totals = run.result["totals"]
    assert totals["failed"] == {"count": 300, "by_reason": {"status 500": 300}}
    assert totals["error_rate"] == 1.0
    assert sum(totals["errors"].values()) == 0                # transport errors stay apart
    assert_points_add_up(run.result)
    assert "Failed: 300 (100.00%) — status 500: 300" in run.stdout


def test_timeouts_are_failed_and_no_latency_table_of_zeros(surge_server):
    server = surge_server(delay="3s")
    run = run_surge("run", server.url, "-d", "1500ms", "-c", "2", "-w", "1", "--timeout", "300ms", "-q")
    totals = run.result["totals"]
    assert totals["requests"] == 0 and totals["errors"]["timeout"] >= 2
    assert totals["failed"] == {"count": totals["errors"]["timeout"], "by_reason": {"timeout": totals["errors"]["timeout"]}}
    assert totals["error_rate"] == 1.0
    # a zero latency as its own value (" 0.00us"), not the tail of a real one like "640.00us"
    assert "no responses" in run.stdout and not re.search(r"(?<![\d.])0\.00us", run.stdout)


# ---- plans ----------------------------------------------------------------------------------
def test_plan_error_rate_objective_fails_on_500s(surge_server, tmp_path):
    """Before the rule, error_rate counted transport errors only: 100% 500s passed `error_rate < 1%`."""
    server = surge_server(status=500)
    plan = write_plan(tmp_path, f"""
name: broken
target: {server.url}
objectives: [error_rate < 1%]
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - {{name: s, steps: [{{name: home, request: GET /}}]}}
""")
    run = run_surge("run", plan, "-q")
    assert run.code == 3, (run.stdout, run.stderr)
    outcome = run.result["objectives"][0]
    assert not outcome["passed"] and outcome["value"] == 1.0
    assert "FAIL  error_rate < 1%" in run.stdout and "measured 100.00%" in run.stdout
    step = run.result["steps"][0]
    assert step["failed"] == {"count": step["requests"], "by_reason": {"status 500": step["requests"]}}
    assert run.result["scenarios"][0]["failed"] == step["failed"]
    assert run.result["totals"]["failed"] == step["failed"]
    assert_points_add_up(run.result)


def test_plan_expect_status_decides(surge_server, tmp_path):
    """expect.status: [500] makes a 500 fine (and any other status failed)."""
    server = surge_server(status=500)
    plan = write_plan(tmp_path, f"""
name: expected
target: {server.url}
objectives: [error_rate < 1%]
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: s
    steps:
      - {{name: home, request: GET /, expect: {{status: [500]}}}}
""")
    run = run_surge("run", plan, "-q")
    assert run.code == 0, (run.stdout, run.stderr)
    assert run.result["steps"][0]["requests"] > 0
    assert run.result["totals"]["failed"] == {"count": 0, "by_reason": {}}
    assert run.result["totals"]["error_rate"] == 0.0
    assert run.result["objectives"][0]["passed"]
    assert all(p["failed"] == 0 for p in run.result["timeseries"])
    assert "Failed: none" in run.stdout


def test_plan_steps_each_by_their_rule_on_the_demo_app(surge_server, tmp_path):
    """A 404 route fails, a 200 route does not; a step expecting 404 fails on its 200s;
    totals are the steps' sum and the per-second points add up to it."""
    server = surge_server(app="demo")
    plan = write_plan(tmp_path, f"""
name: demo
target: {server.url}
objectives: ["error_rate{{step=item}} == 0", "error_rate{{scenario=browse}} >= 0.4"]
load: {{model: closed, vus: 2, duration: 2s}}
scenarios:
  - name: browse
    steps:
      - {{name: item, request: GET /items/5}}
      - {{name: missing, request: GET /no-such-route}}
  - name: picky
    steps:
      - {{name: search, request: "GET /search?q=x", expect: {{status: 404}}}}
""")
    run = run_surge("run", plan, "-q")
    assert run.code == 0, (run.stdout, run.stderr)
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["item"]["failed"]["count"] == 0
    missing, search = steps["missing"], steps["search"]
    assert missing["responses_by_status"] == {"404": missing["requests"]}
    assert missing["failed"] == {"count": missing["requests"], "by_reason": {"status 404": missing["requests"]}}
    assert search["failed"] == {"count": search["requests"], "by_reason": {"status 200": search["requests"]}}
    totals = run.result["totals"]
    assert totals["failed"]["count"] == missing["requests"] + search["requests"]
    assert totals["failed"]["by_reason"] == {"status 404": missing["requests"], "status 200": search["requests"]}
    attempts = totals["requests"] + sum(totals["errors"].values())
    assert totals["error_rate"] == pytest.approx(totals["failed"]["count"] / attempts)
    scenarios = {s["name"]: s for s in run.result["scenarios"]}
    assert scenarios["browse"]["failed"] == missing["failed"]
    assert_points_add_up(run.result)
    assert all(o["passed"] for o in run.result["objectives"]), run.result["objectives"]
