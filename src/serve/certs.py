"""`surge serve --tls`: the server's certificate, and a throwaway one when none is given.

The throwaway certificate is self-signed, ECDSA P-256 (what the benchmarks'
nginx uses, and the cheapest handshake to sign), valid for 127.0.0.1, ::1 and
localhost, for a week from a minute ago (clock skew between a test's processes
must not make it "not yet valid"). It is its own trust anchor, so a client
trusts it with `surge run --cacert CERT` and nothing else.

It is made with the `cryptography` package when that is installed, else with
the `openssl` command; the key never leaves its 0700 directory, which the
caller removes when the server stops.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass

THROWAWAY_NAMES = ("localhost",)
THROWAWAY_ADDRESSES = ("127.0.0.1", "::1")
THROWAWAY_VALID_DAYS = 7
THROWAWAY_SUBJECT = "surge serve throwaway certificate"
OPENSSL_TIMEOUT_S = 30.0


class CertificateError(RuntimeError):
    """No certificate could be made or loaded; the message is one line naming the file or the tool."""


@dataclass(frozen=True)
class ServerCertificate:
    """What the server presents: a PEM certificate (chain) and its private key.
    `throwaway_dir` is set for a certificate made here (remove it when done)."""
    cert_path: str
    key_path: str
    throwaway_dir: str | None = None

    def remove(self) -> None:
        if self.throwaway_dir:
            shutil.rmtree(self.throwaway_dir, ignore_errors=True)


def throwaway_certificate() -> ServerCertificate:
    """A fresh self-signed certificate and key in a new private temp directory."""
    directory = tempfile.mkdtemp(prefix="surge-serve-tls-")     # mode 0700
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        try:
            _with_cryptography(cert_path, key_path)
        except ImportError:
            _with_openssl(cert_path, key_path)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ServerCertificate(cert_path, key_path, directory)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _with_cryptography(cert_path: str, key_path: str) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, THROWAWAY_SUBJECT)])
    now = _dt.datetime.now(_dt.timezone.utc)
    alt_names = [x509.DNSName(n) for n in THROWAWAY_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in THROWAWAY_ADDRESSES]
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=1))
            .not_valid_after(now + _dt.timedelta(days=THROWAWAY_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            # its own trust anchor (CA) and a server certificate, as `openssl req -x509` makes them
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _with_openssl(cert_path: str, key_path: str) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise CertificateError("--tls without --cert/--key makes a throwaway certificate, which needs the "
                               "`cryptography` package or the `openssl` command; install one, or pass "
                               "--cert FILE --key FILE")
    alt_names = ",".join([f"DNS:{n}" for n in THROWAWAY_NAMES] + [f"IP:{a}" for a in THROWAWAY_ADDRESSES])
    command = [tool, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-sha256", "-days", str(THROWAWAY_VALID_DAYS), "-subj", f"/CN={THROWAWAY_SUBJECT}",
               "-addext", f"subjectAltName={alt_names}", "-addext", "extendedKeyUsage=serverAuth",
               "-keyout", key_path, "-out", cert_path]
    old_umask = os.umask(0o077)                     # the key is written 0600
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CertificateError(f"`openssl req` could not make the throwaway certificate: {error}") from None
    finally:
        os.umask(old_umask)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CertificateError(f"`openssl req` could not make the throwaway certificate: {last}")


def server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    """The listeners' TLS context: TLS 1.2 and 1.3, the certificate and key loaded
    (a missing file, a key that is not the certificate's: CertificateError)."""
    for flag, path in (("--cert", certificate.cert_path), ("--key", certificate.key_path)):
        if not os.path.isfile(path):
            raise CertificateError(f"{flag} {path}: no such file (expected a PEM file)")
        if not os.access(path, os.R_OK):
            raise CertificateError(f"{flag} {path}: not readable")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # an encrypted key would make OpenSSL prompt on the terminal: refuse it instead
        context.load_cert_chain(certificate.cert_path, certificate.key_path, password=lambda: b"")
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        if "KEY_VALUES_MISMATCH" in str(reason).upper():
            raise CertificateError(f"--key {certificate.key_path} is not the key of --cert "
                                   f"{certificate.cert_path}") from None
        raise CertificateError(f"--cert {certificate.cert_path} / --key {certificate.key_path}: cannot load "
                               f"them ({str(reason).lower().replace('_', ' ')}); expected a PEM certificate "
                               "and its unencrypted PEM key") from None
    return context
