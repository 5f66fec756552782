"""Self-test of the TLS test kit: the certificates fail (or pass) verification
for the reasons their names promise, nginx_tls serves them, mTLS and
resumption behave as the surge tests will rely on, and the faulty TLS servers
misbehave as documented. The client here is Python's ssl module: it is the
test's own instrument, not the code under test."""

import socket
import ssl
import sys
from pathlib import Path

import pytest

from .faulty import GARBAGE, FaultyServer
from .tls import PAIR_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from nginx import TlsListener  # noqa: E402

CLIENT_TIMEOUT_S = 5.0
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def client_context(cafile, cert=None, key=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def get_status(context: ssl.SSLContext, port: int, server_hostname: str = "127.0.0.1",
               session=None) -> tuple[int, ssl.SSLSocket]:
    """One GET over a fresh TLS connection: (status code, the socket, still open)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S)
    tls = context.wrap_socket(raw, server_hostname=server_hostname, session=session)
    tls.sendall(GET)
    head = b""
    while b"\r\n\r\n" not in head:
        data = tls.recv(4096)
        assert data, f"EOF before a response head; got {head!r}"
        head += data
    return int(head.split(b" ", 2)[1]), tls


def test_certificates_are_ecdsa_p256_pem_files_in_the_tmp_dir(tls_certs):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    for name in PAIR_NAMES:
        pair = tls_certs.pair(name)
        assert pair.name == name
        assert pair.cert.parent == tls_certs.directory and pair.key.parent == tls_certs.directory
        certificate = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        public_key = certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey), name
        assert public_key.curve.name == "secp256r1", name
        assert b"PRIVATE KEY" in pair.key.read_bytes(), name
    with pytest.raises(ValueError, match="must be one of leaf, wrong_name"):
        tls_certs.pair("directory")


@pytest.mark.parametrize("cert, reason", [
    ("wrong_name", "IP address mismatch"),
    ("expired", "certificate has expired"),
    ("self_signed", "self-signed certificate"),
    ("untrusted", "unable to get local issuer certificate"),
])
def test_each_bad_certificate_fails_verification_for_its_reason(nginx_tls, tls_certs, cert, reason):
    server = nginx_tls(cert)
    with pytest.raises(ssl.SSLCertVerificationError) as failure:
        get_status(client_context(tls_certs.ca), server.tls_port)
    assert reason in failure.value.verify_message


def test_leaf_verifies_by_ip_v4_v6_and_name_over_tls13(nginx_tls, tls_certs):
    server = nginx_tls(ipv6=True, log=True)
    before = server.requests()
    context = client_context(tls_certs.ca)
    for host in ("127.0.0.1", "localhost"):
        status, tls = get_status(context, server.tls_port, server_hostname=host)
        assert status == 200 and tls.version() == "TLSv1.3"
        tls.close()
    family_v6 = socket.create_connection(("::1", server.tls_port), timeout=CLIENT_TIMEOUT_S)
    with context.wrap_socket(family_v6, server_hostname="::1") as tls:
        tls.sendall(GET)
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    assert server.requests() - before == 3
    assert server.tls_url_for("::1") == f"https://[::1]:{server.tls_port}/"
    assert {entry["protocol"] for entry in server.tls_log(at_least=3)} == {"TLSv1.3"}


def test_wrong_name_passes_when_the_name_it_is_for_is_checked(nginx_tls, tls_certs):
    status, tls = get_status(client_context(tls_certs.ca), nginx_tls("wrong_name").tls_port,
                             server_hostname="wrong.example")
    tls.close()
    assert status == 200


def test_mtls_answers_400_without_a_client_certificate_and_200_with_it(nginx_tls, tls_certs):
    server = nginx_tls(verify_client=True, log=True)
    before, logged_before = server.requests(), len(server.tls_log())
    status, tls = get_status(client_context(tls_certs.ca), server.tls_port)
    tls.close()
    assert status == 400
    status, tls = get_status(client_context(tls_certs.ca, tls_certs.client.cert, tls_certs.client.key),
                             server.tls_port)
    tls.close()
    assert status == 200
    # A certificate from a CA nginx does not trust for clients is refused too.
    status, tls = get_status(client_context(tls_certs.ca, tls_certs.untrusted.cert, tls_certs.untrusted.key),
                             server.tls_port)
    tls.close()
    assert status == 400
    assert server.requests() - before == 3
    entries = server.tls_log(at_least=logged_before + 3)[logged_before:]
    verdicts = [(entry["status"], entry["client_verify"].split(":")[0]) for entry in entries]
    assert verdicts == [("400", "NONE"), ("200", "SUCCESS"), ("400", "FAILED")]


@pytest.mark.parametrize("protocols, tickets", [("TLSv1.3", True), ("TLSv1.3", False), ("TLSv1.2", True)])
def test_sessions_resume_and_the_log_says_so(nginx_tls, tls_certs, protocols, tickets):
    server = nginx_tls(protocols=protocols, session_tickets=tickets, log=True)
    logged_before = len(server.tls_log())
    context = client_context(tls_certs.ca)
    _status, first = get_status(context, server.tls_port)
    session = first.session   # TLS 1.3: the ticket arrived with the response
    first.close()
    _status, second = get_status(context, server.tls_port, session=session)
    assert second.session_reused
    second.close()
    entries = server.tls_log(at_least=logged_before + 2)[logged_before:]
    assert [entry["reused"] for entry in entries] == [".", "r"]
    assert entries[-1]["protocol"] == protocols


def test_status_counts_tls_connections_in_accepts(nginx_tls, tls_certs):
    server = nginx_tls()
    accepts_before = server.status()["accepts"]
    for _ in range(3):
        _status, tls = get_status(client_context(tls_certs.ca), server.tls_port)
        tls.close()
    # +1: the status request itself is a connection too.
    assert server.status()["accepts"] - accepts_before == 3 + 1


def test_listener_options_are_checked():
    with pytest.raises(ValueError, match="needs client_ca"):
        TlsListener(cert="c.pem", key="c.key", verify_client="on")
    with pytest.raises(ValueError, match="must be off, on or optional"):
        TlsListener(cert="c.pem", key="c.key", verify_client="yes")


# -- faulty TLS servers ----------------------------------------------------------

def handshake(server: FaultyServer, timeout_s: float = CLIENT_TIMEOUT_S):
    context = ssl.create_default_context()
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s)
    try:
        context.wrap_socket(raw, server_hostname="127.0.0.1").close()
    finally:
        raw.close()


def test_tls_garbage_answers_the_client_hello_with_garbage():
    with FaultyServer("tls_garbage") as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S)
        with raw:
            # A ClientHello-shaped record: handshake type, TLS 1.0 record version, 3 bytes.
            raw.sendall(b"\x16\x03\x01\x00\x03abc")
            received = b""
            while data := raw.recv(4096):
                received += data
        assert received == GARBAGE
        with pytest.raises(ssl.SSLError):
            handshake(server)
        assert server.client_hellos == 2


def test_tls_reset_resets_after_the_client_hello():
    with FaultyServer("tls_reset") as server:
        with pytest.raises(ConnectionResetError):
            handshake(server)
        assert server.client_hellos == 1


def test_tls_silent_never_answers_and_the_client_times_out():
    with FaultyServer("tls_silent") as server:
        with pytest.raises((TimeoutError, socket.timeout)):
            handshake(server, timeout_s=0.3)
        assert server.wait_for_client_hellos(1)
        assert server.connections == 1


def test_tls_kinds_ignore_a_client_that_is_not_tls():
    with FaultyServer("tls_garbage") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S) as raw:
            raw.sendall(GET)
            assert raw.recv(4096) == b""   # closed without an answer
        assert server.client_hellos == 0
