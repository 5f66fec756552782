"""`surge convert RECORDING.har`: a real browser session of the demo app
(tests/data/demo-session.har, made by tests/support/record_har.py) becomes a
plan that validates and runs green against a live `surge serve --app demo`;
crafted HAR 1.2 files pin down each rule (static assets, headers, secrets,
think times, redirects); bad input is one line, exit 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from surge.convert.har import parse_har
from surge.convert.journey import Options, convert_recording
from surge.convert.plan_text import plan_text
from surge.plan.validate import check_file
from tests.helpers import SurgeRun, assert_one_line_error
from tests.support import record_har

DATA = Path(__file__).parent.parent / "data"
SESSION = DATA / "demo-session.har"
RECORDED_PASSWORD = "wonderland"        # what the recorder typed into the login


def _surge(*args, env=None, timeout_s=60):
    proc = subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, **(env or {})})
    return proc


def _convert_validate_run(har: Path, server, tmp_path, *options: str) -> tuple[str, dict]:
    plan = tmp_path / "plan.yaml"
    converted = _surge("convert", str(har), "--duration", "3s", "--vus", "2", "-o", str(plan), *options)
    assert converted.returncode == 0, converted.stderr
    text = plan.read_text()
    env = {"TARGET_URL": server.url.rstrip("/"), "PASSWORD": "any-password"}
    validated = _surge("validate", str(plan), env=env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    result_path = tmp_path / "result.json"
    ran = _surge("run", str(plan), "-q", "--json", str(result_path), env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return text, json.loads(result_path.read_text())


def _recorded_secrets(har: Path) -> list[str]:
    """The token the demo server gave the browser, and the password it typed."""
    log = json.loads(har.read_text())["log"]
    login = next(e for e in log["entries"] if e["request"]["url"].endswith("/login"))
    return [json.loads(login["response"]["content"]["text"])["token"], RECORDED_PASSWORD]


def _assert_green_journey(text: str, result: dict, server, har: Path) -> None:
    steps = {s["step"]: s for s in result["steps"]}
    # favicon.ico dropped (a demo app with the /web/* shop records its journey after these)
    assert list(steps)[:5] == ["search", "login", "dashboard", "items-42", "logout"]
    assert all(s["requests"] >= 1 for s in steps.values()), steps
    assert result["totals"]["failed"]["count"] == 0 and result["objectives"][0]["passed"]
    routes = server.routes()
    # Every dashboard and logout sent the token the login of the same iteration got:
    # none was refused (zero failures above), and the server counted what surge sent
    # (plus at most the requests abandoned at the stop).
    in_flight = result["totals"]["in_flight_at_stop"]
    for route, step in (("GET /dashboard", "dashboard"), ("POST /login", "login"), ("POST /logout", "logout")):
        assert steps[step]["requests"] <= routes[route] <= steps[step]["requests"] + in_flight, (route, routes)
    for secret in _recorded_secrets(har):
        assert secret not in text
    assert "Cookie:" not in text and "User-Agent:" not in text and "Sec-Fetch" not in text
    assert "# dropped: GET http" in text and "favicon.ico" in text
    assert 'token: {json: "$.token"}' in text and 'Authorization: "Bearer ${token}"' in text


def test_a_recorded_browser_session_converts_to_a_plan_that_validates_and_runs_green(surge_server, tmp_path):
    # The session (recorded 08:28 with the demo app's /web/* shop): the JSON API journey with a
    # Bearer token, then a session cookie and an order's POST answered 303 (followed by the browser).
    server = surge_server(app="demo")
    text, result = _convert_validate_run(SESSION, server, tmp_path, "--max-think", "200ms")
    _assert_green_journey(text, result, server, SESSION)
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["web-orders"]["redirects_by_status"] == {"303": steps["web-orders"]["requests"]}
    assert steps["web-account"]["responses_by_status"] == {"200": steps["web-account"]["requests"]}
    # think times are the recorded gaps, rounded to 100 ms
    draft = convert_recording(parse_har(SESSION.read_text(), str(SESSION)))
    assert [s.think for s in draft.steps] == ["0.8s", "0.9s", "0.5s", "0.4s", "0.3s", "0.6s", "0.5s", "0.4s", None]


@pytest.mark.chromium
def test_a_fresh_chromium_recording_converts_and_runs_green(surge_server, tmp_path):
    if record_har.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    recorder = surge_server(app="demo")
    har = tmp_path / "fresh.har"
    record_har.record(recorder.url, str(har))
    target = surge_server(app="demo")           # another server: the recorded token is worthless there
    text, result = _convert_validate_run(har, target, tmp_path, "--max-think", "200ms")   # every step in 3 s
    _assert_green_journey(text, result, target, har)


# ---- crafted recordings: one rule each ------------------------------------------------------

def _entry(method, url, start_ms, time_ms=10, headers=(), status=200, mime="application/json", text="{}",
           post=None, resource_type=None, response_headers=(), redirect=""):
    base = "2026-12-02T07:00:00"
    seconds, ms = divmod(start_ms, 1000)
    entry = {"startedDateTime": f"{base[:-2]}{seconds:02d}.{ms:03d}Z", "time": time_ms,
             "request": {"method": method, "url": url, "headers": [{"name": n, "value": v} for n, v in headers]},
             "response": {"status": status, "headers": [{"name": n, "value": v} for n, v in response_headers],
                          "content": {"mimeType": mime, "text": text}, "redirectURL": redirect}}
    if post is not None:
        entry["request"]["postData"] = post
    if resource_type:
        entry["_resourceType"] = resource_type
    return entry


def _har(*entries) -> str:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                               "entries": list(entries)}})


def _plan(har_text: str, tmp_path, environ=None, **options):
    draft = convert_recording(parse_har(har_text, "crafted.har"), Options(**options))
    text = plan_text(draft)
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    plan, problems = check_file(str(path), environ or {})
    return text, yaml.safe_load(text), plan, problems


SHOP = "https://shop.test"


def test_static_assets_are_dropped_or_kept_grouped_after_their_page(tmp_path):
    har = _har(_entry("GET", f"{SHOP}/", 0, mime="text/html", resource_type="document"),
               _entry("GET", f"{SHOP}/app.css", 20, mime="text/css"),
               _entry("GET", "https://cdn.shop.test/logo.png", 25, mime="image/png"),
               _entry("GET", "https://fonts.example.net/a.woff2", 30, mime="application/octet-stream"),
               _entry("GET", f"{SHOP}/api/cart", 2000, resource_type="xhr"))
    text, doc, plan, problems = _plan(har, tmp_path)
    assert problems == []
    assert [s["name"] for s in doc["scenarios"][0]["steps"]] == ["home", "api-cart"]
    assert "hosts" not in doc and text.count("# dropped: GET") == 3 and "--keep-static keeps it" in text
    assert doc["scenarios"][0]["steps"][0]["think"] == "2s"     # from the page's end to the next request

    text, doc, plan, problems = _plan(har, tmp_path, keep_static=True)
    assert problems == []
    steps = doc["scenarios"][0]["steps"]
    assert [s["name"] for s in steps] == ["home", "static.app.css", "static.logo.png", "static.a.woff2", "api-cart"]
    assert [s["request"] for s in steps[1:4]] == ["GET /app.css", "GET cdn:/logo.png", "GET fonts:/a.woff2"]
    assert doc["hosts"] == {"cdn": {"url": "${env.CDN_URL:-https://cdn.shop.test}"},
                            "fonts": {"url": "${env.FONTS_URL:-https://fonts.example.net}"}}
    assert [s.get("think") for s in steps] == [None, None, None, "2s", None]   # assets back to back
    assert "# static assets after home" in text


def test_headers_worth_keeping_are_kept_and_the_rest_listed(tmp_path):
    sent = [("Host", "shop.test"), ("Connection", "keep-alive"), (":authority", "shop.test"),
            ("Accept", "application/json"), ("Content-Type", "application/json"), ("Cookie", "sid=abc"),
            ("Accept-Encoding", "gzip"), ("User-Agent", "Mozilla/5.0"), ("Sec-Fetch-Mode", "cors"),
            ("X-Request-Id", "r-1"), ("Tenant", "acme"), ("Content-Length", "2")]
    har = _har(_entry("POST", f"{SHOP}/api/x", 0, headers=sent, post={"mimeType": "application/json", "text": "{}"}))
    text, doc, plan, problems = _plan(har, tmp_path)
    assert problems == []
    headers = doc["scenarios"][0]["steps"][0]["headers"]
    assert headers == {"Accept": "application/json", "Content-Type": "application/json", "X-Request-Id": "r-1",
                       "Tenant": "acme"}
    assert "cookie (1)" in text and "user-agent (1)" in text and "accept-encoding (1)" in text
    _, doc, _, problems = _plan(har, tmp_path, keep_headers=frozenset({"accept-encoding"}))
    assert problems == [] and doc["scenarios"][0]["steps"][0]["headers"]["Accept-Encoding"] == "gzip"


def test_an_auth_header_becomes_a_variable_never_the_recorded_secret(tmp_path):
    har = _har(_entry("GET", f"{SHOP}/me", 0, headers=[("Authorization", "Bearer REC-SECRET-1")]),
               _entry("GET", f"{SHOP}/orders", 50, headers=[("Authorization", "Bearer REC-SECRET-1"),
                                                             ("X-Api-Key", "REC-KEY-2")]),
               _entry("GET", f"{SHOP}/basic", 90, headers=[("Authorization", "Basic dTpodW50ZXIyMg==")]))
    text, doc, plan, problems = _plan(har, tmp_path)
    for secret in ("REC-SECRET-1", "REC-KEY-2", "dTpodW50ZXIyMg==", "hunter22"):
        assert secret not in text
    steps = doc["scenarios"][0]["steps"]
    assert steps[0]["headers"] == {"Authorization": "Bearer ${env.BEARER_TOKEN}"}
    assert steps[1]["headers"] == {"Authorization": "Bearer ${env.BEARER_TOKEN}", "X-Api-Key": "${env.X_API_KEY}"}
    assert steps[2]["auth"] == {"basic": {"user": "u", "password": "${env.BASIC_PASSWORD}"}}   # u:hunter22
    assert "headers" not in steps[2]
    assert "# set BEARER_TOKEN before running: the Bearer token of Authorization (steps me, orders)" in text
    # without the variables the plan says which to set; with them it validates
    assert any("environment variable BEARER_TOKEN is not set" in p for p in problems)
    _, _, plan, problems = _plan(har, tmp_path, environ={"BEARER_TOKEN": "t", "X_API_KEY": "k", "BASIC_PASSWORD": "b"})
    assert problems == [] and plan is not None


def test_a_token_an_earlier_response_gave_is_extracted_from_it(tmp_path):
    har = _har(_entry("POST", f"{SHOP}/auth", 0, text='{"data": {"access_token": "T-77", "n": 1}}',
                      post={"mimeType": "application/json", "text": '{"user": "u"}'}),
               _entry("GET", f"{SHOP}/session", 100, response_headers=[("X-Auth-Token", "S-88")]),
               _entry("GET", f"{SHOP}/me", 200, headers=[("Authorization", "Bearer T-77"), ("X-Auth-Token", "S-88")]))
    text, doc, plan, problems = _plan(har, tmp_path)
    assert problems == [], problems
    steps = doc["scenarios"][0]["steps"]
    assert steps[0]["extract"] == {"access_token": {"json": "$.data.access_token"}}
    assert steps[1]["extract"] == {"X_Auth_Token": {"header": "X-Auth-Token"}}
    assert steps[2]["headers"] == {"Authorization": "Bearer ${access_token}", "X-Auth-Token": "${X_Auth_Token}"}
    assert "T-77" not in text and "S-88" not in text


def test_bodies_json_form_and_text_with_template_marks_escaped(tmp_path):
    har = _har(_entry("POST", f"{SHOP}/j", 0, post={"mimeType": "application/json; charset=utf-8",
                                                    "text": '{"q": "${x}", "n": 2, "ok": true, "tags": ["a"]}'}),
               _entry("POST", f"{SHOP}/f", 10, post={"mimeType": "application/x-www-form-urlencoded",
                                                     "params": [{"name": "q", "value": "a b"},
                                                                {"name": "password", "value": "pw"}]}),
               _entry("PUT", f"{SHOP}/t?a=$" + "{b}", 20, post={"mimeType": "text/plain", "text": "hello ${y}"}),
               _entry("POST", f"{SHOP}/bad-json", 30, post={"mimeType": "application/json", "text": "{nope"}),
               _entry("POST", f"{SHOP}/big", 40, post={"mimeType": "application/json", "text": '{"n": 1e+20}'}))
    text, doc, plan, problems = _plan(har, tmp_path, environ={"PASSWORD": "p"})
    assert problems == [], problems
    steps = doc["scenarios"][0]["steps"]
    assert steps[0]["json"] == {"q": "$${x}", "n": 2, "ok": True, "tags": ["a"]}
    assert steps[1]["body"] == "q=a%20b&password=${env.PASSWORD}"
    assert steps[2]["request"] == "PUT /t?a=$${b}" and steps[2]["body"] == "hello $${y}"
    assert steps[3]["body"] == "{nope"
    assert steps[4]["body"] == '{"n": 1e+20}'       # YAML would read 1e+20 back as a string: sent as recorded
    sent = {s.name: s for s in plan.scenarios[0].steps}
    assert sent["j"].body.literal == '{"q":"${x}","n":2,"ok":true,"tags":["a"]}'   # the recorded bytes


def test_think_times_are_rounded_and_capped(tmp_path):
    har = _har(_entry("GET", f"{SHOP}/a", 0, time_ms=100), _entry("GET", f"{SHOP}/b", 130, time_ms=10),
               _entry("GET", f"{SHOP}/c", 1400, time_ms=10), _entry("GET", f"{SHOP}/d", 59000))
    text, doc, _, problems = _plan(har, tmp_path, max_think_s=5.0)
    assert problems == []
    assert [s.get("think") for s in doc["scenarios"][0]["steps"]] == [None, "1.3s", "5s", None]
    assert "# think: recorded 57.6s, capped at 5s (--max-think)" in text


def test_redirect_follow_ups_preflights_and_other_schemes_are_left_out(tmp_path):
    har = _har(_entry("POST", f"{SHOP}/cart", 0, status=303, redirect="/cart/1",
                      post={"mimeType": "application/json", "text": "{}"}),
               _entry("GET", f"{SHOP}/cart/1", 20, status=302, redirect=f"{SHOP}/cart/2"),
               _entry("GET", f"{SHOP}/cart/2", 40, time_ms=500),
               _entry("OPTIONS", "https://api.shop.test/x", 1730, headers=[("Access-Control-Request-Method", "PUT")]),
               _entry("PUT", "https://api.shop.test/x", 1740, status=404),
               _entry("GET", "data:image/png;base64,AAAA", 1750),
               _entry("GET", "chrome-extension://abc/x.js", 1760))
    text, doc, _, problems = _plan(har, tmp_path)
    assert problems == []
    steps = doc["scenarios"][0]["steps"]
    assert [s["request"] for s in steps] == ["POST /cart", "PUT api:/x"]
    assert steps[1]["expect"] == {"status": 404}            # what the recording got
    assert "the redirect of POST https://shop.test/cart (status 303), followed by the client itself" in text
    assert "GET https://shop.test/cart/2: the redirect of GET https://shop.test/cart/1 (status 302)" in text
    assert steps[0]["think"] == "1.2s"      # from the end of the chain (540 ms) to the next request (1740 ms)
    assert "a CORS preflight" in text and text.count("not an http(s) request") == 2


@pytest.mark.parametrize("content, fragment", [
    ("not json at all", "not JSON (line 1 column 1"),
    ('{"log": {"version": "1.2"}}', "not a HAR file: no log.entries"),
    ('[1, 2]', "not a HAR file"),
    ('{"log": {"entries": [{"request": {"method": "GET"}}]}}', "log.entries[0].request.url: missing"),
    ('{"log": {"entries": [{"request": {"method": "GET", "url": "data:x"}}]}}', "no request to convert"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, content, fragment):
    path = tmp_path / "in.har"
    path.write_text(content)
    proc = _surge("convert", str(path))
    assert_one_line_error(_as_run(proc), 2, "surge convert: error:", fragment)


def test_an_unreadable_recording_is_one_line_and_exit_2(tmp_path):
    proc = _surge("convert", str(tmp_path / "missing.har"))
    assert_one_line_error(_as_run(proc), 2, "cannot read", "missing.har")
    proc = _surge("convert")
    assert_one_line_error(_as_run(proc), 2, "RECORDING.har or --curl")


def _as_run(proc):
    return SurgeRun(proc.returncode, proc.stdout, proc.stderr, None)


@pytest.mark.chromium
def test_a_browser_session_with_a_session_cookie_and_a_303_replays_green(surge_server, tmp_path):
    # The demo app's cookie-session shop (/web/*: login sets a cookie, an order's POST answers 303).
    if record_har.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    recorder = surge_server(app="demo")
    if not record_har.has_web_routes(recorder.url):
        pytest.skip("this demo app has no /web/* routes (the cookie-session shop)")
    har = tmp_path / "web.har"
    record_har.record(recorder.url, str(har))
    target = surge_server(app="demo")
    # think times capped at 200 ms, so every step runs within the 3-s run
    text, result = _convert_validate_run(har, target, tmp_path, "--max-think", "200ms")
    assert "Cookie:" not in text and "session=" not in text                 # the jar's business
    steps = {s["step"]: s for s in result["steps"]}
    assert {"web-login", "web-account", "web-orders", "web-logout"} <= set(steps)
    assert "followed by the client itself" in text                          # GET /web/orders/ID left out
    assert result["totals"]["failed"]["count"] == 0                         # no 401: the cookie went along
    orders = steps["web-orders"]
    assert orders["responses_by_status"] == {"200": orders["requests"]}     # the 303's target answered
    assert orders["redirects_by_status"] == {"303": orders["requests"]}
    routes = target.routes()
    in_flight = result["totals"]["in_flight_at_stop"]
    assert orders["requests"] <= routes["GET /web/orders/{id}"] <= orders["requests"] + in_flight
