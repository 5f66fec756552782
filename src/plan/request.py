"""Turning command-line arguments into a Target, headers, a method and the one literal step of a URL run."""
from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import unquote, urlsplit

import surge
from surge.plan.errors import PlanError
from surge.plan.model import DEFAULT_PORTS, Target
from surge.plan.plan import Step
from surge.plan.redact import is_secret_header, redact_url
from surge.plan.template import Template

SUPPORTED_SCHEMES = ("http", "https")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHOD = _TOKEN
# An authority after any userinfo: "[v6addr]" or a name/IPv4, then an optional ":port".
_BRACKETED = re.compile(r"^\[([^\[\]]*)\](?::(.*))?$")
_PLAIN = re.compile(r"^([^:\[\]]*)(?::(.*))?$")
# A host name: letters (any script, IDNA), digits, '-', '.', '_'; no spaces, controls or delimiters.
_NAME_CHAR = re.compile(r"^[\w.\-]+$")
_V6ISH = re.compile(r"^[0-9A-Fa-f:.]+$")          # an unbracketed IPv6 address (and maybe a port)
USER_AGENT = f"surge/{surge.__version__}"
# --disable-keepalive: the header that tells the server, too, that each connection carries one request.
CONNECTION_CLOSE = ("Connection", "close")

__all__ = ["PlanError", "parse_target", "parse_header", "parse_method", "parse_auth", "url_step",
           "USER_AGENT"]


def parse_target(url: str, allow_credentials: bool = False) -> Target:
    """'http://host:port/path?q' -> Target.  Raises PlanError naming what is wrong.

    Credentials in the URL (user:password@) are kept on the Target for Basic
    auth only where the caller can send them (`allow_credentials`); elsewhere
    they are refused, never dropped silently.  Messages show the URL with its
    password as ***."""
    shown = repr(redact_url(url))
    if "://" not in url:
        raise PlanError(f"URL: got {shown}, expected an absolute URL like http://127.0.0.1:8080/")
    if any(ch.isspace() for ch in url):
        raise PlanError(f"URL: {shown} contains whitespace")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise PlanError(f"URL: {shown} contains a control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:          # e.g. "Invalid IPv6 URL" for an unclosed '['
        raise PlanError(f"URL: cannot parse {shown}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        allowed = ", ".join(SUPPORTED_SCHEMES)
        raise PlanError(f"URL: scheme {parts.scheme!r} is not supported, allowed: {allowed}")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _host_and_port(hostport, shown, DEFAULT_PORTS[scheme])
    username = password = None
    if at:
        if not allow_credentials:
            raise PlanError(f"URL: credentials (user:password@) in {shown} are not sent here; "
                            f"set an Authorization header instead")
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port, path=path, username=username, password=password)


def _host_and_port(hostport: str, shown: str, default_port: int) -> tuple[str, int]:
    """The host (IPv6 without brackets, zone decoded) and port (the scheme's default) of an authority."""
    if not hostport.startswith("[") and hostport.count(":") > 1 and _V6ISH.match(hostport):
        raise PlanError(f"URL: an IPv6 address goes in brackets, like http://[::1]:8080/, got {shown}")
    match = _BRACKETED.match(hostport) if hostport.startswith("[") else _PLAIN.match(hostport)
    if match is None:
        raise PlanError(f"URL: cannot parse the host and port in {shown}, expected host, host:port "
                        f"or [IPv6]:port")
    host, port_text = match.group(1), match.group(2)
    if not host:
        raise PlanError(f"URL: no host in {shown}")
    if hostport.startswith("["):
        host = unquote(host)           # a zone id is written %25: [fe80::1%25eth0]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise PlanError(f"URL: {host!r} in {shown} is not an IPv6 address") from None
    elif not _NAME_CHAR.match(host) or host.startswith((".", "-")) or ".." in host:
        raise PlanError(f"URL: host {host!r} in {shown} is not a host name or address")
    else:
        try:
            host.encode("idna")
        except UnicodeError as exc:     # e.g. a label over 63 characters
            reason = str(exc.__cause__ or exc).removeprefix("encoding with 'idna' codec failed ")
            raise PlanError(f"URL: host {host!r} in {shown} is not a valid host name: {reason}") from None
    if port_text is None or port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise PlanError(f"URL: invalid port in {shown}, expected 1..65535")
    return host, int(port_text)


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not _TOKEN.match(name):
        first_word = text.strip().split(None, 1)[0] if text.strip() else ""
        shown = f"{first_word!r} followed by a hidden value" if is_secret_header(first_word) else repr(text)
        raise PlanError(f"-H/--header: got {shown}, expected 'Name: value' with a token name")
    if "\r" in value or "\n" in value:
        raise PlanError(f"-H/--header: value of {name!r} contains a line break")
    return name, value.strip()


def parse_method(text: str) -> str:
    if not _METHOD.match(text):
        raise PlanError(f"-m/--method: got {text!r}, expected an HTTP method token like GET or POST")
    return text.upper()


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """--auth USER:PASSWORD -> (user, password) for Basic auth (the password may be empty)."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        # never echo it: without a ':' the whole value may be the password
        found = "no ':'" if not sep else "no user name before ':'"
        raise PlanError(f"--auth: {found}, expected USER:PASSWORD")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise PlanError("--auth: USER:PASSWORD contains a control character")
    return user, password


def basic_authorization(user: str, password: str) -> str:
    """The Authorization header value for HTTP Basic auth (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def literal(text: str | bytes) -> Template:
    """A template that is only the text given: never parsed, so a `${` in a
    URL, header or body from the command line goes out as written."""
    if isinstance(text, bytes):
        try:        # the engine's tables send text parts as UTF-8: the same bytes
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            pass    # a binary --body @FILE stays bytes, sent as it is
    shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return Template(parts=(text,) if text else (), text=shown)


def url_step(target: Target, method: str = "GET", headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
             credentials: tuple[str, str] | None = None, keepalive: bool = True) -> Step:
    """The one step of `surge run URL`: literal path, headers and body.

    Basic `Authorization` (from --auth or the URL's credentials) comes first
    among the headers, right after the Host and User-Agent the engine's
    tables add unless the headers name them (surge.run.flows); the tables add
    Content-Length for a body or POST/PUT/PATCH unless the headers give one.
    Without keep-alive (--disable-keepalive) `Connection: close` comes last."""
    auth = (("Authorization", basic_authorization(*credentials)),) if credentials is not None else ()
    close = () if keepalive else (CONNECTION_CLOSE,)
    return Step(name="default", method=method,
                host=target.origin(),
                path=literal(target.path),
                headers=tuple((name, literal(value)) for name, value in auth + tuple(headers) + close),
                body=literal(body) if body else None,
                request_text=f"{method} {target.path}")
