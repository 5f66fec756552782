"""`surge run https://...` against nginx over TLS: verification on by default,
its failures end the run before any load with the reason and the fix (exit 1),
and bad TLS options are one line (exit 2).  Certificates: tests/support/tls.py."""
from __future__ import annotations

import pytest

from tests.helpers import assert_one_line_error, run_surge

QUICK = ("-n", "20", "-c", "2", "-w", "1", "-q")


def refused_before_any_load(server, *args, fragments=(), served=0):
    """Run surge, expect exit 1 with one line, and nginx serving nothing (a plain
    HTTP port answers the probe's ClientHello as one bad request: served=1)."""
    before = server.requests()
    run = run_surge("run", *args, *QUICK, json_result=False)
    assert_one_line_error(run, 1, *fragments)
    assert server.requests() - before == served
    return run.stderr.strip()


def test_a_self_signed_certificate_is_refused_with_the_reason_and_the_fix(nginx_tls):
    server = nginx_tls("self_signed")
    line = refused_before_any_load(server, server.tls_url)
    assert line == (f"surge run: error: {server.tls_url}: certificate verify failed (self-signed certificate); "
                    f"use --cacert FILE or --insecure")


def test_a_certificate_from_an_unknown_ca_is_refused(nginx_tls, tls_certs):
    server = nginx_tls("untrusted")
    refused_before_any_load(server, server.tls_url, "--cacert", str(tls_certs.ca),
                            fragments=("certificate verify failed", "use --cacert FILE or --insecure"))


def test_with_the_ca_it_is_verified_and_runs(nginx_tls, tls_certs):
    server = nginx_tls("leaf")
    before = server.requests()
    run = run_surge("run", server.tls_url, "--cacert", str(tls_certs.ca), *QUICK)
    assert run.code == 0, run.stderr
    assert server.requests() - before == 20
    assert run.result["totals"]["requests"] == 20
    tls = run.result["config"]["tls"]
    assert tls["verify"] is True and tls["server_name"] == "127.0.0.1"
    assert tls["probe"]["protocol"] == "TLSv1.3"


def test_a_certificate_for_another_name_is_refused_and_sni_names_it(nginx_tls, tls_certs):
    server = nginx_tls("wrong_name")
    refused_before_any_load(server, server.tls_url, "--cacert", str(tls_certs.ca),
                            fragments=("mismatch", "use --sni NAME"))
    run = run_surge("run", server.tls_url, "--cacert", str(tls_certs.ca), "--sni", "wrong.example", *QUICK)
    assert run.code == 0, run.stderr
    assert run.result["config"]["tls"]["server_name"] == "wrong.example"


def test_an_expired_certificate_is_refused(nginx_tls, tls_certs):
    server = nginx_tls("expired")
    refused_before_any_load(server, server.tls_url, "--cacert", str(tls_certs.ca),
                            fragments=("expired", "--insecure"))


def test_insecure_runs_against_a_self_signed_certificate_and_says_so(nginx_tls):
    server = nginx_tls("self_signed")
    before = server.requests()
    run = run_surge("run", server.tls_url, "--insecure", *QUICK)
    assert run.code == 0, run.stderr
    assert server.requests() - before == 20
    assert run.result["config"]["tls"]["verify"] is False
    assert "NOT VERIFIED (--insecure)" in run.stdout


def test_https_to_a_plain_http_port_says_so(nginx_tls):
    server = nginx_tls("leaf")
    plain_as_https = server.url.replace("http://", "https://")
    refused_before_any_load(server, plain_as_https, fragments=(plain_as_https, "is this port HTTPS?"), served=1)


@pytest.mark.parametrize("make_args, fragments", [
    (lambda certs, tmp: ["--cacert", str(tmp / "missing.pem")], ["--cacert", "missing.pem", "cannot read"]),
    (lambda certs, tmp: ["--cert", str(certs.client.cert)], ["--cert", "needs --key"]),
    (lambda certs, tmp: ["--cert", str(certs.leaf.cert), "--key", str(certs.client.key)], []),
    (lambda certs, tmp: ["--ciphers", "NOT-A-CIPHER"], ["NOT-A-CIPHER"]),
    (lambda certs, tmp: ["--tls-min", "1.3", "--tls-max", "1.2"], ["--tls-min", "--tls-max"]),
    (lambda certs, tmp: ["--tls-min", "1.1"], ["--tls-min", "1.1"]),
    (lambda certs, tmp: ["-k", "--sni", "a" * 300], ["--sni", "not a valid host name"]),      # was exit 0, no SNI
    (lambda certs, tmp: ["--sni", "\u00e4" * 70], ["--sni", "not a valid host name"]),      # was a traceback
])
def test_bad_tls_options_are_one_line_and_exit_2(tls_certs, tmp_path, make_args, fragments):
    run = run_surge("run", "https://127.0.0.1:9/", *make_args(tls_certs, tmp_path), *QUICK, json_result=False)
    assert_one_line_error(run, 2, *fragments)


def test_tls_flags_with_an_http_url_are_refused(tls_certs):
    run = run_surge("run", "http://127.0.0.1:9/", "--cacert", str(tls_certs.ca), "-k", *QUICK, json_result=False)
    assert_one_line_error(run, 2, "--cacert", "-k/--insecure", "https:// URLs only")


@pytest.mark.parametrize("via", ["flag", "SSLKEYLOGFILE"])
def test_keylog_writes_nss_key_lines(nginx_tls, tls_certs, tmp_path, via, monkeypatch):
    server = nginx_tls("leaf")
    keylog = tmp_path / "keys.log"
    if via == "flag":
        args = ("--keylog", str(keylog))
    else:
        monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
        args = ()
    run = run_surge("run", server.tls_url, "--cacert", str(tls_certs.ca), *args, *QUICK)
    assert run.code == 0, run.stderr
    labels = {line.split()[0] for line in keylog.read_text().splitlines() if line.strip()}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"} <= labels
    assert run.result["config"]["tls"]["keylog"] is True
