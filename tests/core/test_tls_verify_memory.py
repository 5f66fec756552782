"""The verification memory of a TLS context (surge.core._tls.remember_verified):
certificates that verified are not verified in full again when a server
presents exactly them, while they are within their dates; any other
certificates, and every failure, are verified in full."""
import datetime
import time

import pytest

from surge.core._tls import TlsContext, TlsHandshakeError
from tests.core.test_tls_context import probe
from tests.support.tls import SERVER_NAMES, _leaf


def test_the_same_certificates_again_are_not_verified_in_full_again(nginx_tls, tls_certs):
    server = nginx_tls()
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca))
    for _ in range(3):
        assert probe(context, server.tls_port)["protocol"] == "TLSv1.3"
    assert context.verifications == (1, 2)


@pytest.mark.parametrize("cert, reason", [
    ("untrusted", "certificate verify failed (unable to get local issuer certificate)"),
    ("expired", "certificate verify failed (certificate has expired)"),
    ("wrong_name", "certificate verify failed (IP address mismatch)"),
    ("self_signed", "certificate verify failed (self-signed certificate)"),
])
def test_other_certificates_after_good_ones_are_verified_in_full(nginx_tls, tls_certs, cert, reason):
    good, bad = nginx_tls(), nginx_tls(cert)
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca))
    probe(context, good.tls_port)
    with pytest.raises(TlsHandshakeError) as failure:
        probe(context, bad.tls_port)
    assert str(failure.value) == reason
    probe(context, good.tls_port)           # what verified is still remembered
    assert context.verifications == (1, 1)


def test_a_failure_is_not_remembered(nginx_tls, tls_certs):
    server = nginx_tls("untrusted")
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca))
    for _ in range(2):
        with pytest.raises(TlsHandshakeError, match="unable to get local issuer"):
            probe(context, server.tls_port)
    assert context.verifications == (0, 0)


def test_remembered_certificates_that_expired_since_are_refused(nginx_tls, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA(organization_name="surge tests (short-lived)", key_type=trustme.KeyType.ECDSA)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(ca_path)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    expires = now + datetime.timedelta(seconds=3)
    short_lived = _leaf(ca, "short_lived", tmp_path, *SERVER_NAMES,
                        not_before=now - datetime.timedelta(hours=1), not_after=expires)
    server = nginx_tls(short_lived)
    context = TlsContext(server_name="127.0.0.1", cacert=str(ca_path))
    try:
        probe(context, server.tls_port)
    except TlsHandshakeError as exc:
        pytest.skip(f"the machine was too slow to use the certificate before it expired ({exc})")
    time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 1.5)
    with pytest.raises(TlsHandshakeError) as failure:
        probe(context, server.tls_port)
    assert str(failure.value) == "certificate verify failed (certificate has expired)"
    assert context.verifications == (1, 0)


def test_insecure_contexts_remember_nothing(nginx_tls):
    server = nginx_tls("self_signed")
    context = TlsContext(server_name="127.0.0.1", verify=False)
    probe(context, server.tls_port)
    assert context.verifications == (0, 0)
