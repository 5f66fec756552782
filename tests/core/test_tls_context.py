"""surge.core._tls: the TLS context's options and files, and probe()'s
handshake against real servers (nginx over TLS, the faulty TLS servers).
Each certificate of the kit fails verification for its own reason."""
import gc
import os
import socket

import pytest

from surge.core._tls import TlsConfigError, TlsContext, TlsHandshakeError
from surge.run.addresses import pack_sockaddr
from tests.support.faulty import FaultyServer

PROBE_TIMEOUT_S = 5.0


def address(port: int, host: str = "127.0.0.1") -> tuple[int, bytes]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockaddr = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    return family, pack_sockaddr(family, sockaddr)


def probe(context: TlsContext, port: int, host: str = "127.0.0.1", timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    return context.probe(*address(port, host), timeout_s)


# ---- verification ---------------------------------------------------------------------
def test_a_verified_handshake_with_cacert_says_what_was_negotiated(nginx_tls, tls_certs):
    server = nginx_tls()
    got = probe(TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca)), server.tls_port)
    assert got["protocol"] == "TLSv1.3"
    assert got["cipher"].startswith("TLS_")
    assert got["group"] == "X25519"                 # OpenSSL's first choice, which nginx takes
    assert got["alpn"] == "http/1.1"


def test_a_host_name_is_checked_against_the_dns_names(nginx_tls, tls_certs):
    server = nginx_tls()
    assert probe(TlsContext(server_name="localhost", cacert=str(tls_certs.ca)), server.tls_port)["protocol"]


@pytest.mark.parametrize("cert, server_name, reason", [
    ("self_signed", "127.0.0.1", "certificate verify failed (self-signed certificate)"),
    ("untrusted", "127.0.0.1", "certificate verify failed (unable to get local issuer certificate)"),
    ("expired", "127.0.0.1", "certificate verify failed (certificate has expired)"),
    ("wrong_name", "127.0.0.1", "certificate verify failed (IP address mismatch)"),
    ("wrong_name", "localhost", "certificate verify failed (hostname mismatch)"),
])
def test_a_certificate_that_fails_verification_fails_the_probe_with_its_reason(nginx_tls, tls_certs, cert,
                                                                               server_name, reason):
    server = nginx_tls(cert)
    with pytest.raises(TlsHandshakeError) as failure:
        probe(TlsContext(server_name=server_name, cacert=str(tls_certs.ca)), server.tls_port)
    assert str(failure.value) == reason


@pytest.mark.parametrize("cert", ["self_signed", "untrusted", "expired", "wrong_name"])
def test_insecure_accepts_any_certificate(nginx_tls, cert):
    server = nginx_tls(cert)
    assert probe(TlsContext(server_name="127.0.0.1", verify=False), server.tls_port)["protocol"] == "TLSv1.3"


def test_without_cacert_only_the_system_trust_store_counts(nginx_tls):
    server = nginx_tls()
    with pytest.raises(TlsHandshakeError, match=r"^certificate verify failed \(unable to get local issuer"):
        probe(TlsContext(server_name="127.0.0.1"), server.tls_port)


def test_the_name_to_check_can_differ_from_the_address(nginx_tls, tls_certs):
    """--sni: connect by IP, send and check another name."""
    server = nginx_tls("wrong_name")
    got = probe(TlsContext(server_name="wrong.example", cacert=str(tls_certs.ca)), server.tls_port)
    assert got["protocol"] == "TLSv1.3"


def test_an_ipv6_literal_is_checked_as_an_ip_address(nginx_tls, tls_certs):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    server = nginx_tls(ipv6=True)
    context = TlsContext(server_name="[::1]", cacert=str(tls_certs.ca))
    assert context.server_name == "::1"
    assert probe(context, server.tls_port, host="::1")["protocol"] == "TLSv1.3"


# ---- versions, ciphers, groups ----------------------------------------------------------
def test_versions_ciphers_and_groups_are_what_the_server_is_offered(nginx_tls, tls_certs):
    server = nginx_tls(protocols="TLSv1.2 TLSv1.3")
    ca = str(tls_certs.ca)
    assert probe(TlsContext(server_name="127.0.0.1", cacert=ca, max_version="1.2"),
                 server.tls_port)["protocol"] == "TLSv1.2"
    tls12 = probe(TlsContext(server_name="127.0.0.1", cacert=ca, max_version="1.2",
                             ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"), server.tls_port)
    assert tls12["cipher"] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    tls13 = probe(TlsContext(server_name="127.0.0.1", cacert=ca, tls13_ciphers="TLS_CHACHA20_POLY1305_SHA256",
                             groups="P-256"), server.tls_port)
    assert (tls13["protocol"], tls13["cipher"], tls13["group"]) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256",
                                                                   "prime256v1")


def test_a_version_the_server_does_not_speak_fails_the_handshake(nginx_tls, tls_certs):
    server = nginx_tls(protocols="TLSv1.3")
    with pytest.raises(TlsHandshakeError, match="alert protocol version"):
        probe(TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca), max_version="1.2"), server.tls_port)


# ---- client certificates ----------------------------------------------------------------
def test_a_client_certificate_is_presented(nginx_tls, tls_certs):
    """With ssl_verify_client on, nginx completes the handshake either way (and
    answers 400 without a certificate, test_tls_engine); here: the pair loads."""
    server = nginx_tls(verify_client=True)
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca), cert=str(tls_certs.client.cert),
                         key=str(tls_certs.client.key))
    assert probe(context, server.tls_port)["protocol"] == "TLSv1.3"


# ---- options and files refused: one line naming them ---------------------------------------
def refused(**options) -> TlsConfigError:
    with pytest.raises(TlsConfigError) as failure:
        TlsContext(server_name=options.pop("server_name", "127.0.0.1"), **options)
    assert "\n" not in str(failure.value)
    return failure.value


def test_files_that_cannot_be_used_are_named(tls_certs, tmp_path):
    missing = str(tmp_path / "nope.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        (dict(cacert=missing), "cacert", f"cacert {missing}: cannot read it (No such file or directory)"),
        (dict(cacert=str(not_pem)), "cacert", f"cacert {not_pem}: no PEM certificate in it"),
        (dict(cert=str(not_pem), key=str(tls_certs.client.key)), "cert", f"cert {not_pem}: no PEM certificate in it"),
        (dict(cert=str(tls_certs.client.cert), key=str(not_pem)), "key",
         f"key {not_pem}: not a PEM private key, or encrypted (use an unencrypted key)"),
        (dict(cert=str(tls_certs.client.cert), key=str(tls_certs.leaf.key)), "key",
         f"key {tls_certs.leaf.key} does not match cert {tls_certs.client.cert}"),
        (dict(cert=str(tls_certs.client.cert)), "key", "cert without key: a client certificate needs both"),
        (dict(key=str(tls_certs.client.key)), "cert", "key without cert: a client certificate needs both"),
        (dict(keylog=str(tmp_path / "no-such-dir" / "keys.log")), "keylog",
         f"keylog {tmp_path / 'no-such-dir' / 'keys.log'}: cannot open it for appending (No such file or directory)"),
    ]
    for options, option, message in cases:
        error = refused(**options)
        assert (error.option, str(error)) == (option, message)


def test_options_outside_what_is_allowed_are_named():
    assert str(refused(min_version="1.1")) == "min_version '1.1': allowed 1.2, 1.3"
    assert str(refused(min_version="1.3", max_version="1.2")) == "min_version 1.3 is above max_version 1.2"
    assert refused(ciphers="NO-SUCH-CIPHER").option == "ciphers"
    assert refused(tls13_ciphers="TLS_NO_SUCH").option == "tls13_ciphers"
    assert str(refused(groups="P-999")).startswith("groups 'P-999': allowed")
    assert refused(server_name="").option == "server_name"


def test_the_keylog_gets_nss_lines_for_each_handshake(nginx_tls, tls_certs, tmp_path):
    server = nginx_tls()
    keylog = tmp_path / "keys.log"
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca), keylog=str(keylog))
    probe(context, server.tls_port)
    labels = [line.split(" ")[0] for line in keylog.read_text().splitlines()]
    assert set(labels) == {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                           "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"}
    assert all(len(line.split(" ")) == 3 for line in keylog.read_text().splitlines())
    assert oct(keylog.stat().st_mode & 0o777) == "0o600"


# ---- servers that do not speak TLS ------------------------------------------------------------
def test_a_probe_fails_with_the_reason_of_a_server_that_misbehaves():
    context = TlsContext(server_name="127.0.0.1", verify=False)
    with FaultyServer("tls_garbage") as server:
        with pytest.raises(TlsHandshakeError, match="^(wrong version number|packet length too long)$"):
            probe(context, server.port)
    with FaultyServer("tls_reset") as server:
        with pytest.raises(TlsHandshakeError, match="^connection reset by peer during the handshake$"):
            probe(context, server.port)
    with FaultyServer("tls_silent") as server:
        with pytest.raises(TlsHandshakeError, match=r"^no handshake answer within 0\.2 s$"):
            probe(context, server.port, timeout_s=0.2)


def test_a_refused_tcp_connect_is_an_os_error():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]          # bound, not listening: refused
        with pytest.raises(ConnectionRefusedError):
            probe(TlsContext(server_name="127.0.0.1", verify=False), port)


def test_a_probe_keeps_no_session_so_the_first_handshakes_of_a_run_are_full(nginx_tls, tls_certs):
    server = nginx_tls()
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca))
    probe(context, server.tls_port)
    assert not context.has_session


def test_a_context_refused_early_closes_no_descriptor_it_does_not_own():
    """__dealloc__ of a TlsContext whose __init__ failed on its first check used
    to close fd 0 (the zeroed keylog descriptor)."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(read_end, 0)
        with pytest.raises(TlsConfigError):
            TlsContext(server_name="")
        gc.collect()
        os.fstat(0)                     # still open: raises OSError (EBADF) otherwise
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)


@pytest.mark.parametrize("name", ["::2%lo", "fe80::1%eth0"])
def test_an_address_openssl_cannot_check_is_refused_not_left_unchecked(name):
    """OpenSSL refuses a scoped IPv6 literal as the identity to check; ignoring
    that would let any certificate the CA signed pass."""
    with pytest.raises(TlsConfigError) as refused:
        TlsContext(server_name=name)
    assert refused.value.option == "server_name" and name in str(refused.value)


@pytest.mark.parametrize("name", ["ä" * 70, "a" * 64 + ".example", ("abc." * 70) + "com"])
def test_a_name_that_is_no_host_name_is_a_config_error(name):
    with pytest.raises(TlsConfigError) as refused:
        TlsContext(server_name=name, verify=False)
    assert refused.value.option == "server_name" and "\n" not in str(refused.value)
