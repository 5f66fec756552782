"""Basic and Bearer auth in plans and on the command line, against nginx
(auth_basic with an htpasswd made by `openssl passwd`; a location that
wants `Bearer TOKEN`), and the credentials kept out of every output."""
from __future__ import annotations

import base64
import json
import textwrap
import urllib.request

import pytest

from bench.nginx import nginx_available
from tests.helpers import assert_one_line_error, run_surge
from tests.support.redirect_nginx import PASSWORD, TOKEN, USER, RedirectNginx

ITERATIONS = 8


@pytest.fixture(scope="module")
def server():
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with RedirectNginx() as running:
        yield running


def write_plan(tmp_path, body: str) -> str:
    (tmp_path / "rows.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(ITERATIONS)))
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(body))
    return str(plan)


def private_plan(target: str, top: str = "", step: str = "", hosts: str = "") -> str:
    return f"""\
        name: auth
        target: {target}
        {top}
        {hosts}
        load: {{vus: 1, duration: 30s}}
        data:
          rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
        scenarios:
          - name: s
            steps:
              - name: private
                request: GET /private.txt?n=${{rows.n}}
                {step}
                expect: {{status: 200}}
        """


def statuses(result) -> dict:
    return result["steps"][0]["responses_by_status"]


def users_logged(server) -> set:
    return {e["user"] for e in server.log(at_least=ITERATIONS)}


QUOTED = "wonder%20land%3A1"        # PASSWORD percent-encoded for a URL's userinfo


@pytest.mark.parametrize("where", ["plan", "host", "step", "cli", "target_url", "host_url"])
def test_basic_auth_from_each_level_passes_nginx_auth_basic(tmp_path, server, where):
    basic = f"auth: {{basic: {{user: {USER}, password: '{PASSWORD}'}}}}"
    target = server.url_a
    if where == "target_url":
        target = server.url_a.replace("://", f"://{USER}:{QUOTED}@")
    hosts = ""
    if where in ("host", "host_url"):
        url = server.url_a if where == "host" else server.url_a.replace("://", f"://{USER}:{QUOTED}@")
        hosts = f"hosts: {{a: {{url: '{url}' {', ' + basic if where == 'host' else ''}}}}}"
    plan = write_plan(tmp_path, private_plan(target, top=basic if where == "plan" else "",
                                             step=basic if where == "step" else "", hosts=hosts))
    server.clear_log()
    args = ("--auth", f"{USER}:{PASSWORD}") if where == "cli" else ()
    run = run_surge("run", plan, "-w", "1", "-q", *args)
    assert run.code == 0, run.stderr
    assert statuses(run.result) == {"200": ITERATIONS}
    assert users_logged(server) == {USER}


def test_a_step_or_host_auth_wins_and_off_turns_it_off(tmp_path, server):
    plan = write_plan(tmp_path, private_plan(server.url_a, top="auth: {basic: {user: bob, password: nope}}",
                                             step=f"auth: {{basic: {{user: {USER}, password: '{PASSWORD}'}}}}"))
    server.clear_log()
    run = run_surge("run", plan, "-w", "1", "-q", "--auth", "carol:wrong")
    assert statuses(run.result) == {"200": ITERATIONS}
    plan = write_plan(tmp_path, private_plan(server.url_a, top=f"auth: {{basic: {{user: {USER}, password: x}}}}",
                                             step="auth: off").replace("expect: {status: 200}", ""))
    server.clear_log()
    run = run_surge("run", plan, "-w", "1", "-q")
    assert statuses(run.result) == {"401": ITERATIONS}
    assert users_logged(server) == {"-"}        # nothing sent


def test_bearer_from_an_extracted_variable_is_sent_once_it_exists(tmp_path, server):
    plan = write_plan(tmp_path, f"""\
        name: bearer
        target: {server.url_a}
        auth: {{bearer: "${{token}}"}}
        load: {{vus: 1, duration: 30s}}
        data:
          rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
        scenarios:
          - name: s
            steps:
              - name: login
                request: POST /login?n=${{rows.n}}
                extract: {{token: {{json: $.token}}}}
              - name: api
                request: GET /api
                expect: {{status: 200}}
        """)
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert {s["step"]: s["responses_by_status"] for s in run.result["steps"]} == {
        "login": {"200": ITERATIONS}, "api": {"200": ITERATIONS}}


def test_credentials_reach_no_output(tmp_path, server):
    """Basic (plan), --auth, URL credentials and a literal Bearer: none of
    the secrets in the result, summary, HTML, CSV, hlog, Prometheus or errors."""
    plan = write_plan(tmp_path, f"""\
        name: secrets
        target: {server.url_a.replace("://", f"://{USER}:{QUOTED}@")}
        load: {{vus: 1, duration: 30s}}
        data:
          rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
        scenarios:
          - name: s
            steps:
              - name: private
                request: GET /private.txt?n=${{rows.n}}
              - name: api
                request: GET /api
                auth: {{bearer: {TOKEN}}}
                expect: {{status: 200}}
        """)
    out = tmp_path / "out"
    run = run_surge("run", plan, "-w", "1", "--html", str(out) + ".html", "--csv", str(out) + ".csv",
                    "--hlog", str(out) + ".hlog")
    assert run.code == 0, run.stderr
    assert {s["step"]: s["responses_by_status"] for s in run.result["steps"]} == {
        "private": {"200": ITERATIONS}, "api": {"200": ITERATIONS}}
    from surge.report.prometheus import PrometheusExporter
    exporter = PrometheusExporter("127.0.0.1:0", config=run.result["config"]).start()
    try:
        exporter.finish(run.result)
        metrics = urllib.request.urlopen(exporter.url, timeout=5).read().decode()
    finally:
        exporter.stop()
    url_run = run_surge("run", server.url_a + "private.txt", "--auth", f"{USER}:{PASSWORD}", "-d", "0.5s",
                        "-c", "1", "-w", "1", "--html", str(out) + "-url.html")
    assert url_run.result["totals"]["responses_by_status"].keys() == {"200"}
    refused = run_surge("run", server.url_a, "--auth", f"{USER}:{PASSWORD}", "-H", "Authorization: x")
    texts = [run.stdout, run.stderr, json.dumps(run.result), metrics, url_run.stdout, url_run.stderr,
             json.dumps(url_run.result), refused.stderr]
    texts += [p.read_text() for p in tmp_path.iterdir() if p.name.startswith("out")]
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, QUOTED, basic, TOKEN):
        assert not [t for t in texts if secret in t], secret


@pytest.mark.parametrize("args, fragment", [
    (("--follow", "-1"), "--follow"),
    (("--auth", "nocolon"), "--auth"),
    (("--auth", ":pw"), "--auth"),
    (("--follow", "2", "-n", "10"), "--follow and -n/--requests"),
])
def test_bad_follow_and_auth_options_are_one_line_exit_2(server, args, fragment):
    run = run_surge("run", server.url_a, *args, json_result=False)
    assert_one_line_error(run, 2, fragment)
    assert "nocolon" not in run.stderr and "pw" not in run.stderr.replace("--follow", "")


@pytest.mark.parametrize("auth, fragment", [
    ("{basic: {user: a, password: b}, bearer: t}", "give one of basic or bearer"),
    ("{basic: {password: hunter2}}", "user"),
    ("{bearer: [hunter2]}", "expected a token"),
    ("{basic: {user: 'a:b', password: hunter2}}", "contains ':'"),
    ("{basic: {user: a, password: '${uuid}'}}", "literal text or ${env.NAME}"),
    ("{digest: {user: a}}", "digest"),
])
def test_a_bad_auth_block_is_a_plan_error_that_shows_no_secret(tmp_path, auth, fragment):
    plan = write_plan(tmp_path, private_plan("http://127.0.0.1:1", top=f"auth: {auth}"))
    run = run_surge("run", plan, json_result=False)
    assert run.code == 2, run.stderr
    assert fragment in run.stderr and "auth" in run.stderr
    assert "hunter2" not in run.stderr and "Traceback" not in run.stderr


def test_a_step_with_auth_and_its_own_authorization_header_is_refused(tmp_path):
    plan = write_plan(tmp_path, private_plan("http://127.0.0.1:1", step="auth: {bearer: hunter2}\n"
                                             "                headers: {Authorization: Basic x}"))
    run = run_surge("validate", plan, json_result=False)
    assert run.code == 2 and "give auth or an Authorization header, not both" in run.stderr
    assert "hunter2" not in run.stderr
