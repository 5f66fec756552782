"""TLS options of an https host: what the command line or a plan's `tls:`
blocks ask for, checked before anything is sent.

    options = TlsOptions(cacert="ca.pem")
    problems = options.problems(FLAG_NAMES)       # [] or one line per problem, naming the flag
    context = options.context("api.example")      # a surge.core._tls.TlsContext (TlsConfigError: exit 2)

Checks here are the ones Python can make without OpenSSL (files readable,
--cert with --key, versions in order); what only OpenSSL can tell (a key
that does not match its certificate, an unknown cipher or group) comes from
creating the context once at build time (`context_problem`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace

TLS_VERSIONS = ("1.2", "1.3")
# How the command line spells each field (plans spell them as the field names).
FLAG_NAMES = {
    "insecure": "-k/--insecure", "cacert": "--cacert", "cert": "--cert", "key": "--key", "sni": "--sni",
    "tls_min": "--tls-min", "tls_max": "--tls-max", "ciphers": "--ciphers", "tls13_ciphers": "--tls13-ciphers",
    "groups": "--groups", "keylog": "--keylog", "resume": "--tls-resume", "ktls": "--ktls",
}
FILE_FIELDS = ("cacert", "cert", "key")
TEXT_FIELDS = ("sni", "ciphers", "tls13_ciphers", "groups", "keylog")
BOOL_FIELDS = ("insecure", "resume", "ktls")
VERSION_FIELDS = ("tls_min", "tls_max")
# A name sent as SNI: letters, digits, '-', '.', '_' (IDNA for other scripts), or an IP literal.
_SNI = re.compile(r"^[\w.\-:]+$")


@dataclass(frozen=True)
class TlsOptions:
    """How one https host is spoken to.  Every field None/default: verify
    against the system trust store, the URL's host as the server name."""
    insecure: bool = False              # -k: no certificate or name check
    cacert: str | None = None           # PEM bundle added to the trust store
    cert: str | None = None             # client certificate (mTLS), with key
    key: str | None = None
    sni: str | None = None              # the name sent and checked, instead of the URL's host
    tls_min: str | None = None          # "1.2" | "1.3"
    tls_max: str | None = None
    ciphers: str | None = None          # TLS 1.2 cipher list (OpenSSL syntax)
    tls13_ciphers: str | None = None    # TLS 1.3 cipher suites
    groups: str | None = None           # key-exchange groups, e.g. "X25519:P-256"
    keylog: str | None = None           # append NSS key-log lines here
    resume: bool = True                 # session resumption on reconnect
    ktls: bool = False                  # kernel TLS after the handshake

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def overridden(self, values: dict) -> "TlsOptions":
        """These options with some fields replaced (a host's own tls: over the plan's)."""
        return replace(self, **values)

    def problems(self, names: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """(field, message) for every problem Python can see; `names` spells the
        fields in messages (FLAG_NAMES for the command line)."""
        names = names or {name: name for name in self.field_names()}
        found = []
        for name in FILE_FIELDS:
            path = getattr(self, name)
            if path is not None:
                problem = unreadable(path)
                if problem:
                    found.append((name, problem))
        if (self.cert is None) != (self.key is None):
            given, missing = ("cert", "key") if self.key is None else ("key", "cert")
            what = "the client certificate's private key" if missing == "key" else "the client certificate"
            found.append((given, f"needs {names[missing]} too ({what}, PEM)"))
        for name in VERSION_FIELDS:
            value = getattr(self, name)
            if value is not None and value not in TLS_VERSIONS:
                found.append((name, f"got {value!r}, allowed: {', '.join(TLS_VERSIONS)}"))
        if (self.tls_min in TLS_VERSIONS and self.tls_max in TLS_VERSIONS
                and float(self.tls_min) > float(self.tls_max)):
            found.append(("tls_min", f"{self.tls_min} is above {names['tls_max']} {self.tls_max}: "
                                     f"no version would be left"))
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and not value.strip():
                found.append((name, "is empty"))
        if self.sni is not None and self.sni.strip() and not _SNI.match(self.sni):
            found.append(("sni", f"got {self.sni!r}, expected a host name (letters, digits, '-', '.')"))
        if self.keylog is not None and self.keylog.strip():
            problem = unwritable(self.keylog)
            if problem:
                found.append(("keylog", problem))
        return found

    def server_name(self, host: str) -> str:
        """The name sent as SNI and checked against the certificate: --sni, else
        the URL's host (a non-ASCII name in its IDNA form, as DNS has it)."""
        if self.sni is not None:
            return self.sni
        return host if host.isascii() else host.encode("idna").decode("ascii")

    def context(self, host: str):
        """A surge.core._tls.TlsContext for talking to `host` (raises its
        TlsConfigError for what only OpenSSL can refuse).

        Made once per process and options: OpenSSL 3 takes ~30 ms of CPU to load
        the system trust store into each new context, and the build's check, the
        supervisor's probe and every worker would each pay it.  Workers inherit
        the supervisor's context at the fork, and from then on each has its own
        copy (its own SSL_CTX and session cache), so it is still one context per
        host per worker.  A context that holds a session (it carried load in this
        process) is not handed out again: a new run's first handshakes are full."""
        key = (self, host)
        cached = _CONTEXTS.get(key)
        if cached is not None and not cached.has_session:
            return cached
        context = self._new_context(host)
        if len(_CONTEXTS) >= _CONTEXTS_KEPT:          # a long-lived process (tests, a library user)
            del _CONTEXTS[next(iter(_CONTEXTS))]
        _CONTEXTS[key] = context
        return context

    def _new_context(self, host: str):
        from surge.core._tls import TlsContext

        return TlsContext(server_name=self.server_name(host), verify=not self.insecure, cacert=self.cacert,
                          cert=self.cert, key=self.key, min_version=self.tls_min, max_version=self.tls_max,
                          ciphers=self.ciphers, tls13_ciphers=self.tls13_ciphers, groups=self.groups,
                          keylog=self.keylog, resume=self.resume, ktls=self.ktls)

    def describe(self, host: str) -> dict:
        """What the result's config shows (paths, never file contents)."""
        return {"verify": not self.insecure, "server_name": self.server_name(host), "cacert": self.cacert,
                "client_cert": self.cert, "tls_min": self.tls_min, "tls_max": self.tls_max,
                "ciphers": self.ciphers, "tls13_ciphers": self.tls13_ciphers, "groups": self.groups,
                "resume": self.resume, "ktls": self.ktls, "keylog": self.keylog is not None}


# TlsOptions.context's contexts, by (options, host); the oldest goes past _CONTEXTS_KEPT.
_CONTEXTS: dict = {}
_CONTEXTS_KEPT = 32

# TlsContext's keywords that are not TlsOptions' field names (TlsConfigError.option).
_CONTEXT_KEYWORDS = {"min_version": "tls_min", "max_version": "tls_max", "verify": "insecure", "resume": "resume",
                     "server_name": "sni"}


def context_problem(options: TlsOptions, host: str, names: dict[str, str] | None = None) -> str | None:
    """What OpenSSL says against these options (a key that does not match, a
    bad cipher list), or None; with `names` (FLAG_NAMES) it starts with the
    flag it is about.  The context made here is the one the probe and the
    workers then use (TlsOptions.context)."""
    from surge.core._tls import TlsConfigError

    try:
        options.context(host)
    except TlsConfigError as exc:
        message = one_line(str(exc))
        option = getattr(exc, "option", None)
        field = _CONTEXT_KEYWORDS.get(option, option)
        if names and field in names:
            return f"{names[field]}: {message}"
        return message
    return None


def unreadable(path: str) -> str | None:
    """Why a file cannot be read, or None."""
    if os.path.isdir(path):
        return f"{path!r} is a directory, expected a PEM file"
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return f"cannot read {path!r}: {exc.strerror}"


def unwritable(path: str) -> str | None:
    """Why a key-log file could not be appended to, or None (it is not created here)."""
    if os.path.isdir(path):
        return f"{path!r} is a directory, expected a file to append key-log lines to"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"cannot write {path!r}: permission denied"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"cannot write {path!r}: no directory {parent!r}"
    return None if os.access(parent, os.W_OK) else f"cannot write {path!r}: permission denied in {parent!r}"


def one_line(text: str) -> str:
    return " ".join(text.split())


def version_text(value) -> str | None:
    """A version as a plan may write it: "1.3", or 1.3 (YAML reads it as a number)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:g}" if f"{value:g}" in TLS_VERSIONS else repr(value)
    return None
