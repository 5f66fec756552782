"""A plan's `defaults:` as compiled into its steps, and its problems (issue 12 item 4)."""
from __future__ import annotations

from surge.plan.build import build_workload
from surge.plan.options import RunOptions
from surge.plan.validate import check_file
from tests.helpers import assert_one_line_error, run_surge

HEAD = "name: d\ntarget: http://127.0.0.1:9/\nload: {vus: 1, duration: 1s}\n"


def plan_file(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(HEAD + text)
    return str(path)


def steps_of(path: str, cli_headers=()):
    plan, problems = check_file(path, cli_headers=cli_headers)
    assert problems == []
    return {step.name: step for step in plan.scenarios[0].steps}


def headers(step) -> list[tuple[str, str]]:
    return [(name, value.text) for name, value in step.headers]


def test_every_default_reaches_a_step_that_sets_none(tmp_path):
    steps = steps_of(plan_file(tmp_path, """
defaults: {headers: {Accept: application/json}, timeout: 2s, think: 1s..2s, expect: {status: 2xx}}
scenarios: [{name: s, steps: [{name: a, request: GET /a}]}]
"""))
    a = steps["a"]
    assert headers(a) == [("Accept", "application/json")]
    assert a.timeout_ns == 2_000_000_000
    assert (a.think.kind, a.think.min_ns, a.think.max_ns) == ("uniform", 1_000_000_000, 2_000_000_000)
    assert a.expect.status == tuple(range(200, 300))


def test_a_step_replaces_expect_think_and_timeout_and_merges_headers_by_name(tmp_path):
    steps = steps_of(plan_file(tmp_path, """
defaults: {headers: {Accept: application/json, X-Tenant: acme}, timeout: 2s, think: 1s, expect: {status: 2xx}}
scenarios:
  - name: s
    steps:
      - {name: b, request: GET /b, headers: {x-tenant: other}, timeout: 9s, think: 0, expect: {}}
"""))
    b = steps["b"]
    assert headers(b) == [("Accept", "application/json"), ("x-tenant", "other")]
    assert b.timeout_ns == 9_000_000_000 and b.think is None and b.expect.is_empty


def test_command_line_headers_go_over_the_plans_defaults_and_under_a_steps_own(tmp_path):
    path = plan_file(tmp_path, """
defaults: {headers: {Accept: application/json, X-Keep: 1}}
scenarios:
  - name: s
    steps:
      - {name: a, request: GET /a}
      - {name: b, request: GET /b, headers: {X-Run: mine}}
""")
    steps = steps_of(path, cli_headers=(("accept", "text/html"), ("X-Run", "cli")))
    assert headers(steps["a"]) == [("X-Keep", "1"), ("accept", "text/html"), ("X-Run", "cli")]
    assert headers(steps["b"]) == [("X-Keep", "1"), ("accept", "text/html"), ("X-Run", "mine")]


def test_dash_h_is_accepted_with_a_plan_and_sent_literally(tmp_path):
    path = plan_file(tmp_path, "scenarios: [{name: s, steps: [{name: a, request: GET /a}]}]\n")
    built = build_workload(path, RunOptions(headers=("X-Literal: ${not_a_slot}",)))
    assert built.problems == ()
    (step,) = built.workload.scenarios[0].steps
    assert headers(step) == [("X-Literal", "${not_a_slot}")] and step.headers[0][1].is_static


def test_a_default_content_type_is_not_replaced_by_a_json_bodys(tmp_path):
    steps = steps_of(plan_file(tmp_path, """
defaults: {headers: {Content-Type: application/vnd.api+json}}
scenarios: [{name: s, steps: [{name: a, request: POST /a, json: {x: 1}}]}]
"""))
    assert headers(steps["a"]) == [("Content-Type", "application/vnd.api+json")]


def test_default_headers_may_read_data_columns_and_builtins(tmp_path):
    (tmp_path / "t.csv").write_text("tenant\nacme\n")
    steps = steps_of(plan_file(tmp_path, """
data: {t: {file: t.csv}}
defaults: {headers: {X-Tenant: "${t.tenant}", X-Request: "${uuid}"}}
scenarios: [{name: s, steps: [{name: a, request: GET /a}]}]
"""))
    assert [slot.variable for _, value in steps["a"].headers for slot in value.slots] == ["t.tenant", "uuid"]


def test_defaults_problems_name_their_key_path_and_what_is_allowed(tmp_path):
    path = plan_file(tmp_path, """
defaults:
  headers: {"bad name": x, Auth: "Bearer ${token}", Content-Length: 3, X-A: 1, x-a: 2}
  timeout: soon
  thinks: 1s
  expect: {status: 999}
scenarios: [{name: s, steps: [{name: a, request: GET /a, timeout: -1s}]}]
""")
    _, problems = check_file(path)
    assert problems == [
        f"{path}:6 defaults.headers['bad name']: not a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
        f"{path}:6 defaults.headers.Auth: ${{token}}: defaults cannot read extracted variables (a scenario's "
        "first step has none yet); set this header on the steps after the extraction, or use data columns "
        "or builtins",
        f"{path}:6 defaults.headers.Content-Length: surge computes Content-Length from each step's body; remove it",
        f"{path}:6 defaults.headers.x-a: the same header as 'X-A' (names are case-insensitive): give one",
        f"{path}:7 defaults.timeout: got 'soon', expected a duration like 500ms, 10s, 2m, 1h or 1m30s",
        f"{path}:8 defaults.thinks: unknown key, did you mean 'think'?",
        f"{path}:9 defaults.expect.status: got 999, allowed: a code 100..599, a class like 2xx, or a list of them",
        f"{path}:10 scenarios[0].steps[0].timeout: got '-1s', expected a duration like 500ms, 10s, 2m, 1h or 1m30s",
    ]


def test_defaults_that_are_not_a_mapping_exit_2_in_one_line(tmp_path):
    path = plan_file(tmp_path, "defaults: [1]\nscenarios: [{name: s, steps: [{name: a, request: GET /a}]}]\n")
    run = run_surge("run", path, "-q", json_result=False)
    assert_one_line_error(run, 2, "defaults: expected a mapping of step defaults (headers, timeout, think, expect)")
