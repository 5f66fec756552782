"""Each virtual user's cookie jar, end to end: plans run by the compiled core
against `surge serve --app demo` (its session-cookie shop and echo routes),
counted by the server's routes and by the statuses and checks in the result."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from surge.plan.build import compile_plan, url_workload
from surge.plan.options import RunOptions
from surge.plan.validate import load_plan
from surge.run.flows import FlowTables
from tests.helpers import assert_one_line_error, run_surge

LOGIN = """
      - name: login
        request: POST /web/login
        json: {user: "u${user}", password: pw}
        expect: {status: 200}"""


def write_plan(tmp_path, text: str, name="plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def set_cookie_query(*values: str) -> str:
    """/echo/set-cookie?c=...: one Set-Cookie line per value."""
    return "/echo/set-cookie?" + "&".join("c=" + quote(v, safe="") for v in values)


def statuses(run, step: str) -> dict:
    for s in run.result["steps"]:
        if s["step"] == step:
            return {int(k): v for k, v in s["responses_by_status"].items()}
    raise KeyError(step)


def step(run, name: str) -> dict:
    return next(s for s in run.result["steps"] if s["step"] == name)


def routes_during(server, run_args, timeout_s=60):
    before = server.routes()
    run = run_surge(*run_args, timeout_s=timeout_s)
    after = server.routes()
    return run, {k: after[k] - before.get(k, 0) for k in after}


@pytest.fixture(scope="module")
def demo():
    from surge.serve.server import ServeProcess
    server = ServeProcess(app="demo", workers=2).start()
    yield server
    server.stop()


def test_login_sets_the_session_cookie_and_every_later_step_sends_it(demo, tmp_path):
    """Bar: login sets a session cookie, the next steps need it and the POST's 303 is followed:
    zero 401s, every hop counted, by the server and in the result."""
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 8, duration: 3s}}
scenarios:
  - name: shop
    steps:{LOGIN}
      - name: account
        request: GET /web/account
        expect: {{status: 200}}
      - name: order
        request: POST /web/orders
        json: {{item: 5}}
        expect: {{status: 200}}
      - name: logout
        request: POST /web/logout
        expect: {{status: 204}}
      - name: after_logout
        request: GET /web/account
        expect: {{status: 401}}
""")
    run, routes = routes_during(demo, ("run", plan, "-w", "2", "-q"))
    assert run.code == 0, run.stderr
    assert routes["POST /web/login"] > 100
    # every account, order and logout had the session; the logout's Max-Age=0 deleted it
    assert statuses(run, "account") == {200: step(run, "account")["requests"]}
    # the 303 is followed (follow_redirects' default) with the cookie: the order page answers 200
    orders = step(run, "order")
    assert statuses(run, "order") == {200: orders["requests"]}
    assert list(orders["redirects_by_status"]) == ["303"]
    assert 0 <= orders["redirects_by_status"]["303"] - orders["requests"] <= 8    # hops of chains cut by the stop
    assert 0 <= routes["POST /web/orders"] - orders["requests"] <= 8
    assert 0 <= routes["GET /web/orders/{id}"] - orders["requests"] <= 8
    assert statuses(run, "logout") == {204: step(run, "logout")["requests"]}
    assert statuses(run, "after_logout") == {401: step(run, "after_logout")["requests"]}
    counted = step(run, "account")["requests"] + step(run, "after_logout")["requests"]
    assert 0 <= routes["GET /web/account"] - counted <= 8     # at most one in flight per VU at the stop
    assert sum(s["check_failures"] for s in run.result["steps"]) == 0


def test_cookie_values_never_reach_the_result_or_the_summary(demo, tmp_path):
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: shop
    steps:{LOGIN}
        extract: {{sid: {{cookie: session}}}}
      - name: account
        request: GET /web/account
        cookies: {{theme: s3cret-theme-value}}
        expect: {{status: 200}}
""")
    html = tmp_path / "report.html"
    run = run_surge("run", plan, "-w", "1", "--html", str(html))
    assert run.code == 0, run.stderr
    text = json.dumps(run.result) + run.stdout + run.stderr + html.read_text()
    assert step(run, "account")["requests"] > 0 and step(run, "login")["check_failures"] == 0
    assert "tok-" not in text and "s3cret-theme-value" not in text


def test_reset_per_iteration_starts_each_iteration_without_cookies(demo, tmp_path):
    for reset, first_401 in (("iteration", "all"), ("never", "first")):
        plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 3, duration: 2s}}
cookies: {{reset: {reset}}}
scenarios:
  - name: shop
    steps:
      - name: before_login
        request: GET /web/account
{LOGIN.lstrip(chr(10))}
      - name: account
        request: GET /web/account
        expect: {{status: 200}}
""", f"{reset}.yaml")
        run = run_surge("run", plan, "-w", "1", "-q")
        assert run.code == 0, run.stderr
        before = statuses(run, "before_login")
        iterations = step(run, "before_login")["requests"]
        assert iterations > 30
        if first_401 == "all":
            assert before == {401: iterations}, before
        else:       # only each VU's first iteration found an empty jar
            assert before == {401: 3, 200: iterations - 3}, before
        assert statuses(run, "account") == {200: step(run, "account")["requests"]}


def test_cookies_off_for_the_plan_sends_and_keeps_nothing(demo, tmp_path):
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
cookies: off
scenarios:
  - name: shop
    steps:{LOGIN}
      - name: account
        request: GET /web/account
      - name: echo
        request: GET /echo/cookies
        expect: {{body_contains: '{{"cookie": null}}'}}
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert statuses(run, "account") == {401: step(run, "account")["requests"]}
    assert step(run, "echo")["check_failures"] == 0 and step(run, "echo")["requests"] > 0


def test_cookies_off_for_a_step_skips_that_step_only(demo, tmp_path):
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: shop
    steps:{LOGIN}
      - name: anonymous
        request: GET /web/account
        cookies: off
      - name: account
        request: GET /web/account
      - name: logout_unkept
        request: POST /web/logout
        cookies: off
      - name: still_signed_in
        request: GET /web/account
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert statuses(run, "anonymous") == {401: step(run, "anonymous")["requests"]}
    assert statuses(run, "account") == {200: step(run, "account")["requests"]}
    # the logout had no cookie (401) and its answer was not kept
    assert statuses(run, "logout_unkept") == {401: step(run, "logout_unkept")["requests"]}
    assert statuses(run, "still_signed_in") == {200: step(run, "still_signed_in")["requests"]}


def test_a_step_sets_cookies_from_literals_and_templates(demo, tmp_path):
    """The bearer token of /login is a valid session token: put into the jar by a step."""
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: shop
    steps:
      - name: token
        request: POST /login
        json: {{user: "u${{user}}", password: pw}}
        extract: {{token: {{json: "$.token"}}}}
      - name: account
        request: GET /web/account
        cookies: {{session: "${{token}}", theme: dark}}
        expect: {{status: 200}}
      - name: echo
        request: GET /echo/cookies
        expect: {{body_matches: '"cookie": "session=tok-u[0-9]+-[0-9]+-[0-9]+[.][0-9a-f]+; theme=dark"'}}
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert statuses(run, "account") == {200: step(run, "account")["requests"]}
    assert step(run, "echo")["requests"] > 0 and step(run, "echo")["check_failures"] == 0


def test_extract_reads_the_jars_current_value(demo, tmp_path):
    """The session cookie's value, extracted, is the bearer token /dashboard takes."""
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: shop
    steps:{LOGIN}
        extract: {{sid: {{cookie: session}}, missing: {{cookie: nope}}}}
      - name: dashboard
        request: GET /dashboard
        headers: {{Authorization: "Bearer ${{sid}}"}}
        expect: {{status: 200}}
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    logins = step(run, "login")
    assert logins["check_failures"] == logins["requests"] > 0       # only `missing` fails, once per login
    assert statuses(run, "dashboard") == {200: step(run, "dashboard")["requests"]}
    assert step(run, "dashboard")["check_failures"] == 0


def test_path_secure_and_expiry_rules_on_real_requests(demo, tmp_path):
    query = set_cookie_query("a=1; Path=/echo", "b=2; Path=/web", "s=3; Secure", "x=4; Max-Age=0",
                             "old=5; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "h=6; HttpOnly; Path=/")
    plan = write_plan(tmp_path, f"""
target: {demo.url}
load: {{model: closed, vus: 1, duration: 1s}}
scenarios:
  - name: rules
    steps:
      - name: set
        request: "GET {query}"
      - name: echo
        request: GET /echo/cookies
        expect: {{body_contains: '{{"cookie": "a=1; h=6"}}'}}
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert step(run, "echo")["requests"] > 0 and step(run, "echo")["check_failures"] == 0


def test_cookies_follow_hosts_as_a_browser_does(demo, tmp_path, surge_server):
    """Host-only: 127.0.0.1's cookie is not sent to localhost.  Ports do not
    separate cookies, so the https server on another port of 127.0.0.1 gets
    the Secure cookie that the plain one set, and the plain one never does."""
    tls = surge_server(app="demo", tls=True)
    plain = f"http://127.0.0.1:{demo.port}"
    query = set_cookie_query("h=1; Path=/", "s=2; Secure; Path=/")
    plan = write_plan(tmp_path, f"""
target: {plain}
tls: {{cacert: {tls.cacert}}}
load: {{model: closed, vus: 1, duration: 1s}}
scenarios:
  - name: hosts
    steps:
      - name: set
        request: "GET {query}"
      - name: other_host
        request: GET http://localhost:{demo.port}/echo/cookies
        expect: {{body_contains: '{{"cookie": null}}'}}
      - name: same_host
        request: GET /echo/cookies
        expect: {{body_contains: '{{"cookie": "h=1"}}'}}
      - name: same_host_https
        request: GET https://127.0.0.1:{tls.port}/echo/cookies
        expect: {{body_contains: '{{"cookie": "h=1; s=2"}}'}}
""")
    run = run_surge("run", plan, "-w", "1", "-q")
    assert run.code == 0, run.stderr
    for name in ("other_host", "same_host", "same_host_https"):
        assert step(run, name)["requests"] > 0 and step(run, name)["check_failures"] == 0, step(run, name)


# ---- who pays: the tables ---------------------------------------------------------------

def _tables(tmp_path, text: str) -> FlowTables:
    return FlowTables(compile_plan(load_plan(write_plan(tmp_path, text, "tables.yaml"))))


def test_a_url_run_and_a_one_step_plan_keep_the_fast_path(tmp_path):
    url = url_workload("http://127.0.0.1:9/", RunOptions()).workload
    assert FlowTables(url).is_static
    one = _tables(tmp_path, """
target: http://127.0.0.1:9
load: {model: closed, vus: 1, duration: 1s}
follow_redirects: 0
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""")
    assert one.is_static and not one.steps[0].cookies_capture


def test_only_steps_that_can_use_the_jar_carry_it(tmp_path):
    from surge.core._limits import PART_KIND
    tables = _tables(tmp_path, """
target: http://127.0.0.1:9
load: {model: closed, vus: 1, duration: 1s}
follow_redirects: 0
scenarios:
  - {name: s, steps: [{name: a, request: GET /}, {name: b, request: GET /}, {name: c, request: GET /}]}
  - {name: t, steps: [{name: d, request: GET /, cookies: {k: v}}]}
""")
    a, b, c, d = tables.steps
    kind = PART_KIND["cookies"]
    parts = [[p for p in s.head if isinstance(p, tuple) and p[0] == kind] for s in tables.steps]
    assert parts[0] == [(kind, 0, 0, 0)] and a.cookies_capture          # notes its request, sends nothing
    assert parts[1] == [(kind, 1, 1, 0)] and b.cookies_capture
    assert parts[2] == [(kind, 2, 1, 0)] and not c.cookies_capture      # the last: nothing after it reads
    assert parts[3] == [(kind, 3, 1, 0)] and d.set_cookies == ((b"k", (b"v",)),)
    never = _tables(tmp_path, """
target: http://127.0.0.1:9
load: {model: closed, vus: 1, duration: 1s}
follow_redirects: 0
cookies: {reset: never}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""")
    assert not never.is_static and never.steps[0].cookies_capture       # the next iteration reads it
    follows = _tables(tmp_path, """
target: http://127.0.0.1:9
load: {model: closed, vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""")
    assert follows.steps[0].cookies_capture and follows.steps[0].cookies_hops   # a 303's cookie goes to its hop


# ---- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("plan_cookies, step_extra, fragments", [
    ("cookies: sometimes", "", ("cookies", "expected off, on, or {reset: iteration | never}")),
    ("cookies: {reset: daily}", "", ("cookies.reset", "allowed: iteration, never")),
    ("cookies: {rest: never}", "", ("cookies.rest", "did you mean 'reset'")),
    ("", "cookies: {'bad name': x}", ("cookies['bad name']", "not a valid cookie name")),
    ("", "cookies: {k: 'a;b'}", ("cookies.k", "a cookie value is")),
    ("", "cookies: []", ("cookies", "expected off, or a mapping of cookie names to values")),
    ("cookies: off", "cookies: {k: v}", ("the plan has cookies: off",)),
    ("", "{cookies: {k: v}, headers: {Cookie: a=b}}", ("Cookie header",)),
    ("", "{cookies: off, extract: {v: {cookie: sid}}}", ("extract.v.cookie", "cookies: off")),
    ("cookies: off", "extract: {v: {cookie: sid}}", ("extract.v.cookie", "no jar")),
    ("", "extract: {v: {cookie: 'a b'}}", ("extract.v.cookie", "not a valid cookie name")),
])
def test_bad_cookie_input_is_one_line_and_exit_2(tmp_path, plan_cookies, step_extra, fragments):
    extra = ""
    if step_extra.startswith("{"):
        for key, value in _flow_mapping(step_extra).items():
            extra += f"\n        {key}: {value}"
    elif step_extra:
        extra = "\n        " + step_extra
    plan = write_plan(tmp_path, f"""
target: http://127.0.0.1:9
load: {{model: closed, vus: 1, duration: 1s}}
{plan_cookies}
scenarios:
  - name: s
    steps:
      - name: a
        request: GET /{extra}
""")
    run = run_surge("run", plan, json_result=False)
    assert_one_line_error(run, 2, "plan.yaml:", *fragments)


def _flow_mapping(text: str) -> dict:
    import yaml
    return {k: json.dumps(v) for k, v in yaml.safe_load(text).items()}
