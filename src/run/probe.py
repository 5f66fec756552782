"""The probe handshake of an https host, before the start.

Once its address is chosen, each https host gets one real TLS handshake on a
blocking socket (surge.core._tls.TlsContext.probe; nothing is sent after
it).  A certificate that fails verification ends the run before any load
with one line naming the reason and the fix (exit 1), e.g.

    https://127.0.0.1:8443/: certificate verify failed (self-signed certificate); use --cacert FILE or --insecure

What it negotiated (protocol, cipher, group) goes into the result's config.
"""
from __future__ import annotations

from surge.plan.model import Target, host_port


class ProbeError(RuntimeError):
    """The handshake failed: str() is the line to show (the supervisor makes it a RunError, exit 1)."""


# (words in OpenSSL's reason, what to do), first match wins; "{...}" names an
# option, spelled as the command line or a plan spells it (OPTION_SPELLING).
_HINTS = (
    (("hostname mismatch", "ip address mismatch"),
     "use {sni} (a name the certificate is for) or {insecure}"),
    (("has expired", "not yet valid"),
     "the server's certificate is outside its validity dates (check it, and this machine's clock), or use {insecure}"),
    (("self-signed", "self signed", "local issuer", "issuer certificate", "first certificate",
      "certificate verify failed", "untrusted", "certificate chain"),
     "use {cacert} or {insecure}"),
    (("certificate required", "bad certificate", "unknown ca", "access denied", "certificate unknown",
      "peer did not return a certificate"),
     "the server wants a client certificate it trusts: use {cert} {key}"),
    (("wrong version number", "packet length too long", "record layer failure", "unknown protocol",
      "http request", "record overflow"),
     "is this port HTTPS? (a plain HTTP server answers like this: use http://)"),
    (("protocol version", "unsupported protocol", "no protocols available", "handshake failure",
      "no shared cipher", "insufficient security", "no suitable", "no shared group", "illegal parameter"),
     "the server and these options share no protocol version, cipher or group: check {versions}, "
     "{ciphers}, {tls13_ciphers} and {groups}"),
    (("timed out", "timeout", "no handshake answer"),
     "the server did not finish the handshake in time (raise --timeout, or check the server)"),
)
OPTION_SPELLING = {
    "flags": {"sni": "--sni NAME", "insecure": "--insecure", "cacert": "--cacert FILE", "cert": "--cert FILE",
              "key": "--key FILE", "versions": "--tls-min/--tls-max", "ciphers": "--ciphers",
              "tls13_ciphers": "--tls13-ciphers", "groups": "--groups"},
    "plan": {"sni": "tls: sni", "insecure": "tls: insecure: true", "cacert": "tls: cacert", "cert": "tls: cert",
             "key": "and key", "versions": "tls: tls_min/tls_max", "ciphers": "ciphers",
             "tls13_ciphers": "tls13_ciphers", "groups": "groups"},
}


def hint(reason: str, spelling: str = "flags") -> str | None:
    """What to do about a failed handshake, or None when surge cannot tell."""
    lowered = reason.lower()
    for words, text in _HINTS:
        if any(word in lowered for word in words):
            return text.format(**OPTION_SPELLING[spelling])
    return None


def probe(host: Target, family: int, sockaddr: bytes, timeout_s: float, spelling: str = "flags") -> dict:
    """One handshake with `host` at the chosen address: what it negotiated,
    or ProbeError with the line to show."""
    from surge.core._tls import TlsConfigError, TlsHandshakeError

    try:
        context = host.tls.context(host.host)
        return dict(context.probe(family, sockaddr, timeout_s))
    except TlsConfigError as exc:       # checked at build time; a file changed since
        raise ProbeError(f"{host.origin().url}: {' '.join(str(exc).split())}") from None
    except TlsHandshakeError as exc:
        reason = " ".join(str(exc).split()) or "handshake failed"
        fix = hint(reason, spelling)
        raise ProbeError(f"{host.origin().url}: {reason}" + (f"; {fix}" if fix else "")) from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ProbeError(f"cannot connect to {host_port(host.host, host.port)}: {reason}") from None
