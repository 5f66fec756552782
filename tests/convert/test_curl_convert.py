"""`surge convert --curl 'curl ...'`: one command as a one-step plan that
validates and runs green against `surge serve --app demo`; every flag read,
every other listed as a comment; a command it cannot read is one line, exit 2."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from surge.convert.curl import convert_curl, split_command
from surge.convert.errors import ConvertError
from surge.convert.plan_text import plan_text
from surge.plan.validate import check_file
from tests.helpers import SurgeRun, assert_one_line_error


def _surge(*args, env=None):
    proc = subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    return SurgeRun(proc.returncode, proc.stdout, proc.stderr, None)


def _step(command: str, tmp_path, environ=None):
    text = plan_text(convert_curl(command))
    path = tmp_path / "curl.yaml"
    path.write_text(text)
    _, problems = check_file(str(path), environ or {})
    doc = yaml.safe_load(text)
    return text, doc, doc["scenarios"][0]["steps"][0], problems


def test_shell_words_as_a_shell_splits_them():
    assert split_command("curl 'a b' \"c \\\"d\\\"\" e\\ f $'g\\th\\x41\\n' \\\n  -k") == \
        ["curl", "a b", 'c "d"', "e f", "g\thA\n", "-k"]


def test_a_copied_curl_command_becomes_a_step_that_runs_green(surge_server, tmp_path):
    server = surge_server(app="demo")
    command = (f"curl '{server.url.rstrip('/')}/login' -X POST -H 'Content-Type: application/json' "
               "-H 'Accept: application/json' -H 'Cookie: sid=1' -H 'sec-ch-ua: \"Chromium\"' "
               "--data-raw '{\"user\":\"alice\",\"password\":\"typed-pw\"}' --compressed -sS")
    plan = tmp_path / "plan.yaml"
    converted = _surge("convert", "--curl", command, "--duration", "2s", "-o", str(plan))
    assert converted.code == 0, converted.stderr
    text = plan.read_text()
    assert "typed-pw" not in text and "sid=1" not in text
    env = {"PASSWORD": "whatever"}
    assert _surge("validate", str(plan), env=env).code == 0
    result_path = tmp_path / "r.json"
    ran = _surge("run", str(plan), "-q", "--json", str(result_path), env=env)
    assert ran.code == 0, ran.stdout + ran.stderr
    result = json.loads(result_path.read_text())
    step = result["steps"][0]
    assert step["step"] == "login" and step["requests"] > 0 and step["responses_by_status"] == {"200": step["requests"]}
    # the server's count: what surge counted, plus the requests abandoned at the stop
    in_flight = result["totals"]["in_flight_at_stop"]
    assert step["requests"] <= server.routes()["POST /login"] <= step["requests"] + in_flight


def test_flags_read_and_flags_listed(tmp_path):
    text, doc, step, problems = _step(
        "curl -u alice:pw -G -d q=shoes --data-urlencode 'note=a b' -A 'my-agent/1' -e https://x.test/ "
        "-L --max-time 5 --weird https://api.test:8443/search -b 'c=1'", tmp_path, {"BASIC_PASSWORD": "x"})
    assert problems == []
    assert doc["target"] == "${env.TARGET_URL:-https://api.test:8443}"
    assert step["request"] == "GET /search?q=shoes&note=a%20b"
    assert step["headers"] == {"User-Agent": "my-agent/1"}
    assert step["auth"] == {"basic": {"user": "alice", "password": "${env.BASIC_PASSWORD}"}}
    assert "pw" not in json.dumps(step) and "alice:pw" not in text
    for note in ("# -L: not used by a load test (plans follow redirects themselves)",
                 "# --max-time 5: not used by a load test", "# --weird: an option surge convert does not know",
                 "# -b: cookies are left to the cookie jar"):
        assert note in text
    assert "referer (1)" in text                     # -e is the browser's kind of header: dropped, listed


def test_json_data_methods_and_insecure(tmp_path):
    _, doc, step, problems = _step("curl --json '{\"n\": 1}' https://api.test/items -k", tmp_path)
    assert problems == [] and doc["tls"] == {"insecure": True}
    assert step["request"] == "POST /items" and step["json"] == {"n": 1}
    assert step["headers"] == {"Content-Type": "application/json", "Accept": "application/json"}
    _, _, step, problems = _step("curl -XPUT -d 'a=1' -d b=2 api.test/x", tmp_path)
    assert problems == [] and step["request"] == "PUT /x" and step["body"] == "a=1&b=2"
    assert step["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    _, _, step, _ = _step("curl -I http://api.test/", tmp_path)
    assert step["request"] == "HEAD /" and step["name"] == "home"
    body = tmp_path / "body.json"
    body.write_text('{"from": "file"}\n')
    _, _, step, problems = _step(f"curl -H 'Content-Type: application/json' --data-binary @{body} http://a.test/u",
                                 tmp_path)
    assert problems == [] and step["json"] == {"from": "file"}


@pytest.mark.parametrize("command, fragment", [
    ("curl -H", "-H needs a value"),
    ("curl 'http://a.test/", "quote is not closed"),
    ("curl -s -v", "no URL in the command"),
    ("curl ftp://a.test/x", "expected an http:// or https:// URL"),
    ("curl http://a.test:80x/", "the port is not a number"),
    ("curl -d @/no/such/file http://a.test/", "cannot read /no/such/file"),
])
def test_a_command_it_cannot_read_is_one_line_and_exit_2(command, fragment):
    with pytest.raises(ConvertError, match=fragment.replace("/", ".")):
        convert_curl(command)
    assert_one_line_error(_surge("convert", "--curl", command), 2, "surge convert: error: --curl", fragment)
