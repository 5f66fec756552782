"""TLS options before anything is sent: the flags' and a plan's tls: blocks'
problems (one line each, naming the flag or FILE:LINE), which options each
https host gets, https's default port, and --disable-keepalive's header."""
from __future__ import annotations

import os

import pytest

from surge.plan.build import build_workload
from surge.plan.describe import describe_config
from surge.plan.options import RunOptions
from surge.plan.request import parse_target
from surge.plan.tls import FLAG_NAMES, TlsOptions
from surge.plan.validate import check_file


def options(**fields) -> RunOptions:
    """RunOptions as the command line would give them (every field typed)."""
    spelled = {name: FLAG_NAMES.get(name, "--" + name.replace("_", "-")) for name in fields}
    if "tls_resume" in fields:
        spelled["tls_resume"] = "--tls-resume"
    return RunOptions(**fields, explicit=spelled)


def problems(url: str, **fields) -> list[str]:
    return [p.text for p in build_workload(url, options(**fields)).problems]


# ---- TlsOptions on its own ---------------------------------------------------------------

def test_defaults_verify_with_the_urls_host():
    tls = TlsOptions()
    assert tls.problems() == []
    assert tls.server_name("api.example") == "api.example"
    assert TlsOptions(sni="backend-1").server_name("10.0.0.5") == "backend-1"
    assert tls.describe("h")["verify"] is True and TlsOptions(insecure=True).describe("h")["verify"] is False


def test_each_python_visible_problem_names_its_field(tmp_path):
    directory = str(tmp_path)
    found = TlsOptions(cacert=str(tmp_path / "nope.pem"), cert=directory, tls_min="1.1", groups=" ",
                       sni="bad name", keylog=str(tmp_path / "no" / "dir" / "keys.log")).problems(FLAG_NAMES)
    assert ("cert", f"{directory!r} is a directory, expected a PEM file") in found
    assert ("cert", "needs --key too (the client certificate's private key, PEM)") in found
    found = dict(found)
    assert found["cacert"] == f"cannot read {str(tmp_path / 'nope.pem')!r}: No such file or directory"
    assert found["tls_min"] == "got '1.1', allowed: 1.2, 1.3"
    assert found["groups"] == "is empty"
    assert "expected a host name" in found["sni"]
    assert found["keylog"].startswith("cannot write")


def test_cert_and_key_go_together(tls_certs):
    assert dict(TlsOptions(cert=str(tls_certs.client.cert)).problems(FLAG_NAMES)) == {
        "cert": "needs --key too (the client certificate's private key, PEM)"}
    assert dict(TlsOptions(key=str(tls_certs.client.key)).problems(FLAG_NAMES)) == {
        "key": "needs --cert too (the client certificate, PEM)"}
    assert TlsOptions(cert=str(tls_certs.client.cert), key=str(tls_certs.client.key)).problems() == []


def test_versions_must_leave_one():
    assert dict(TlsOptions(tls_min="1.3", tls_max="1.2").problems(FLAG_NAMES)) == {
        "tls_min": "1.3 is above --tls-max 1.2: no version would be left"}
    assert TlsOptions(tls_min="1.3", tls_max="1.3").problems() == []


# ---- surge run URL -------------------------------------------------------------------------

def test_https_is_accepted_with_port_443_by_default():
    target = parse_target("https://example.com/x")
    assert (target.scheme, target.port, target.authority, target.url) == (
        "https", 443, "example.com", "https://example.com/x")
    assert parse_target("https://example.com:8443/").authority == "example.com:8443"
    assert parse_target("http://example.com:443/").authority == "example.com:443"


def test_an_https_url_run_carries_the_flags_options(tls_certs):
    built = build_workload("https://127.0.0.1:8443/", options(cacert=str(tls_certs.ca), sni="localhost",
                                                              tls_resume=False, tls_min="1.3"))
    assert built.problems == ()
    (host,) = built.workload.hosts
    assert host.tls == TlsOptions(cacert=str(tls_certs.ca), sni="localhost", resume=False, tls_min="1.3")
    config = describe_config(built.workload)
    assert config["tls"]["server_name"] == "localhost" and config["tls"]["verify"] is True
    assert config["tls"]["resume"] is False and "keepalive" not in config


def test_an_http_url_run_has_no_tls_and_refuses_tls_flags():
    assert build_workload("http://127.0.0.1:8080/", options()).workload.hosts[0].tls is None
    assert problems("http://127.0.0.1:8080/", insecure=True, cacert="ca.pem") == [
        "-k/--insecure, --cacert: TLS options apply to https:// URLs only, and http://127.0.0.1:8080/ is plain HTTP"]


def test_sslkeylogfile_alone_is_not_a_typed_flag(tmp_path):
    """SSLKEYLOGFILE in the environment must not refuse every http run."""
    built = build_workload("http://127.0.0.1:8080/", RunOptions(keylog=str(tmp_path / "keys.log")))
    assert built.problems == ()


@pytest.mark.parametrize("fields, expected", [
    ({"cacert": "/nonexistent/ca.pem"}, "--cacert: cannot read '/nonexistent/ca.pem': No such file or directory"),
    ({"tls_min": "1.3", "tls_max": "1.2"}, "--tls-min: 1.3 is above --tls-max 1.2: no version would be left"),
    ({"key": "/etc/hostname"}, "--key: needs --cert too (the client certificate, PEM)"),
])
def test_url_run_flag_problems(fields, expected):
    assert problems("https://127.0.0.1:8443/", **fields) == [expected]


def test_what_only_openssl_refuses_is_a_problem_too(tls_certs):
    """A key that is not the certificate's, a cipher list OpenSSL does not know:
    one line each, before anything is sent."""
    (mismatch,) = problems("https://127.0.0.1:8443/", cert=str(tls_certs.leaf.cert), key=str(tls_certs.client.key))
    assert "\n" not in mismatch and ("key" in mismatch.lower())
    (cipher,) = problems("https://127.0.0.1:8443/", ciphers="NOT-A-CIPHER")
    assert "\n" not in cipher and "NOT-A-CIPHER" in cipher


# ---- --disable-keepalive --------------------------------------------------------------------

def test_disable_keepalive_sends_connection_close_and_says_so():
    built = build_workload("http://127.0.0.1:8080/", options(disable_keepalive=True, headers=("X-A: 1",)))
    workload = built.workload
    (step,) = workload.steps
    assert [(name, value.text) for name, value in step.headers] == [("X-A", "1"), ("Connection", "close")]
    assert workload.load.keepalive is False
    assert describe_config(workload)["keepalive"] is False


def test_disable_keepalive_clashes():
    assert problems("http://127.0.0.1:8080/", disable_keepalive=True, headers=("Connection: keep-alive",)) == [
        "-H Connection and --disable-keepalive both set the Connection header: give one"]
    assert problems("http://127.0.0.1:8080/", disable_keepalive=True, pipeline=4) == [
        "--pipeline and --disable-keepalive exclude each other: without keep-alive each connection carries "
        "one request"]


def test_disable_keepalive_closes_every_plan_step(tmp_path):
    plan = write(tmp_path, """\
target: http://127.0.0.1:8080
load: {vus: 1, duration: 1s}
scenarios:
  - name: s
    steps:
      - {name: a, request: GET /a}
      - {name: b, request: GET /b, headers: {X-B: "1"}}
""")
    workload = build_workload(plan, options(disable_keepalive=True)).workload
    assert [[n for n, _ in step.headers] for step in workload.steps] == [["Connection"], ["X-B", "Connection"]]
    assert workload.load.keepalive is False


# ---- plans: tls: and hosts: -------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def certs_beside(tmp_path, tls_certs) -> None:
    """The CA and client pair copied next to the plan, so it names them relatively."""
    for source, name in ((tls_certs.ca, "ca.pem"), (tls_certs.client.cert, "client.pem"),
                         (tls_certs.client.key, "client.key"), (tls_certs.leaf.cert, "leaf.pem")):
        (tmp_path / name).write_bytes(source.read_bytes())


MIXED = """\
target: https://127.0.0.1:8443
tls:
  cacert: ca.pem
  tls_min: 1.3
hosts:
  auth:
    url: https://localhost:9443/v1
    tls: {cert: client.pem, key: client.key, sni: auth.internal}
  plain:
    url: http://127.0.0.1:8080
load: {vus: 2, duration: 1s}
scenarios:
  - name: s
    steps:
      - {name: home, request: GET /}
      - {name: login, request: "POST auth:/login"}
      - {name: me, request: GET https://localhost:9443/me}
      - {name: other, request: GET https://127.0.0.2:7443/x}
      - {name: health, request: "GET plain:/health"}
"""


def test_a_plan_mixes_http_and_https_hosts_each_with_its_options(tmp_path, tls_certs):
    certs_beside(tmp_path, tls_certs)
    plan, found = check_file(write(tmp_path, MIXED))
    assert found == []
    home, login, me, other, health = plan.steps
    ca = str(tmp_path / "ca.pem")
    top = TlsOptions(cacert=ca, tls_min="1.3")
    assert plan.target.tls == top and home.host.tls == top
    # a named host: its keys over the top-level ones, its url's path as the prefix
    auth = TlsOptions(cacert=ca, tls_min="1.3", cert=str(tmp_path / "client.pem"),
                      key=str(tmp_path / "client.key"), sni="auth.internal")
    assert login.host.tls == auth and login.path.parts == ("/v1/login",)
    assert (login.host.host, login.host.port) == ("localhost", 9443)
    assert me.host == login.host                  # the same origin, written as an absolute URL: the same pool
    assert other.host.tls == top                  # an https origin no host names: the top-level options
    assert health.host.tls is None and health.host.scheme == "http"
    assert len(plan.hosts) == 4


def test_the_command_line_overrides_the_top_level_block_and_a_host_overrides_both(tmp_path, tls_certs):
    certs_beside(tmp_path, tls_certs)
    path = write(tmp_path, MIXED)
    built = build_workload(path, options(tls_min="1.2", insecure=True))
    assert built.problems == ()
    home, login = built.workload.steps[:2]
    assert (home.host.tls.tls_min, home.host.tls.insecure) == ("1.2", True)
    assert (login.host.tls.tls_min, login.host.tls.sni) == ("1.2", "auth.internal")


def test_command_line_tls_flags_need_an_https_host_in_the_plan(tmp_path):
    path = write(tmp_path, """\
target: http://127.0.0.1:8080
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""")
    assert [p.text for p in build_workload(path, options(insecure=True)).problems] == [
        f"-k/--insecure: TLS options apply to https:// hosts only, and every host of {path} is plain HTTP"]


@pytest.mark.parametrize("text, expected", [
    # a missing file, relative to the plan's folder, on the line of its key
    ("""\
target: https://127.0.0.1:8443
tls:
  cacert: missing.pem
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""", ["plan.yaml:3 tls.cacert: cannot read '{dir}/missing.pem': No such file or directory"]),
    # a host's cert without its key; an unknown key with a suggestion; a bad version
    ("""\
target: https://127.0.0.1:8443
hosts:
  api:
    url: https://127.0.0.1:9443
    tls:
      cert: client.pem
      insecur: true
      tls_max: 1.1
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: "GET api:/"}]}]
""", ["plan.yaml:6 hosts.api.tls.cert: needs key too (the client certificate's private key, PEM)",
      "plan.yaml:7 hosts.api.tls.insecur: unknown key, did you mean 'insecure'?",
      "plan.yaml:8 hosts.api.tls.tls_max: got 1.1, allowed: 1.2, 1.3 (a string: \"1.3\")"]),
    # tls: on an http host; a top-level tls: with no https host at all
    ("""\
target: http://127.0.0.1:8080
tls: {insecure: true}
hosts:
  api: {url: "http://127.0.0.1:9000", tls: {insecure: true}}
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""", ["plan.yaml:4 hosts.api.tls: applies only to https hosts; this host's url is http://127.0.0.1:9000/"]),
    ("""\
target: http://127.0.0.1:8080
tls: {insecure: true}
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""", ["plan.yaml:2 tls: no https host in this plan: the target and every request are http://"]),
    # two names for one origin; a request naming a host that is not there
    ("""\
target: https://127.0.0.1:8443
hosts:
  a: {url: "https://127.0.0.1:9443"}
  b: {url: "https://127.0.0.1:9443/other"}
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: x, request: "GET c:/"}]}]
""", ["plan.yaml:4 hosts.b.url: the same host as hosts.a (https://127.0.0.1:9443/); name each host once",
      "plan.yaml:6 scenarios[0].steps[0].request: the path must start with /, be an absolute URL like "
      "http://host:port/path, or name a host like api:/path, got 'c:/' ('c' is not a host under hosts:, "
      "which has: a)"]),
    ("""\
target: https://127.0.0.1:8443
tls: {resume: "yes", insecure: true}
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""", ["plan.yaml:2 tls.resume: expected true or false, got 'yes'"]),
])
def test_plan_tls_problems_are_each_one_line_with_file_and_line(tmp_path, tls_certs, text, expected):
    certs_beside(tmp_path, tls_certs)
    path = write(tmp_path, text)
    _, found = check_file(path)
    assert [line.removeprefix(str(tmp_path) + os.sep) for line in found] == [
        line.replace("{dir}", str(tmp_path)) for line in expected]


def test_openssl_problems_in_a_plan_name_the_hosts_tls_block(tmp_path, tls_certs):
    """A key that is not its certificate's: one line at the host's tls: line."""
    certs_beside(tmp_path, tls_certs)
    path = write(tmp_path, """\
target: http://127.0.0.1:8080
hosts:
  api:
    url: https://127.0.0.1:9443
    tls: {cert: leaf.pem, key: client.key}
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: "GET api:/"}]}]
""")
    _, found = check_file(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:5 hosts.api.tls: "), found


def test_toml_plans_take_the_same_blocks(tmp_path, tls_certs):
    certs_beside(tmp_path, tls_certs)
    path = write(tmp_path, """\
target = "https://127.0.0.1:8443"
[tls]
cacert = "ca.pem"
tls_max = "1.3"
[hosts.auth]
url = "https://localhost:9443"
tls = {insecure = true}
[load]
vus = 1
duration = "1s"
[[scenarios]]
name = "s"
steps = [{name = "a", request = "GET auth:/x"}, {name = "b", request = "GET /"}]
""", name="plan.toml")
    plan, found = check_file(path)
    assert found == []
    assert plan.steps[0].host.tls == TlsOptions(cacert=str(tmp_path / "ca.pem"), tls_max="1.3", insecure=True)
    assert plan.steps[1].host.tls == TlsOptions(cacert=str(tmp_path / "ca.pem"), tls_max="1.3")


def test_surge_validate_reports_tls_problems_with_their_lines(tmp_path):
    from tests.helpers import run_surge

    path = write(tmp_path, """\
target: https://127.0.0.1:8443
tls:
  cacert: missing.pem
  tls_min: "1.3"
  tls_max: "1.2"
load: {vus: 1, duration: 1s}
scenarios: [{name: s, steps: [{name: a, request: GET /}]}]
""")
    run = run_surge("validate", path, json_result=False)
    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert lines == [f"{path}:3 tls.cacert: cannot read '{tmp_path / 'missing.pem'}': No such file or directory",
                     f"{path}:4 tls.tls_min: 1.3 is above tls_max 1.2: no version would be left"]


def test_a_plans_tls_flags_are_checked_as_flags_before_the_plan_is_read(tmp_path, tls_certs):
    certs_beside(tmp_path, tls_certs)
    path = write(tmp_path, MIXED)
    missing = str(tmp_path / "nope.pem")
    assert [p.text for p in build_workload(path, options(cacert=missing)).problems] == [
        f"--cacert: cannot read {missing!r}: No such file or directory"]
