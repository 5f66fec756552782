"""Items 10 and 11: credentials are sent (never dropped), and never written into results or messages."""
import base64
import json

import pytest

from surge.plan.redact import redact_header_line, redact_url
from tests.helpers import assert_one_line_error, run_surge
from tests.support.recording import RecordingServer

SECRET = "s3cr3t-Xq9"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def no_secret_in(run, *secrets):
    text = run.stdout + run.stderr + json.dumps(run.result)
    for secret in secrets:
        assert secret not in text


def test_url_credentials_send_basic_auth_and_are_not_written():
    with RecordingServer() as server:
        url = f"http://alice:{SECRET}%40x@127.0.0.1:{server.port}/"
        run = run_surge("run", url, "-n", "3", "-q")
    assert run.code == 0, run.stderr
    assert server.header_values("Authorization") == [basic("alice", SECRET + "@x")] * 3
    assert run.result["config"]["auth"] == "alice:***"
    assert run.result["config"]["url"] == f"http://127.0.0.1:{server.port}/"
    no_secret_in(run, SECRET)


def test_auth_option_sends_basic_auth():
    with RecordingServer() as server:
        run = run_surge("run", server.url, "--auth", f"bob:{SECRET}", "-n", "2", "-q")
    assert run.code == 0, run.stderr
    assert server.header_values("Authorization") == [basic("bob", SECRET)] * 2
    assert run.result["config"]["auth"] == "bob:***"
    no_secret_in(run, SECRET)


def test_secret_headers_are_sent_as_given_and_shown_as_stars(tmp_path):
    html = tmp_path / "report.html"
    with RecordingServer() as server:
        run = run_surge("run", server.url, "-n", "2", "-q", "-H", f"Authorization: Bearer {SECRET}",
                        "-H", f"Cookie: session={SECRET}", "-H", f"Proxy-Authorization: Basic {SECRET}",
                        "-H", "X-Plain: visible", "--html", str(html))
    assert run.code == 0, run.stderr
    assert server.header_values("Authorization") == [f"Bearer {SECRET}"] * 2
    assert server.header_values("Cookie") == [f"session={SECRET}"] * 2
    assert run.result["config"]["headers"] == ["Authorization: ***", "Cookie: ***",
                                               "Proxy-Authorization: ***", "X-Plain: visible"]
    no_secret_in(run, SECRET)
    assert SECRET not in html.read_text()


@pytest.mark.parametrize("args, fragments", [
    (["--auth", "bob:pw", "-H", "Authorization: Bearer x"], ["-H Authorization", "--auth", "give one"]),
    (["--auth", "nobody"], ["--auth", "USER:PASSWORD"]),
    (["--auth", ":pw"], ["--auth", "USER:PASSWORD"]),
])
def test_conflicting_or_bad_auth_is_one_line_exit_2(args, fragments):
    run = run_surge("run", "http://127.0.0.1:9/", "-n", "1", *args, json_result=False)
    assert_one_line_error(run, 2, *fragments)
    assert "pw" not in run.stderr


@pytest.mark.parametrize("url, args, fragments", [
    (f"http://a:{SECRET}@127.0.0.1:9/", ["--auth", "b:c"], ["--auth", "credentials in the URL", "give one"]),
    (f"http://a:{SECRET}@127.0.0.1:9/", ["-H", "authorization: x"], ["-H Authorization", "credentials in the URL"]),
    (f"http://a:{SECRET}@127.0.0.1:99999/", [], ["invalid port", "a:***@"]),
])
def test_url_credential_errors_never_show_the_password(url, args, fragments):
    """(A one-line error names the culprit without printing a secret.)"""
    run = run_surge("run", url, "-n", "1", *args, json_result=False)
    assert_one_line_error(run, 2, *fragments)
    assert SECRET not in run.stderr


def test_a_plan_takes_target_credentials_but_refuses_them_in_a_step_url_in_one_line(tmp_path):
    """The target's (and a host's) user:password@ is the plan's Basic auth; a
    step's absolute URL cannot carry them (auth: says it instead)."""
    plan = tmp_path / "creds.yaml"
    plan.write_text(
        "name: creds\n"
        f"target: http://u:{SECRET}@127.0.0.1:9\n"
        "load: {model: closed, vus: 1, duration: 1s}\n"
        "scenarios:\n"
        "  - name: s\n"
        "    steps:\n"
        f"      - {{name: a, request: 'GET http://v:{SECRET}@127.0.0.1:9/x'}}\n"
    )
    run = run_surge("run", str(plan), json_result=False)
    assert run.code == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{plan}:7 scenarios[0].steps[0].request:") and "credentials" in lines[0]
    assert SECRET not in run.stderr


def test_a_plan_takes_the_auth_option_and_refuses_a_malformed_one(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\ntarget: http://127.0.0.1:9\nload: {model: closed, vus: 1, duration: 1s}\n"
                    "scenarios:\n  - {name: s, steps: [{name: a, request: GET /}]}\n")
    assert run_surge("validate", str(plan), json_result=False).code == 0
    assert_one_line_error(run_surge("run", str(plan), "--auth", f"nocolon{SECRET}", json_result=False), 2, "--auth")
    assert SECRET not in run_surge("run", str(plan), "--auth", f"nocolon{SECRET}", json_result=False).stderr


# ---- the redaction helpers ---------------------------------------------------------

@pytest.mark.parametrize("line, shown", [
    ("Authorization: Bearer abc", "Authorization: ***"),
    ("authorization:abc", "authorization: ***"),
    ("Set-Cookie: a=b", "Set-Cookie: ***"),
    ("X-Token-Name: ok", "X-Token-Name: ok"),
    ("X-Api-Key: abc", "X-Api-Key: ***"),
    ("X-Auth-Token: abc", "X-Auth-Token: ***"),
    ("Apikey: abc", "Apikey: ***"),
    ("no colon", "no colon"),
])
def test_redact_header_line(line, shown):
    assert redact_header_line(line) == shown


@pytest.mark.parametrize("url, shown", [
    ("http://u:p@h:1/x?y", "http://u:***@h:1/x?y"),
    ("http://u@h/", "http://u@h/"),
    ("http://u:p@[::1/", "http://u:***@[::1/"),
    ("http://h/a@b", "http://h/a@b"),
    ("http://u:pa/ss@host/", "http://u:***@host/"),           # a malformed password holding a '/'
    ("http://u:p?s#s@host/", "http://u:***@host/"),
    ("not a url u:p@h", "not a url u:p@h"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_describe_redacts_and_the_bytes_keep_the_secret():
    from surge.plan.build import url_workload
    from surge.plan.describe import describe_config
    from surge.plan.options import RunOptions
    from surge.run.flows import FlowTables
    workload = url_workload("http://127.0.0.1:9/", RunOptions(headers=(f"Cookie: {SECRET}",))).workload
    assert describe_config(workload)["headers"] == ["Cookie: ***"]
    assert f"Cookie: {SECRET}\r\n".encode() in b"".join(FlowTables(workload).steps[0].head)   # the bytes sent


def test_a_url_workload_refuses_two_sources_of_authorization():
    from surge.plan.build import url_workload
    from surge.plan.options import RunOptions
    built = url_workload("http://a:b@127.0.0.1:9/", RunOptions(auth="c:d"))
    assert built.workload is None
    assert [p.text for p in built.problems] == [
        "--auth and credentials in the URL (user:password@) both set Basic auth: give one"]


@pytest.mark.parametrize("args, secret", [
    (["--auth", "s3cretvalue"], "s3cretvalue"),                       # no ':': the whole value may be the password
    (["-H", "Authorization Bearer abc.def.ghi"], "abc.def.ghi"),      # no ':': a secret header's value
    (["-H", "Cookie session=abc123"], "abc123"),
])
def test_bad_secret_options_are_refused_without_echoing_them(args, secret):
    run = run_surge("run", "http://127.0.0.1:9/", "-n", "1", *args, json_result=False)
    assert_one_line_error(run, 2)
    assert secret not in run.stderr + run.stdout
