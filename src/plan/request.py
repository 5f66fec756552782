"""Turning command-line arguments into a Target and pre-rendered request bytes."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from surge.plan.model import RunPlan, Target

SUPPORTED_SCHEMES = ("http",)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHOD = _TOKEN


class PlanError(ValueError):
    """A plan or argument that cannot run; the message names the culprit (exit 2)."""


def parse_target(url: str) -> Target:
    """'http://host:port/path?q' -> Target.  Raises PlanError naming what is wrong."""
    if "://" not in url:
        raise PlanError(f"URL: got {url!r}, expected an absolute URL like http://127.0.0.1:8080/")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        allowed = ", ".join(SUPPORTED_SCHEMES)
        raise PlanError(f"URL: scheme {parts.scheme!r} is not supported, allowed: {allowed}")
    try:
        port = parts.port
    except ValueError:
        raise PlanError(f"URL: invalid port in {url!r}, expected 1..65535") from None
    if not parts.hostname:
        raise PlanError(f"URL: no host in {url!r}")
    if any(ch.isspace() for ch in url):
        raise PlanError(f"URL: {url!r} contains whitespace")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=parts.hostname, port=port or 80, path=path)


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not _TOKEN.match(name):
        raise PlanError(f"-H/--header: got {text!r}, expected 'Name: value' with a token name")
    if "\r" in value or "\n" in value:
        raise PlanError(f"-H/--header: value of {name!r} contains a line break")
    return name, value.strip()


def parse_method(text: str) -> str:
    if not _METHOD.match(text):
        raise PlanError(f"-m/--method: got {text!r}, expected an HTTP method token like GET or POST")
    return text.upper()


def render_request(plan: RunPlan) -> bytes:
    """The exact bytes sent for every request of the plan, rendered once."""
    names = {name.lower() for name, _ in plan.headers}
    lines = [f"{plan.method} {plan.target.path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {plan.target.authority}")
    lines.extend(f"{name}: {value}" for name, value in plan.headers)
    if (plan.body or plan.method in ("POST", "PUT", "PATCH")) and "content-length" not in names:
        lines.append(f"Content-Length: {len(plan.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + plan.body
