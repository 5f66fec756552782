"""Issue 15 item 8: secrets stay secret in every output, and `--no-redact` says so.

A URL run with -H 'Authorization: Bearer s3cr3t-XYZ', a URL run with
user:pa55word@, and a plan run with a `password` body field, a `secret:` data
column, a ${env.*} value and target credentials: the server receives every
secret (so the test is not vacuous), and none of them is in the JSON, HTML, CSV,
hlog, summary (stdout and stderr), the journal (read while the run goes: it is
removed once the result is written) or what /metrics served."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from surge.plan.redact import Secrets, set_enabled
from tests.support.recording import RecordingServer

BEARER = "s3cr3t-XYZ"
URL_PASSWORD = "pa55word"
BODY_PASSWORD = "hunter2-Body"
COLUMN_SECRET = "c0lumn-Secret-"         # + row number
ENV_SECRET = "env-V4lue-9q"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_with_every_output(tmp_path, *args, env=None):
    """`surge run ARGS` writing --json/--html/--csv/--hlog/--junit/--summary-json and
    serving /metrics, scraped until it exits; (exit code, {output name: text})."""
    out = {name: tmp_path / f"out.{name}" for name in ("json", "html", "csv", "hlog")}
    verdicts = {"junit": tmp_path / "out.junit.xml", "summary-json": tmp_path / "out.summary.json"}
    port = _free_port()
    cmd = [sys.executable, "-m", "surge", "run", *args, "--prometheus", str(port),
           *sum(([f"--{name}", str(path)] for name, path in {**out, **verdicts}.items()), [])]
    out.update(verdicts)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    scraped, journal = [], []
    journal_path = tmp_path / "out.json.journal"       # removed once the result is written: read it meanwhile
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                scraped.append(response.read().decode())
        except OSError:
            pass
        try:
            journal.append(journal_path.read_text())
        except OSError:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=30)
    texts = {"stdout": stdout, "stderr": stderr, "metrics": "\n".join(scraped), "journal": "\n".join(journal)}
    for name, path in out.items():
        texts[name] = path.read_text() if path.exists() else ""
    for extra in tmp_path.glob("out.steps.csv"):
        texts["steps.csv"] = extra.read_text()
    assert scraped, f"/metrics was never served: {stderr}"
    return proc.returncode, texts


def assert_nowhere(texts: dict, *secrets: str):
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} found in {name}"


def test_a_bearer_header_is_sent_and_never_shown(tmp_path):
    with RecordingServer() as server:
        code, texts = run_with_every_output(tmp_path, server.url, "-n", "50", "-c", "2", "-w", "1",
                                            "-H", f"Authorization: Bearer {BEARER}")
    assert code == 0, texts["stderr"]
    assert server.header_values("Authorization")[0] == f"Bearer {BEARER}"
    assert_nowhere(texts, BEARER)
    result = json.loads(texts["json"])
    assert result["redacted"] is True and result["config"]["headers"] == ["Authorization: ***"]


def test_url_credentials_are_sent_and_never_shown(tmp_path):
    with RecordingServer() as server:
        url = f"http://user:{URL_PASSWORD}@127.0.0.1:{server.port}/"
        code, texts = run_with_every_output(tmp_path, url, "-n", "50", "-c", "2", "-w", "1")
    assert code == 0, texts["stderr"]
    assert server.header_values("Authorization")[0].startswith("Basic ")
    assert_nowhere(texts, URL_PASSWORD)


def _plan(tmp_path, port: int) -> str:
    (tmp_path / "users.csv").write_text("name,password\n" + "".join(
        f"user{i},{COLUMN_SECRET}{i}\n" for i in range(20)))
    (tmp_path / "keys.csv").write_text("key\n" + "".join(f"{COLUMN_SECRET}k{i}\n" for i in range(5)))
    plan = tmp_path / "secret-plan.yaml"
    plan.write_text(
        "name: secrets\n"
        f"target: http://admin:{URL_PASSWORD}@127.0.0.1:{port}\n"
        "load: {model: closed, vus: 2, duration: 2s}\n"
        "data:\n"
        "  users: {file: users.csv}\n"
        "  keys: {file: keys.csv, secret: [key]}\n"
        "scenarios:\n"
        "  - name: s\n"
        "    steps:\n"
        "      - name: login\n"
        "        request: POST /login\n"
        f"        json: {{user: '${{users.name}}', password: {BODY_PASSWORD}, again: '${{users.password}}'}}\n"
        "      - name: keyed\n"
        "        request: GET /k\n"
        "        headers: {X-Key: '${keys.key}', X-Env: '${env.SURGE_TEST_SECRET}'}\n")
    return str(plan)


def test_a_plans_secrets_are_sent_and_never_shown(tmp_path):
    with RecordingServer() as server:
        code, texts = run_with_every_output(tmp_path, _plan(tmp_path, server.port), "-w", "1",
                                            env={"SURGE_TEST_SECRET": ENV_SECRET})
        bodies = b"".join(server.bodies).decode()
        sent = [v for v in server.header_values("X-Key") if v] + [v for v in server.header_values("X-Env") if v]
    assert code == 0, texts["stderr"]
    assert BODY_PASSWORD in bodies and f"{COLUMN_SECRET}1" in bodies       # sent as written
    assert ENV_SECRET in sent and any(v.startswith(f"{COLUMN_SECRET}k") for v in sent)
    assert '"surge_journal"' in texts["journal"] and '"point"' in texts["journal"], "no journal line was read"
    assert_nowhere(texts, URL_PASSWORD, BODY_PASSWORD, COLUMN_SECRET, ENV_SECRET)


def test_no_redact_shows_the_secret_and_says_so(tmp_path):
    with RecordingServer() as server:
        code, texts = run_with_every_output(tmp_path, server.url, "-n", "20", "-c", "1", "-w", "1", "--no-redact",
                                            "-H", f"Authorization: Bearer {BEARER}")
    assert code == 0, texts["stderr"]
    result = json.loads(texts["json"])
    assert result["redacted"] is False
    assert result["config"]["headers"] == [f"Authorization: Bearer {BEARER}"]
    assert "NOT REDACTED" in texts["stdout"] + texts["stderr"]
    assert "not redacted" in texts["html"]


def test_an_error_message_never_shows_a_secret_value(tmp_path):
    """A run that cannot start (the target refuses) names the URL without its password."""
    from tests.helpers import run_surge
    port = _free_port()
    run = run_surge("run", f"http://user:{URL_PASSWORD}@127.0.0.1:{port}/", "-n", "1", "-H",
                    f"Proxy-Authorization: Basic {BEARER}", json_result=False)
    assert run.code == 1, run.stderr
    assert URL_PASSWORD not in run.stderr + run.stdout and BEARER not in run.stderr + run.stdout


# ---- the Secrets helper (what the journal and every writer call) ----------------------------------

def test_scrub_replaces_every_value_longest_first_and_keeps_histograms():
    secrets = Secrets(["abcd", "abcdef", "zz"])          # "zz": too short to scrub from free text
    assert secrets.scrub("x abcdef y abcd zz") == "x *** y *** zz"
    tree = secrets.scrub_tree({"url": "http://h/?k=abcd", "hdr": "abcdabcd", "abcd": [1, "abcd"]})
    assert tree == {"url": "http://h/?k=***", "hdr": "abcdabcd", "***": [1, "***"]}


def test_scrub_with_a_large_secret_column_uses_the_window_scan():
    secrets = Secrets(f"value-{i:05d}" for i in range(5000))
    assert secrets.scrub("a value-04999 b value-00001c") == "a *** b ***c"
    assert secrets.scrub("nothing here") == "nothing here"


@pytest.fixture
def redaction_off():
    set_enabled(False)
    yield
    set_enabled(True)


def test_scrub_is_off_with_no_redact(redaction_off):
    assert Secrets(["abcd"]).scrub("abcd") == "abcd"


@pytest.mark.parametrize("spec, fragment", [
    ("secret: [nope]", "no column 'nope'"),
    ("secret: 5", "expected true, false or a list of column names"),
])
def test_a_bad_secret_key_is_one_line(tmp_path, spec, fragment):
    from tests.helpers import assert_one_line_error, run_surge
    (tmp_path / "u.csv").write_text("name\nx\n")
    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\ntarget: http://127.0.0.1:9\nload: {model: closed, vus: 1, duration: 1s}\n"
                    f"data:\n  u: {{file: u.csv, {spec}}}\n"
                    "scenarios:\n  - {name: s, steps: [{name: a, request: 'GET /${u.name}'}]}\n")
    assert_one_line_error(run_surge("run", str(plan), json_result=False), 2, "data.u.secret", fragment)


def test_a_header_named_like_a_credential_is_sent_and_never_shown(tmp_path):
    """-H X-Api-Key / X-Auth-Token: named like a plan's secret fields, hidden the same way."""
    key, token = "K3y-v4lue-9f1", "T0ken-v4lue-7c2"
    with RecordingServer() as server:
        code, texts = run_with_every_output(tmp_path, server.url, "-n", "20", "-c", "1", "-w", "1",
                                            "-H", f"X-Api-Key: {key}", "-H", f"X-Auth-Token: {token}")
    assert code == 0, texts["stderr"]
    assert server.header_values("X-Api-Key")[0] == key and server.header_values("X-Auth-Token")[0] == token
    assert_nowhere(texts, key, token)
    assert json.loads(texts["json"])["config"]["headers"] == ["X-Api-Key: ***", "X-Auth-Token: ***"]


# ---- secrets in query strings (?token=, ?api_key=, ?sig= ...) ------------------------------------

QUERY_TOKEN = "T0k3n-q-Value"
QUERY_KEY = "K3y-q-Value"
QUERY_SIG = "S1g-q-Value"


def _request_lines(server) -> str:
    return "\n".join(head.split(b"\r\n", 1)[0].decode() for head in server.heads)


def test_secret_query_parameters_of_a_url_are_sent_and_never_shown(tmp_path):
    with RecordingServer() as server:
        url = f"{server.url}api?q=shown-1&token={QUERY_TOKEN}&api_key={QUERY_KEY}"
        code, texts = run_with_every_output(tmp_path, url, "-n", "50", "-c", "2", "-w", "1")
        sent = _request_lines(server)
    assert code == 0, texts["stderr"]
    assert f"token={QUERY_TOKEN}&api_key={QUERY_KEY}" in sent          # sent as written
    assert_nowhere(texts, QUERY_TOKEN, QUERY_KEY)
    assert json.loads(texts["json"])["config"]["url"].endswith("/api?q=shown-1&token=***&api_key=***")
    assert "shown-1" in texts["json"]                                  # other parameters stay as they are


def test_secret_query_parameters_of_a_plan_are_sent_and_never_shown(tmp_path):
    (tmp_path / "users.csv").write_text("name,pw\n" + "".join(f"user{i},{COLUMN_SECRET}q{i}\n" for i in range(5)))
    plan = tmp_path / "q-plan.yaml"
    with RecordingServer() as server:
        plan.write_text(
            "name: query secrets\n"
            f"target: http://127.0.0.1:{server.port}\n"
            "load: {model: closed, vus: 2, duration: 2s}\n"
            "data:\n  users: {file: users.csv}\n"
            "scenarios:\n  - name: s\n    steps:\n"
            f"      - {{name: signed, request: 'GET /files?X-Amz-Signature={QUERY_SIG}&n=1'}}\n"
            "      - {name: login, request: 'GET /login?user=${users.name}&password=${users.pw}'}\n")
        code, texts = run_with_every_output(tmp_path, str(plan), "-w", "1")
        sent = _request_lines(server)
    assert code == 0, texts["stderr"]
    assert QUERY_SIG in sent and f"password={COLUMN_SECRET}q" in sent
    assert '"point"' in texts["journal"], "no journal line was read"
    assert_nowhere(texts, QUERY_SIG, COLUMN_SECRET)


def test_secret_query_parameters_of_a_targets_file_never_show(tmp_path):
    """--targets names each target by its request line: the name (in the result and
    in /metrics labels) shows the parameter as ***."""
    with RecordingServer() as server:
        targets = tmp_path / "targets.txt"
        targets.write_text(f"GET {server.url}a?access_token={QUERY_TOKEN}\nGET {server.url}b?sig={QUERY_SIG}\n")
        code, texts = run_with_every_output(tmp_path, "--targets", str(targets), "-n", "40", "-c", "2", "-w", "1")
        sent = _request_lines(server)
    assert code == 0, texts["stderr"]
    assert QUERY_TOKEN in sent and QUERY_SIG in sent
    assert_nowhere(texts, QUERY_TOKEN, QUERY_SIG)
    assert {s["step"] for s in json.loads(texts["json"])["steps"]} == {"GET /a?access_token=***", "GET /b?sig=***"}


def test_no_redact_shows_secret_query_parameters(tmp_path):
    with RecordingServer() as server:
        code, texts = run_with_every_output(tmp_path, f"{server.url}api?token={QUERY_TOKEN}", "-n", "20", "-c", "1",
                                            "-w", "1", "--no-redact")
    assert code == 0, texts["stderr"]
    assert json.loads(texts["json"])["config"]["url"].endswith(f"/api?token={QUERY_TOKEN}")


def test_an_error_message_never_shows_a_secret_query_parameter():
    """A URL refused before any load (a space in it) is quoted without the token."""
    from tests.helpers import assert_one_line_error, run_surge
    run = run_surge("run", f"http://127.0.0.1:9/a b?token={QUERY_TOKEN}", "-n", "1", json_result=False)
    assert_one_line_error(run, 2, "token=***")
    assert QUERY_TOKEN not in run.stderr + run.stdout


@pytest.mark.parametrize("name, secret", [
    ("token", True), ("access_token", True), ("accessToken", True), ("api_key", True), ("apiKey", True),
    ("X-Amz-Signature", True), ("sig", True), ("key", True), ("password", True), ("client_secret", True),
    ("q", False), ("tokens_left", False), ("monkey", False), ("compass", False), ("keyword", False),
])
def test_which_query_parameters_are_secret(name, secret):
    from surge.plan.redact import redact_query
    shown = redact_query(f"/p?a=1&{name}=v4lue-x&b=2")
    assert shown == (f"/p?a=1&{name}=***&b=2" if secret else f"/p?a=1&{name}=v4lue-x&b=2")


def test_a_plans_secret_query_values_and_the_columns_feeding_them_are_secrets():
    """What every writer scrubs by value (the journal, messages): a literal secret query
    value of a request line, and each value of a data column fed into one."""
    from types import SimpleNamespace

    from surge.plan.redact import plan_secrets
    document = {"scenarios": [{"steps": [{"request": f"GET /f?X-Amz-Signature={QUERY_SIG}&n=1"},
                                         {"request": "GET /l?user=${u.name}&password=${u.pw}"}]}]}
    users = SimpleNamespace(name="u", columns=("name", "pw"), rows=[("alice", "c0l-pw-1"), ("bob", "c0l-pw-2")])
    secrets = plan_secrets(document, "", {}, [users])
    assert QUERY_SIG in secrets and "c0l-pw-1" in secrets and "c0l-pw-2" in secrets
    assert "alice" not in secrets and "1" not in secrets
