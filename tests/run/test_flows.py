"""Test plans run by the compiled core against `surge serve --app demo`."""
import shutil
from pathlib import Path

import pytest

from tests.helpers import run_surge

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_plan(tmp_path, text: str, name="plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def copy_example(tmp_path, name: str, url: str) -> str:
    """An example plan pointed at the test's server (data files copied beside it)."""
    for data in EXAMPLES.iterdir():
        if data.suffix in (".csv", ".jsonl"):
            shutil.copy(data, tmp_path / data.name)
    text = (EXAMPLES / name).read_text().replace("http://127.0.0.1:8080", url.rstrip("/"))
    text = text.replace("http://localhost:8080", url.rstrip("/").replace("127.0.0.1", "localhost"))
    return write_plan(tmp_path, text, name)


def test_weights_hold_counted_on_the_server(surge_server, tmp_path):
    """Bar: over 10,000 iterations each scenario's share is within ± 2% of its weight."""
    server = surge_server(app="demo", workers=2)
    plan = write_plan(tmp_path, f"""
name: weights
target: {server.url}
load: {{model: closed, vus: 16, duration: 6s}}
scenarios:
  - {{name: auth, weight: 30, steps: [{{name: login, request: POST /login, json: {{user: "u${{user}}", password: p}}}}]}}
  - {{name: browse, weight: 50, steps: [{{name: search, request: "GET /search?q=${{random.word}}"}}]}}
  - {{name: admin, weight: 20, steps: [{{name: report, request: GET /admin/report}}]}}
""")
    before = server.status()["routes"]
    run = run_surge("run", plan, "-w", "2", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    routes = {k: v - before.get(k, 0) for k, v in server.status()["routes"].items()}
    counts = {"auth": routes["POST /login"], "browse": routes["GET /search"], "admin": routes["GET /admin/report"]}
    total = sum(counts.values())
    assert total >= 10_000, counts
    for name, weight in (("auth", 0.30), ("browse", 0.50), ("admin", 0.20)):
        assert counts[name] / total == pytest.approx(weight, abs=0.02), counts
    # surge's own per-scenario counts agree with the server's.
    scenarios = {s["name"]: s for s in run.result["scenarios"]}
    assert sum(s["requests"] for s in scenarios.values()) == run.result["totals"]["requests"]


def test_extraction_feeds_later_steps(surge_server, tmp_path):
    server = surge_server(app="demo")
    shutil.copy(EXAMPLES / "users.csv", tmp_path / "users.csv")
    plan = write_plan(tmp_path, f"""
name: auth
target: {server.url}
load: {{model: closed, vus: 4, duration: 3s}}
data:
  users: {{file: users.csv, order: sequential}}
scenarios:
  - name: flow
    steps:
      - name: login
        request: POST /login
        json: {{user: "${{users.name}}", password: "${{users.password}}"}}
        expect: {{status: 200, body_contains: token}}
        extract: {{token: {{json: "$.token"}}}}
      - name: dashboard
        request: GET /dashboard
        headers: {{Authorization: "Bearer ${{token}}"}}
        expect: {{status: 200}}
      - name: logout
        request: POST /logout
        headers: {{Authorization: "Bearer ${{token}}"}}
        expect: {{status: [200, 204]}}
""")
    run = run_surge("run", plan, "-w", "1", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["login"]["requests"] > 50
    assert steps["dashboard"]["responses_by_status"] == {"200": steps["dashboard"]["requests"]}
    assert set(steps["logout"]["responses_by_status"]) == {"204"}
    assert all(s["check_failures"] == 0 for s in steps.values())


def test_unique_rows_are_used_once_across_workers(surge_server, tmp_path):
    server = surge_server(app="demo", workers=2)
    (tmp_path / "people.csv").write_text("name\n" + "".join(f"person{i}\n" for i in range(40)))
    plan = write_plan(tmp_path, f"""
name: unique
target: {server.url}
load: {{model: closed, vus: 6, duration: 3s}}
data:
  people: {{file: people.csv, order: unique, on_exhausted: stop}}
scenarios:
  - name: once
    steps: [{{name: login, request: POST /login, json: {{user: "${{people.name}}", password: x}}}}]
""")
    before = server.status()["routes"].get("POST /login", 0)
    run = run_surge("run", plan, "-w", "2", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    assert server.status()["routes"]["POST /login"] - before == 40
    assert run.result["scenarios"][0]["iterations"] == 40


def test_checks_are_counted_apart_from_errors(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = write_plan(tmp_path, f"""
name: checks
target: {server.url}
load: {{model: closed, vus: 2, duration: 2s}}
scenarios:
  - name: s
    steps:
      - {{name: missing, request: GET /nope, expect: {{status: 200, body_matches: "id.:[0-9]+"}}}}
      - {{name: item, request: "GET /items/7", expect: {{status: 200, body_matches: "\\"id\\": ?7"}}, extract: {{n: {{regex: "\\"id\\": ?([0-9]+)", group: 1}}}}}}
""")
    run = run_surge("run", plan, "-w", "1", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["missing"]["check_failures"] == steps["missing"]["checks"] > 0
    assert sum(steps["missing"]["errors"].values()) == 0
    assert steps["item"]["check_failures"] == 0 and steps["item"]["checks"] > 0


def test_impossible_objective_exits_3_and_names_it(surge_server, tmp_path):
    server = surge_server(app="demo")
    path = copy_example(tmp_path, "smoke.yaml", server.url)
    # (2 s instead of the example's 10: one response already fails p95 < 1us)
    text = Path(path).read_text().replace("  - p95 < 500ms", "  - p95 < 1us").replace("duration: 10s", "duration: 2s")
    assert "duration: 2s" in text
    Path(path).write_text(text)
    run = run_surge("run", path, "-q", timeout_s=90)
    assert run.code == 3, run.stdout + run.stderr
    assert "p95 < 1us" in run.stderr
    assert "FAIL  p95 < 1us" in run.stdout
    failed = [o for o in run.result["objectives"] if not o["passed"]]
    assert [o["name"] for o in failed] == ["p95 < 1us"]


def test_abort_on_fail_stops_the_run_after_its_grace(surge_server, tmp_path):
    server = surge_server(app="demo", delay="5ms")
    plan = write_plan(tmp_path, f"""
name: abort
target: {server.url}
objectives:
  - {{threshold: "p50 < 1ms", abort_on_fail: true, grace: 2s}}
load: {{model: closed, vus: 2, duration: 30s}}
scenarios:
  - {{name: s, steps: [{{name: report, request: GET /admin/report}}]}}
""")
    run = run_surge("run", plan, "-w", "1", "-q", timeout_s=60)
    assert run.code == 3, run.stdout + run.stderr
    assert run.result["aborted_by"].startswith("objective failed at ")
    assert "p50 < 1ms" in run.result["aborted_by"]
    assert 2.0 <= run.result["totals"]["duration_s"] < 6.0
    assert run.result["interrupted"] is False
    assert "stopped early" in run.stderr
