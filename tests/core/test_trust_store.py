"""The system trust store (surge.core._tls.trust_system_store): the same
certificates as OpenSSL's default verify paths, SSL_CERT_FILE and
SSL_CERT_DIR honoured, with the bundle file parsed only when the loaded
certificates and the hashed directory cannot answer a name."""
import shutil
import subprocess

import pytest

from surge.core._tls import TlsContext, TlsHandshakeError
from tests.core.test_tls_context import probe


@pytest.fixture
def trust_env(monkeypatch, tmp_path):
    """SSL_CERT_FILE / SSL_CERT_DIR for the contexts made in a test: both start
    pointing at nothing (an empty directory, a missing file)."""
    empty = tmp_path / "no-certs"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    return monkeypatch


def test_a_ca_in_the_bundle_file_is_trusted_without_cacert(nginx_tls, tls_certs, trust_env, tmp_path):
    bundle = tmp_path / "bundle.pem"          # other certificates first: the right one is looked up by name
    bundle.write_bytes(tls_certs.other_ca.read_bytes() + tls_certs.ca.read_bytes())
    trust_env.setenv("SSL_CERT_FILE", str(bundle))
    server = nginx_tls()
    context = TlsContext(server_name="127.0.0.1")
    assert probe(context, server.tls_port)["protocol"] == "TLSv1.3"
    assert probe(context, server.tls_port)["protocol"] == "TLSv1.3"     # the file read once serves again


def test_a_certificate_from_a_ca_the_bundle_lacks_still_fails(nginx_tls, tls_certs, trust_env, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tls_certs.ca.read_bytes())
    trust_env.setenv("SSL_CERT_FILE", str(bundle))
    server = nginx_tls("untrusted")
    with pytest.raises(TlsHandshakeError, match=r"^certificate verify failed \(unable to get local issuer"):
        probe(TlsContext(server_name="127.0.0.1"), server.tls_port)


def test_nothing_trusted_without_a_bundle_or_a_directory(nginx_tls, trust_env):
    server = nginx_tls()
    with pytest.raises(TlsHandshakeError, match=r"^certificate verify failed \(unable to get local issuer"):
        probe(TlsContext(server_name="127.0.0.1"), server.tls_port)


def test_a_ca_in_the_hashed_directory_is_trusted_without_cacert(nginx_tls, tls_certs, trust_env, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command (to name the CA by its subject hash) is not installed")
    subject_hash = subprocess.run([openssl, "x509", "-noout", "-subject_hash", "-in", str(tls_certs.ca)],
                                  capture_output=True, text=True, check=True).stdout.strip()
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    shutil.copy(tls_certs.ca, hashed / f"{subject_hash}.0")
    trust_env.setenv("SSL_CERT_DIR", str(hashed))
    server = nginx_tls()
    assert probe(TlsContext(server_name="127.0.0.1"), server.tls_port)["protocol"] == "TLSv1.3"


def test_cacert_adds_to_the_bundle_file(nginx_tls, tls_certs, trust_env, tmp_path):
    """A context trusting its --cacert and a bundle that signs another server."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tls_certs.other_ca.read_bytes())
    trust_env.setenv("SSL_CERT_FILE", str(bundle))
    ours, theirs = nginx_tls(), nginx_tls("untrusted")
    context = TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca))
    assert probe(context, ours.tls_port)["protocol"] == "TLSv1.3"
    assert probe(context, theirs.tls_port)["protocol"] == "TLSv1.3"


def test_contexts_whose_bundle_was_never_read_are_freed(tls_certs):
    for _ in range(200):                    # each holds its lazy lookup's copy of the path
        TlsContext(server_name="localhost")
    context = TlsContext(server_name="localhost", cacert=str(tls_certs.ca))
    assert context.verify
