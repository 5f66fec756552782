"""`surge serve --tls` over real loopback sockets, checked with Python's ssl client:
the throwaway certificate (what it is valid for, that it is trusted only when
passed as the CA), a given --cert/--key, the served counter over TLS, session
resumption across workers, and the option errors."""
import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest

from surge.serve import certs
from surge.serve.server import ServeProcess
from tests.helpers import assert_one_line_error, run_surge

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _exchange(server: ServeProcess, context: ssl.SSLContext, requests: int, *, name: str = "127.0.0.1",
              session: ssl.SSLSession | None = None) -> tuple[int, ssl.SSLSession, bool]:
    """`requests` pipelined GETs on one new TLS connection: the responses read,
    the session (to resume) and whether this one was resumed."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with context.wrap_socket(raw, server_hostname=name, session=session) as tls:
        tls.sendall(REQUEST * requests)
        data = b""
        while data.count(b"HTTP/1.1 200 ") < requests:
            chunk = tls.recv(65536)
            assert chunk, f"the server closed after {data.count(b'HTTP/1.1 ')} of {requests} responses"
            data += chunk
        return data.count(b"HTTP/1.1 200 "), tls.session, tls.session_reused


def _san(cert_path: str) -> set[tuple[str, str]]:
    return set(ssl._ssl._test_decode_cert(cert_path)["subjectAltName"])


def test_the_throwaway_certificate_is_trusted_as_its_own_ca_and_counted_exactly():
    with ServeProcess(tls=True, workers=2) as server:
        assert server.url.startswith("https://")
        assert server.cacert and os.path.isfile(server.cacert)
        assert f"--cacert {server.cacert}" in server.listening_line
        assert _san(server.cacert) == {("DNS", "localhost"), ("IP Address", "127.0.0.1"),
                                       ("IP Address", "0:0:0:0:0:0:0:1")}
        trusting = ssl.create_default_context(cafile=server.cacert)
        sent = 0
        for connection, name in enumerate(["127.0.0.1", "localhost"] * 4):
            answered, _, _ = _exchange(server, trusting, 1 + connection * 3, name=name)
            sent += 1 + connection * 3
            assert answered == 1 + connection * 3
        assert server.served() == sent
        # without the certificate as a CA, verification fails: it is real TLS with a real check
        with pytest.raises(ssl.SSLCertVerificationError):
            _exchange(server, ssl.create_default_context(), 1)
        # a name it is not valid for
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            _exchange(server, trusting, 1, name="example.com")
        cacert = server.cacert
        assert server.served() == sent      # a failed handshake serves nothing
    assert server.returncode == 0
    assert f"served {sent} requests" in server.output
    assert not os.path.exists(os.path.dirname(cacert)), "the throwaway key outlived the server"


def test_a_client_resumes_its_session_with_any_worker():
    # The context is made before the fork, so every worker has the same ticket keys.
    with ServeProcess(tls=True, workers=2) as server:
        context = ssl.create_default_context(cafile=server.cacert)
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        _, session, reused = _exchange(server, context, 1)
        assert session is not None and session.has_ticket and not reused
        resumed = [_exchange(server, context, 1, session=session)[2] for _ in range(8)]
        assert all(resumed), resumed
        assert server.served() == 9


@pytest.mark.parametrize("maker", ["cryptography", "openssl"])
def test_either_maker_gives_a_p256_certificate_for_loopback(tmp_path, maker):
    if maker == "cryptography":
        pytest.importorskip("cryptography")
    elif shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    (certs._with_cryptography if maker == "cryptography" else certs._with_openssl)(cert, key)
    assert os.stat(key).st_mode & 0o077 == 0, "the private key is readable by others"
    assert {("DNS", "localhost"), ("IP Address", "127.0.0.1")} <= _san(cert)
    text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"], capture_output=True,
                          text=True).stdout if shutil.which("openssl") else "prime256v1"
    assert "prime256v1" in text or "P-256" in text
    with ServeProcess(tls=True, cert=cert, key=key) as server:
        assert "throwaway" not in server.listening_line and "TLS" in server.listening_line
        assert server.cacert == cert
        answered, _, _ = _exchange(server, ssl.create_default_context(cafile=cert), 3, name="localhost")
        assert answered == 3 and server.served() == 3


def _pair(tmp_path, name: str) -> tuple[str, str]:
    directory = tmp_path / name
    directory.mkdir()
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    try:
        certs._with_cryptography(cert, key)
    except ImportError:
        certs._with_openssl(cert, key)
    return cert, key


def test_option_errors_are_one_line_and_exit_2(tmp_path):
    cert, key = _pair(tmp_path, "a")
    other_cert, _ = _pair(tmp_path, "b")
    cases = [
        (["--cert", cert, "--key", key], "--cert needs --tls"),
        (["--tls", "--cert", cert], "--cert and --key go together"),
        (["--tls", "--cert", str(tmp_path / "none.pem"), "--key", key], "none.pem: no such file"),
        (["--tls", "--cert", other_cert, "--key", key], f"--key {key} is not the key of --cert {other_cert}"),
        (["--tls", "--cert", key, "--key", key], "cannot load"),
    ]
    for args, fragment in cases:
        run = run_surge("serve", "--port", "0", *args, json_result=False, timeout_s=30)
        assert_one_line_error(run, 2, fragment)


def test_an_encrypted_key_is_refused_not_prompted_for(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = _pair(tmp_path, "a")
    locked = str(tmp_path / "locked.pem")
    subprocess.run(["openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", locked], check=True)
    proc = subprocess.run([sys.executable, "-m", "surge", "serve", "--port", "0", "--tls", "--cert", cert,
                           "--key", locked], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unencrypted" in proc.stderr


def test_the_demo_app_over_tls_routes_and_counts():
    with ServeProcess(tls=True, app="demo") as server:
        context = ssl.create_default_context(cafile=server.cacert)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /items/7 HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3)
            data = b""
            while data.count(b"HTTP/1.1 200 ") < 3:
                chunk = tls.recv(65536)
                assert chunk
                data += chunk
        assert server.routes()["GET /items/{id}"] == 3
        assert server.served() == 3


# ---- end to end: surge run against surge serve --tls ---------------------------------------------
@pytest.mark.parametrize("keepalive", [True, False])
def test_surge_run_over_tls_is_served_exactly_and_reports_its_connections(keepalive):
    with ServeProcess(tls=True, workers=2) as server:
        extra = [] if keepalive else ["--disable-keepalive"]
        run = run_surge("run", server.url + "/", "--cacert", server.cacert, "-n", "400", "-c", "4", "-w", "2",
                        *extra, timeout_s=120)
        assert run.code == 0, run.stderr
        served = server.served()
    result = run.result
    totals = result["totals"]
    assert totals["requests"] == served == 400
    tls = result["tls"]
    assert tls["verify"] is True and tls["protocol"] in ("TLSv1.2", "TLSv1.3") and tls["errors"] == {}
    opened = totals["connections_opened"]
    assert sum(p["connections_opened"] for p in result["timeseries"]) == opened
    assert tls["handshakes"]["full"] + tls["handshakes"]["resumed"] == opened
    # every connection established had one handshake timed; a TCP connect is timed before its
    # handshake, so at the stop up to one per connection (-c 4) may be up without one
    assert result["tls_handshake"]["count"] == opened
    assert opened <= result["connect"]["count"] <= opened + 4
    if keepalive:
        assert opened == 4
    else:
        assert opened >= 400 and tls["handshakes"]["resumed"] > 0      # the server issues tickets
        assert result["config"]["keepalive"] is False
        assert "keep-alive off: latency includes connect and handshake" in run.stdout
    assert f"  TLS  {tls['protocol']} {tls['cipher']} {tls['group']}, verified" in run.stdout


def test_an_insecure_run_says_so_in_its_result_and_summary():
    with ServeProcess(tls=True) as server:
        run = run_surge("run", server.url + "/", "-k", "-n", "50", "-c", "2", timeout_s=60)
        assert run.code == 0, run.stderr
        assert server.served() == 50
    assert run.result["tls"]["verify"] is False and run.result["config"]["tls"]["verify"] is False
    assert "NOT VERIFIED (--insecure)" in run.stdout
