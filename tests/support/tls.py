"""Throwaway certificates for TLS tests and benchmarks, made fresh each run.

    certs = make_certs(tmp_dir)           # the `tls_certs` fixture does this once per session
    certs.ca                              # --cacert for every server certificate below
    certs.leaf.cert, certs.leaf.key       # what nginx_tls serves by default

Everything is ECDSA P-256 (trustme's default key type) and written as PEM
files into the directory given, never into the repository: the keys are made
on the spot, so no private key is ever checked in. `make_certs` takes about
20 ms.

The certificates (each a `CertPair` of PEM paths; `CertPair.name` is the
`TlsCerts` attribute, as `nginx_tls(cert=...)` takes it):

  leaf         from the CA, for 127.0.0.1, ::1 and localhost, valid now
  wrong_name   from the CA, valid now, for wrong.example only: connecting by
               IP or localhost fails the name check (`--sni wrong.example`
               passes it)
  expired      from the CA, for the same names as leaf, expired a day ago
  self_signed  issued by itself (issuer = subject, not a CA), for the same
               names as leaf: OpenSSL's "self-signed certificate"
  untrusted    for the same names as leaf, from a second CA (`other_ca`)
               that nothing trusts: "unable to get local issuer certificate"
  client       from the CA, a client certificate for mTLS (nginx_tls with
               verify_client=True trusts the CA for clients)

Standard library, trustme and cryptography (trustme's own dependency) only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertPair", "TlsCerts", "make_certs", "SERVER_NAMES", "WRONG_NAME", "CLIENT_NAME"]

# The names every "right" server certificate is for: the loopback addresses
# (checked as IP SANs) and the loopback host name (checked as a DNS SAN).
SERVER_NAMES = ("127.0.0.1", "::1", "localhost")
WRONG_NAME = "wrong.example"
CLIENT_NAME = "surge-test-client"


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, as PEM files."""
    name: str     # its attribute on TlsCerts: "leaf", "expired", ...
    cert: Path    # the certificate alone (no chain: every issuer here is a root)
    key: Path     # its private key, unencrypted


@dataclass(frozen=True)
class TlsCerts:
    """Every certificate of one `make_certs` call (see the module docstring)."""
    directory: Path
    ca: Path          # the trusted root: --cacert, and nginx's ssl_client_certificate
    other_ca: Path    # a second root that nothing trusts (issuer of `untrusted`)
    leaf: CertPair
    wrong_name: CertPair
    expired: CertPair
    self_signed: CertPair
    untrusted: CertPair
    client: CertPair

    def pair(self, name: str) -> CertPair:
        """The CertPair called `name` ("leaf", "expired", ...); ValueError otherwise."""
        pair = getattr(self, name, None) if name in PAIR_NAMES else None
        if not isinstance(pair, CertPair):
            raise ValueError(f"certificate: must be one of {', '.join(PAIR_NAMES)}; got {name!r}")
        return pair


PAIR_NAMES = ("leaf", "wrong_name", "expired", "self_signed", "untrusted", "client")


def _write_pair(directory: Path, name: str, cert_pem: bytes, key_pem: bytes) -> CertPair:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    # Private keys readable by the owner only, like real ones; nginx's master
    # process reads them as the same user (or root) before dropping privileges.
    key_path.chmod(0o600)
    return CertPair(name, cert_path, key_path)


def _leaf(ca, name: str, directory: Path, *identities: str, **validity) -> CertPair:
    issued = ca.issue_cert(*identities, common_name=identities[0], **validity)
    return _write_pair(directory, name, issued.cert_chain_pems[0].bytes(), issued.private_key_pem.bytes())


def _self_signed(directory: Path, now: datetime.datetime) -> CertPair:
    """A leaf that signs itself: an end-entity certificate (CA:FALSE) whose
    issuer is its own subject, as `openssl req -x509` makes for a quick server."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "surge tests (self-signed)")])
    alt_names = [x509.DNSName(name) if name == "localhost" else x509.IPAddress(ipaddress.ip_address(name))
                 for name in SERVER_NAMES]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return _write_pair(directory, "self_signed", certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def make_certs(directory: str | Path) -> TlsCerts:
    """Make a CA and every certificate of TlsCerts as PEM files in `directory`
    (created if missing). Needs the `trustme` package (a test extra)."""
    import trustme

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = trustme.CA(organization_name="surge tests", key_type=trustme.KeyType.ECDSA)
    other_ca = trustme.CA(organization_name="surge tests (untrusted)", key_type=trustme.KeyType.ECDSA)
    ca_path, other_ca_path = directory / "ca.pem", directory / "other_ca.pem"
    ca.cert_pem.write_to_path(ca_path)
    other_ca.cert_pem.write_to_path(other_ca_path)
    return TlsCerts(
        directory=directory, ca=ca_path, other_ca=other_ca_path,
        leaf=_leaf(ca, "leaf", directory, *SERVER_NAMES),
        wrong_name=_leaf(ca, "wrong_name", directory, WRONG_NAME),
        expired=_leaf(ca, "expired", directory, *SERVER_NAMES,
                      not_before=now - datetime.timedelta(days=30),
                      not_after=now - datetime.timedelta(days=1)),
        self_signed=_self_signed(directory, now),
        untrusted=_leaf(other_ca, "untrusted", directory, *SERVER_NAMES),
        client=_leaf(ca, "client", directory, CLIENT_NAME),
    )
