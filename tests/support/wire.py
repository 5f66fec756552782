"""The bytes a static step must put on the wire, spelled out independently of
the engine's tables (the oracle of tests/core/test_request_bytes.py).

The rule (what `surge run URL` always sent): the request line; Host and
User-Agent (surge/VERSION) unless the step's headers name them; the step's
headers in order (a URL run's Basic Authorization first); Content-Length when
there is a body or the method is POST, PUT or PATCH, unless the headers give
one; the blank line; the body."""
from __future__ import annotations

from surge.plan.plan import Step
from surge.plan.request import USER_AGENT
from surge.plan.template import Template

BODY_METHODS = ("POST", "PUT", "PATCH")


def _static(template: Template) -> tuple:
    if not all(isinstance(p, (str, bytes)) for p in template.parts):
        raise ValueError(f"template {template.text!r} has slots: not a static step")
    return template.parts


def _text(template: Template) -> bytes:
    return b"".join(p if isinstance(p, bytes) else p.encode("utf-8") for p in _static(template))


def expected_request(step: Step) -> bytes:
    names = {name.lower() for name, _ in step.headers}
    lines = [f"{step.method} ".encode() + _text(step.path) + b" HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {step.host.authority}".encode())
    if "user-agent" not in names:
        lines.append(f"User-Agent: {USER_AGENT}".encode())
    lines.extend(f"{name}: ".encode() + _text(value) for name, value in step.headers)
    body = _text(step.body) if step.body is not None else b""
    if (step.body is not None or step.method in BODY_METHODS) and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
