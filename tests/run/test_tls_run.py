"""Runs over TLS against nginx, counted by nginx's stub_status: exact -n,
mTLS (400s without a client certificate, 200s with one), a plan mixing http
and https hosts with per-host options, --disable-keepalive's one connection
per request, and SIGINT mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.helpers import run_surge


def test_exactly_n_requests_over_tls(nginx_tls, tls_certs):
    server = nginx_tls("leaf")
    before = server.requests()
    run = run_surge("run", server.tls_url, "--cacert", str(tls_certs.ca), "-n", "1000", "-c", "8", "-w", "2", "-q")
    assert run.code == 0, run.stderr
    assert server.requests() - before == 1000
    assert run.result["totals"]["requests"] == 1000
    assert run.result["totals"]["responses_by_status"] == {"200": 1000}


def test_mtls_without_a_client_certificate_gets_400s_and_with_one_200s(nginx_tls, tls_certs):
    server = nginx_tls("leaf", verify_client=True)
    common = ("--cacert", str(tls_certs.ca), "-n", "50", "-c", "2", "-w", "1", "-q")
    without = run_surge("run", server.tls_url, *common)
    assert without.code == 0, without.stderr            # answered: the 400s are failed requests, counted
    assert without.result["totals"]["responses_by_status"] == {"400": 50}
    before = server.requests()
    with_cert = run_surge("run", server.tls_url, *common, "--cert", str(tls_certs.client.cert),
                          "--key", str(tls_certs.client.key))
    assert with_cert.code == 0, with_cert.stderr
    assert with_cert.result["totals"]["responses_by_status"] == {"200": 50}
    assert server.requests() - before == 50


def test_a_plan_with_an_https_host_and_an_http_host(nginx_tls, tls_certs, tmp_path):
    """One server, reached over plain HTTP (the target) and over TLS (a named
    host whose tls: trusts the CA beside the plan): nginx serves what both report."""
    server = nginx_tls("leaf")
    (tmp_path / "ca.pem").write_bytes(tls_certs.ca.read_bytes())
    plan = tmp_path / "mixed.yaml"
    plan.write_text(f"""\
target: {server.url}
hosts:
  secure:
    url: {server.tls_url}
    tls: {{cacert: ca.pem, tls_min: "1.3"}}
load: {{vus: 2, duration: 2s}}
scenarios:
  - name: both
    steps:
      - {{name: plain, request: GET /plain}}
      - {{name: secure, request: "GET secure:/secure"}}
""")
    before = server.requests()
    run = run_surge("run", str(plan), "-w", "1", "-q")
    assert run.code == 0, run.stderr
    steps = {step["step"]: step for step in run.result["steps"]}
    assert steps["plain"]["requests"] > 0 and steps["secure"]["requests"] > 0
    assert steps["secure"]["responses_by_status"] == {"200": steps["secure"]["requests"]}
    totals = run.result["totals"]          # a timed run: what was in flight at the stop may have been served
    assert 0 <= server.requests() - before - totals["requests"] <= totals["in_flight_at_stop"]
    hosts = {entry["host"]: entry for entry in run.result["config"]["host_addresses"]}
    secure = hosts[server.tls_url.removeprefix("https://").rstrip("/")]
    assert secure["tls"]["verify"] is True and secure["tls"]["tls_min"] == "1.3"
    assert secure["tls"]["probe"]["protocol"] == "TLSv1.3"


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_disable_keepalive_opens_one_connection_per_request(nginx_tls, tls_certs, scheme):
    server = nginx_tls("leaf")
    url = server.tls_url if scheme == "https" else server.url
    # Before the load: the address choice connects once, and an https host's probe handshake once more.
    before_load = 2 if scheme == "https" else 1
    before, served = server.connections(), server.requests()
    run = run_surge("run", url, "--cacert", str(tls_certs.ca), "--disable-keepalive", "-n", "60", "-c", "3",
                    "-w", "1", "-q") if scheme == "https" else \
        run_surge("run", url, "--disable-keepalive", "-n", "60", "-c", "3", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert server.requests() - served == 60
    assert server.connections() - before == 60 + before_load
    assert run.result["totals"]["connections_opened"] == 60
    assert run.result["config"]["keepalive"] is False
    assert run.result["totals"]["requests"] == 60


@pytest.mark.parametrize("keepalive", [True, False], ids=["keepalive", "handshake-per-request"])
def test_sigint_during_a_tls_run_exits_130_with_the_result(nginx_tls, tls_certs, keepalive):
    server = nginx_tls("leaf")
    path = os.path.join(tempfile.mkdtemp(prefix="surge-tls-sig-"), "r.json")
    args = [sys.executable, "-m", "surge", "run", server.tls_url, "--cacert", str(tls_certs.ca), "-d", "60s",
            "-c", "4", "-w", "2", "--json", path] + ([] if keepalive else ["--disable-keepalive"])
    before = server.requests()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while server.requests() - before < 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)                    # until the load is flowing
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    with open(path) as f:
        result = json.load(f)
    assert result["interrupted"] is True
    assert result["totals"]["requests"] >= 200
    assert result["totals"]["requests"] <= server.requests() - before


def test_connections_opened_before_the_start_keep_their_connect_and_handshake_times(nginx_tls, tls_certs):
    """The Ready snapshot resets the engine's interval histograms; the worker
    adds what it held into the next one, so every connection's times count."""
    from surge.plan.build import build_workload
    from surge.plan.options import RunOptions
    from surge.run.supervisor import run_workload

    server = nginx_tls("leaf")
    built = build_workload(server.tls_url, RunOptions(connections=6, workers=1, duration_ns=1_500_000_000,
                                                      cacert=str(tls_certs.ca)))
    record = run_workload(built.workload)
    opened = record.workers[0].latest()["connections_opened"]
    assert opened >= 6
    # every interval's times added (the finished seconds' running histograms and the rest)
    assert record.total_histogram("connect").total_count == opened
    assert record.total_histogram("tls_handshake").total_count == opened


def test_tls_resume_on_resumes_and_off_does_full_handshakes(nginx_tls, tls_certs):
    """A handshake per request: with --tls-resume on (the default) the later
    ones resume the session; off, every one is full.  nginx's log says the same.
    (>= 40: until the engine stops opening a connection after the last request.)"""
    server = nginx_tls("leaf", log=True)
    common = ("--cacert", str(tls_certs.ca), "--disable-keepalive", "-n", "40", "-c", "2", "-w", "1", "-q")
    on = run_surge("run", server.tls_url, *common)
    log_on = server.tls_log(at_least=40)
    off = run_surge("run", server.tls_url, *common, "--tls-resume", "off")
    assert on.code == 0 and off.code == 0, (on.stderr, off.stderr)
    handshakes_on, handshakes_off = on.result["tls"]["handshakes"], off.result["tls"]["handshakes"]
    assert handshakes_on["full"] + handshakes_on["resumed"] >= 40
    assert handshakes_on["resumed"] >= 40 - 2 * 2      # at most a couple of full ones per connection slot
    assert handshakes_off["resumed"] == 0 and handshakes_off["full"] >= 40
    assert off.result["config"]["tls"]["resume"] is False
    log_off = server.tls_log(at_least=80)[len(log_on):]
    assert sum(1 for line in log_on if line["reused"] == "r") >= 40 - 2 * 2
    assert [line["reused"] for line in log_off] == ["."] * 40
