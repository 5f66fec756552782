"""The plan side of auth and follow_redirects: levels, defaults, refusals, and
no secret in a repr or a message."""
from __future__ import annotations

import textwrap

from surge.plan.auth import AuthSpec
from surge.plan.build import compile_plan
from surge.plan.redact import redact_auth
from surge.plan.validate import check_file
from surge.run.flows import FlowTables


def plan_file(tmp_path, top: str = "", step: str = "", steps: int = 1) -> str:
    body = "".join(f"      - name: s{i}\n        request: GET /x{i}\n        {step}\n" for i in range(steps))
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(f"""\
        target: http://127.0.0.1:9
        {top}
        load: {{vus: 1, duration: 1s}}
        scenarios:
          - name: s
            steps:
        """) + body)
    return str(path)


def test_an_auth_spec_never_shows_its_secret():
    for spec in (AuthSpec("basic", "alice", "hunter2"), AuthSpec("bearer", token="hunter2")):
        assert "hunter2" not in repr(spec) + str(spec) + repr([spec])
    assert redact_auth("basic", "alice") == "basic alice:***" and redact_auth("bearer") == "bearer ***"


def test_plans_follow_ten_redirects_unless_they_say_and_a_step_can_say_its_own(tmp_path):
    plan, problems = check_file(plan_file(tmp_path, steps=2))
    assert not problems and [s.follow_redirects for s in plan.steps] == [10, 10]
    plan, _ = check_file(plan_file(tmp_path, top="follow_redirects: 2", step="follow_redirects: 0"))
    assert [s.follow_redirects for s in plan.steps] == [0]
    assert FlowTables(compile_plan(plan)).is_static            # following off: the fast path again
    plan, _ = check_file(plan_file(tmp_path), follow_override=3)
    assert plan.steps[0].follow_redirects == 3


def test_a_negative_follow_redirects_is_a_plan_error(tmp_path):
    _, problems = check_file(plan_file(tmp_path, top="follow_redirects: -1"))
    assert problems == ["%s:2 follow_redirects: expected a whole number of redirects from 0 to 1000, got -1"
                        % (tmp_path / "plan.yaml")]


def test_basic_auth_is_encoded_once_into_a_literal_header(tmp_path, monkeypatch):
    plan, problems = check_file(plan_file(tmp_path, top="auth: {basic: {user: alice, password: '${env.PW}'}}"),
                                environ={"PW": "s3cret"})
    assert not problems
    name, value = plan.steps[0].headers[0]
    assert name == "Authorization" and value.is_static and value.literal == "Basic YWxpY2U6czNjcmV0"


def test_target_credentials_and_an_auth_block_together_are_refused(tmp_path):
    path = tmp_path / "plan.yaml"
    plan_file(tmp_path, top="auth: {bearer: t}")
    path.write_text(path.read_text().replace("http://127.0.0.1:9", "http://u:hunter2@127.0.0.1:9"))
    _, problems = check_file(str(path))
    assert any("both set the plan's auth" in p for p in problems) and not any("hunter2" in p for p in problems)
