"""A real Chromium session through redirects (nginx: a page reached by a 302
to a relative Location, a POST answered 303, a 302 -> 301 chain) converts to a
plan whose steps are the requests the user made: the hops the browser
followed are left out (the plan follows them itself), and the replay follows
each one, counted by surge per step and by nginx's access log."""
import json
import os
import subprocess
import sys

import pytest

from bench.nginx import nginx_available
from tests.support import record_har
from tests.support.redirect_nginx import RedirectNginx

FETCHES_JS = """
(async () => {
  const pause = ms => new Promise(done => setTimeout(done, ms));
  await pause(300);
  const posted = await fetch('/r303', {method: 'POST', headers: {'Content-Type': 'text/plain'}, body: 'x'});
  if (!posted.redirected) throw new Error('POST /r303 was not redirected');
  await posted.text();
  await pause(300);
  const chained = await fetch('/two');
  if (!chained.redirected) throw new Error('/two was not redirected');
  await chained.text();
  return 'done';
})()
"""


@pytest.fixture(scope="module")
def server():
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with RedirectNginx() as running:
        yield running


@pytest.mark.chromium
def test_a_browser_session_through_redirects_replays_each_hop(server, tmp_path):
    if record_har.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    har = tmp_path / "redirects.har"
    record_har.record(server.url_a, str(har), page="/dir/sub/rel", scripts=[FETCHES_JS])
    recorded = [(e["request"]["method"], e["request"]["url"].split(str(server.port_a))[-1], e["response"]["status"])
                for e in json.loads(har.read_text())["log"]["entries"]]
    assert ("POST", "/r303", 303) in recorded and ("GET", "/r301", 301) in recorded     # the browser followed them

    plan = tmp_path / "plan.yaml"
    converted = subprocess.run([sys.executable, "-m", "surge", "convert", str(har), "--duration", "2s",
                                "-o", str(plan)], capture_output=True, text=True, timeout=60)
    assert converted.returncode == 0, converted.stderr
    text = plan.read_text()
    assert text.count("followed by the client itself") == 4       # ../target, /target, /r301, /target
    server.clear_log()
    result_path = tmp_path / "result.json"
    ran = subprocess.run([sys.executable, "-m", "surge", "run", str(plan), "-q", "--json", str(result_path)],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(result_path.read_text())
    steps = {s["step"]: s for s in result["steps"]}
    assert list(steps) == ["sub-rel", "r303", "two"]              # favicon.ico (static) and the hops left out
    for name, hops in (("sub-rel", {"302": 1}), ("r303", {"303": 1}), ("two", {"302": 1, "301": 1})):
        step = steps[name]
        n = step["requests"]
        assert n >= 1 and step["responses_by_status"] == {"200": n}, step
        assert step["redirects_by_status"] == {status: k * n for status, k in hops.items()}, step
    # nginx saw every hop surge counted (plus at most the requests in flight at the stop)
    log = server.log(at_least=sum(s["requests"] + s["redirects"] for s in steps.values()))
    seen = {}
    for line in log:
        seen[(line["method"], line["uri"])] = seen.get((line["method"], line["uri"]), 0) + 1
    in_flight = result["totals"]["in_flight_at_stop"]
    assert steps["two"]["requests"] <= seen[("GET", "/two")] <= steps["two"]["requests"] + in_flight
    assert seen[("GET", "/two")] == seen[("GET", "/r301")] or in_flight
    assert seen[("POST", "/r303")] >= steps["r303"]["requests"]
    assert ("GET", "/dir/target?from=rel") in seen


def test_a_curl_command_with_basic_auth_runs_against_a_protected_file(server, tmp_path):
    from tests.support.redirect_nginx import PASSWORD, USER
    plan = tmp_path / "plan.yaml"
    command = f"curl -u '{USER}:{PASSWORD}' {server.url_a}private.txt"
    converted = subprocess.run([sys.executable, "-m", "surge", "convert", "--curl", command, "--duration", "1s",
                                "-o", str(plan)], capture_output=True, text=True, timeout=60)
    assert converted.returncode == 0, converted.stderr
    assert PASSWORD not in plan.read_text() and "BASIC_PASSWORD" in plan.read_text()
    server.clear_log()
    result_path = tmp_path / "result.json"
    ran = subprocess.run([sys.executable, "-m", "surge", "run", str(plan), "-q", "--json", str(result_path)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "BASIC_PASSWORD": PASSWORD})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    step = json.loads(result_path.read_text())["steps"][0]
    assert step["requests"] > 0 and step["responses_by_status"] == {"200": step["requests"]}
    users = {line["user"] for line in server.log(at_least=step["requests"])}
    assert users == {USER}                      # nginx checked the password on every request
