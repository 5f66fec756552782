"""Following redirects (src/core/redirect.pxi) against nginx, counted in
nginx's access log: which requests arrived, with which method, on which
port, and how many, against what the result says."""
from __future__ import annotations

import os
import textwrap

import pytest

from bench.nginx import nginx_available
from tests.helpers import run_surge
from tests.support.redirect_nginx import SESSION, RedirectNginx

ITERATIONS = 12          # rows of the feeder that bounds each plan run (on_exhausted: stop)


@pytest.fixture(scope="module")
def server():
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with RedirectNginx() as running:
        yield running


def run_plan(tmp_path, server, steps: str, top: str = "", vus: int = 1, extra_args: tuple = ()):
    """A plan of one scenario running `steps` exactly ITERATIONS times in all
    (a unique feeder that stops), against server A; the log starts empty."""
    (tmp_path / "rows.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(ITERATIONS)))
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(f"""\
        name: redirects
        target: {server.url_a}
        {top}
        load: {{vus: {vus}, duration: 30s}}
        data:
          rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
        scenarios:
          - name: s
            steps:
        """) + textwrap.indent(textwrap.dedent(steps), "      "))
    server.clear_log()
    run = run_surge("run", str(plan), "-w", "1", "-q", *extra_args)
    assert run.code == 0, run.stderr
    return run


def step(result, name):
    return next(s for s in result["steps"] if s["step"] == name)


@pytest.mark.parametrize("status, method, sent, body_kept", [
    (301, "GET", "GET", False), (302, "GET", "GET", False), (303, "GET", "GET", False),
    (301, "POST", "GET", False), (302, "POST", "GET", False), (303, "POST", "GET", False),
    (307, "POST", "POST", True), (308, "POST", "POST", True), (307, "PUT", "PUT", True),
])
def test_each_redirect_status_changes_the_method_as_browsers_do(tmp_path, server, status, method, sent, body_kept):
    body = "" if method == "GET" else 'body: "0123456789"'
    run = run_plan(tmp_path, server, f"""\
        - name: go
          request: {method} /r{status}?n=${{rows.n}}
          {body}
        """)
    log = server.log(at_least=2 * ITERATIONS)
    assert [e["uri"].split("?")[0] for e in log] == [f"/r{status}", "/target"] * ITERATIONS
    hops = log[1::2]
    assert {e["method"] for e in hops} == {sent}
    assert {e["length"] for e in hops} == ({10} if body_kept else {0})
    go = step(run.result, "go")
    assert go["requests"] == ITERATIONS and go["responses_by_status"] == {"200": ITERATIONS}
    assert go["redirects"] == ITERATIONS and go["redirects_by_status"] == {str(status): ITERATIONS}
    assert run.result["totals"]["requests"] == len(log)


def test_relative_query_only_absolute_and_chained_locations_are_resolved(tmp_path, server):
    run = run_plan(tmp_path, server, """\
        - name: relative
          request: GET /dir/sub/rel?n=${rows.n}
        - name: query
          request: GET /dir/query
        - name: absolute
          request: GET /absolute
        - name: chain
          request: GET /two
        """)
    log = server.log(at_least=9 * ITERATIONS)
    uris = [e["uri"] for e in log]
    one = ["/dir/sub/rel?n=0", "/dir/target?from=rel", "/dir/query", "/dir/query?page=2",
           "/absolute", "/target", "/two", "/r301", "/target"]
    assert uris[:9] == one
    assert len(uris) == 9 * ITERATIONS
    assert {e["port"] for e in log} == {server.port_a}     # an absolute URL of the plan's host: same host
    assert step(run.result, "chain")["redirects"] == 2 * ITERATIONS
    assert step(run.result, "chain")["redirects_by_status"] == {"301": ITERATIONS, "302": ITERATIONS}
    assert step(run.result, "query")["responses_by_status"] == {"200": ITERATIONS}


def test_a_host_outside_the_plan_is_followed_by_address_and_by_name(tmp_path, server):
    run = run_plan(tmp_path, server, """\
        - name: by_address
          request: GET /to-b?n=${rows.n}
        - name: by_name
          request: GET /to-b-by-name
        - name: scheme_relative
          request: GET /scheme-relative
        """)
    log = server.log(at_least=6 * ITERATIONS)
    assert [(e["port"], e["uri"].split("?")[0]) for e in log[:6]] == [
        (server.port_a, "/to-b"), (server.port_b, "/target"), (server.port_a, "/to-b-by-name"),
        (server.port_b, "/target"), (server.port_a, "/scheme-relative"), (server.port_b, "/target")]
    assert len(log) == 6 * ITERATIONS
    for name in ("by_address", "by_name", "scheme_relative"):
        assert step(run.result, name)["responses_by_status"] == {"200": ITERATIONS}
        assert step(run.result, name)["redirects"] == ITERATIONS


def test_a_redirect_loop_stops_at_the_limit_as_a_failed_check(tmp_path, server):
    run = run_plan(tmp_path, server, """\
        - name: loop
          request: GET /loop?n=${rows.n}
        """, top="follow_redirects: 3")
    log = server.log(at_least=4 * ITERATIONS)
    assert len(log) == 4 * ITERATIONS and {e["uri"].split("?")[0] for e in log} == {"/loop"}
    loop = step(run.result, "loop")
    assert loop["requests"] == ITERATIONS and loop["responses_by_status"] == {"302": ITERATIONS}
    assert loop["redirects"] == 3 * ITERATIONS and loop["redirect_limit_exceeded"] == ITERATIONS
    assert loop["check_failures"] == ITERATIONS
    assert "redirect limit 3 exceeded 12 times" in run.stdout


def test_a_step_can_turn_following_off(tmp_path, server):
    run = run_plan(tmp_path, server, """\
        - name: no_follow
          request: GET /r302?n=${rows.n}
          follow_redirects: 0
        """)
    log = server.log(at_least=ITERATIONS)
    assert [e["uri"].split("?")[0] for e in log] == ["/r302"] * ITERATIONS
    assert step(run.result, "no_follow")["responses_by_status"] == {"302": ITERATIONS}
    assert "redirects" not in step(run.result, "no_follow")     # no step follows: the core counts nothing


def test_an_unreachable_or_unknown_https_target_is_an_error_of_the_step_not_a_hang(tmp_path, server):
    run = run_plan(tmp_path, server, """\
        - name: closed_port
          request: GET /to-closed?n=${rows.n}
        """)
    closed = step(run.result, "closed_port")
    assert closed["errors"]["connect"] == ITERATIONS and closed["requests"] == 0
    run = run_plan(tmp_path, server, """\
        - name: unknown_https
          request: GET /to-https?n=${rows.n}
        """)
    assert step(run.result, "unknown_https")["errors"]["connect"] == ITERATIONS
    assert len(server.log(at_least=ITERATIONS)) == ITERATIONS


def test_a_url_run_follows_only_with_follow(server):
    plain = run_surge("run", server.url_a + "r301", "-d", "1s", "-c", "1", "-w", "1", "-q")
    assert plain.result["totals"]["responses_by_status"].keys() == {"301"}
    assert "redirects" not in plain.result["totals"]
    followed = run_surge("run", server.url_a + "r301", "--follow", "2", "-d", "1s", "-c", "2", "-w", "1", "-q")
    totals = followed.result["totals"]
    assert totals["responses_by_status"]["301"] == totals["redirects"] == totals["redirects_by_status"]["301"]
    assert abs(totals["responses_by_status"]["200"] - totals["redirects"]) <= 2     # in flight at the stop
    assert followed.result["config"]["follow_redirects"] == 2
    assert "Redirects followed:" in followed.stdout


def test_login_cookie_and_a_post_answered_303_run_with_no_401_or_403(tmp_path, server):
    """The bar of issue 12 (without the jar: the session is extracted and sent
    as a header; the 303's hop to the same host keeps it)."""
    run = run_plan(tmp_path, server, """\
        - name: login
          request: POST /login?n=${rows.n}
          json: {user: alice}
          extract:
            sid: {header: set-cookie}
            token: {json: $.token}
          expect: {status: 200}
        - name: account
          request: GET /account
          headers: {Cookie: "${sid}"}
          expect: {status: 200}
        - name: order
          request: POST /orders
          headers: {Cookie: "${sid}"}
          json: {item: 7}
          expect: {status: 200}
        - name: api
          request: GET /api
          auth: {bearer: "${token}"}
          expect: {status: 200}
        """, vus=3)
    log = server.log(at_least=5 * ITERATIONS)
    assert len(log) == 5 * ITERATIONS
    assert not [e for e in log if e["status"] in (401, 403)]
    posts = [e for e in log if e["uri"] == "/orders"]
    hops = [e for e in log if e["uri"] == "/orders/1"]
    assert len(posts) == len(hops) == ITERATIONS
    assert {(e["method"], e["status"]) for e in posts} == {("POST", 303)}
    assert {(e["method"], e["status"], e["length"]) for e in hops} == {("GET", 200, 0)}
    order = step(run.result, "order")
    assert order["redirects"] == ITERATIONS and order["redirects_by_status"] == {"303": ITERATIONS}
    assert order["responses_by_status"] == {"200": ITERATIONS} and order["check_failures"] == 0
    assert run.result["totals"]["requests"] == len(log)
    assert SESSION not in run.stdout + run.stderr
