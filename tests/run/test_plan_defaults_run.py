"""A plan's `defaults:` and `-H` with a plan, end to end: what the server receives,
and a step's own timeout (issue 12 item 4)."""
from __future__ import annotations

from tests.helpers import run_surge
from tests.support.recording import RecordingServer


def write_plan(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return str(path)


def headers_by_path(server: RecordingServer, name: str) -> dict[str, set]:
    found: dict[str, set] = {}
    for head, value in zip(server.heads, server.header_values(name)):
        found.setdefault(head.split(b" ")[1].decode(), set()).add(value)
    return found


def test_default_headers_reach_every_step_and_a_step_overrides_by_name(tmp_path):
    with RecordingServer() as server:
        plan = write_plan(tmp_path, f"""
name: defaults
target: {server.url}
load: {{model: closed, vus: 2, duration: 1s}}
defaults:
  headers: {{Accept: application/json, X-Tenant: acme}}
scenarios:
  - name: s
    steps:
      - {{name: plain, request: GET /plain}}
      - {{name: own, request: GET /own, headers: {{x-tenant: other}}}}
""")
        run = run_surge("run", plan, "-q", "-w", "1", "-H", "X-Run: 7", "-H", "accept: text/plain")
    assert run.code == 0, run.stdout + run.stderr
    assert headers_by_path(server, "X-Tenant") == {"/plain": {"acme"}, "/own": {"other"}}
    # -H adds to the defaults, and over a default of the same name (the command line wins)
    assert headers_by_path(server, "X-Run") == {"/plain": {"7"}, "/own": {"7"}}
    assert headers_by_path(server, "Accept") == {"/plain": {"text/plain"}, "/own": {"text/plain"}}
    # merged by name case-insensitively: one X-Tenant per request, never two
    assert all(head.lower().count(b"x-tenant:") == 1 for head in server.heads)
    assert all(head.lower().count(b"accept:") == 1 for head in server.heads)


def test_default_expect_counts_failures_on_every_step_unless_replaced(tmp_path):
    with RecordingServer() as server:     # answers 200 to everything
        plan = write_plan(tmp_path, f"""
name: expect
target: {server.url}
load: {{model: closed, vus: 1, duration: 1s}}
defaults:
  expect: {{status: 201}}
scenarios:
  - name: s
    steps:
      - {{name: inherits, request: GET /a}}
      - {{name: replaces, request: GET /b, expect: {{status: 200}}}}
""")
        run = run_surge("run", plan, "-q", "-w", "1")
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["inherits"]["requests"] > 0 and steps["replaces"]["requests"] > 0
    assert steps["inherits"]["failed"]["count"] == steps["inherits"]["requests"]       # 200 is not 201
    assert steps["replaces"]["failed"]["count"] == 0 and steps["replaces"]["checks"] > 0


def test_a_default_timeout_fails_slow_steps_and_a_step_can_wait_longer(surge_server, tmp_path):
    slow = surge_server(delay="600ms")
    with RecordingServer() as fast:
        plan = write_plan(tmp_path, f"""
name: timeouts
target: {fast.url}
load: {{model: closed, vus: 2, duration: 3s}}
defaults:
  timeout: 200ms
scenarios:
  - name: s
    steps:
      - {{name: quick, request: GET /quick}}
      - {{name: impatient, request: "GET {slow.url}/impatient"}}
""")
        run = run_surge("run", plan, "-q", "-w", "1", timeout_s=60)
    assert run.result is not None, run.stderr
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["quick"]["errors"]["timeout"] == 0
    assert steps["impatient"]["errors"]["timeout"] > 0
    assert steps["impatient"]["responses_by_status"] == {}                       # none answered in time
    # a timeout ends the iteration, so the step that waits longer runs in a plan of its own
    plan = write_plan(tmp_path, f"""
name: patient
target: {slow.url}
load: {{model: closed, vus: 2, duration: 2s}}
defaults:
  timeout: 200ms
scenarios:
  - name: s
    steps:
      - {{name: patient, request: GET /patient, timeout: 2s}}
""")
    run = run_surge("run", plan, "-q", "-w", "1", timeout_s=60)
    step = run.result["steps"][0]
    assert step["requests"] > 0 and step["errors"]["timeout"] == 0 and step["failed"]["count"] == 0
