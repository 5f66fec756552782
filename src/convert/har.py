"""Reading a HAR 1.2 file (HTTP Archive, as browsers' developer tools save it)
into `Recorded` requests, in the order they started.

What is read (HAR 1.2: log.entries[]): request {method, url, headers,
postData {mimeType, text, params}}, response {status, headers, content
{mimeType, text, encoding}, redirectURL}, startedDateTime, time (ms), pageref;
and Chromium's `_resourceType` where present.  Everything else is ignored.
A file that is not JSON, or JSON that is not a HAR, is a ConvertError with
one line saying which (exit 2).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from surge.convert.errors import ConvertError

# startedDateTime: ISO 8601 with any fraction of a second and a zone ("Z" or +hh:mm).
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\Z")


@dataclass
class Recorded:
    """One request as recorded, and what came back."""
    index: int                          # its place in log.entries
    method: str
    url: str
    headers: list = field(default_factory=list)            # [(name, value)] as sent
    body: str | None = None
    body_mime: str | None = None
    started_s: float | None = None      # seconds since the epoch
    time_ms: float | None = None        # the whole exchange
    status: int | None = None
    response_headers: list = field(default_factory=list)
    response_mime: str | None = None
    response_text: str | None = None    # decoded text (None when absent or binary)
    redirect_url: str | None = None
    pageref: str | None = None
    resource_type: str | None = None    # Chromium's _resourceType: document, xhr, fetch, image, ...

    @property
    def ended_s(self) -> float | None:
        if self.started_s is None or self.time_ms is None or self.time_ms < 0:
            return None
        return self.started_s + self.time_ms / 1000.0

    def header(self, name: str, response: bool = False) -> str | None:
        for key, value in (self.response_headers if response else self.headers):
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Recording:
    source: str
    entries: list[Recorded]
    pages: dict                         # page id -> title


def parse_started(text) -> float | None:
    """startedDateTime as seconds since the epoch, or None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    match = _DATETIME.match(text.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    moment = _dt.datetime.fromisoformat(base)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment = moment.replace(tzinfo=_dt.timezone(sign * offset))
    else:
        moment = moment.replace(tzinfo=_dt.timezone.utc)   # a HAR without a zone: read as UTC
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


def _pairs(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConvertError(f"{where}: expected a list of {{name, value}}, got {type(value).__name__}")
    pairs = []
    for n, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConvertError(f"{where}[{n}]: expected {{name, value}}")
        pairs.append((item["name"], str(item.get("value", ""))))
    return pairs


def _body(post, where: str) -> tuple[str | None, str | None]:
    """(text, mime type) of postData: its text, or its params form-encoded."""
    if post is None:
        return None, None
    if not isinstance(post, dict):
        raise ConvertError(f"{where}: expected an object with mimeType and text or params")
    mime = post.get("mimeType") if isinstance(post.get("mimeType"), str) else None
    text = post.get("text")
    if isinstance(text, str):
        return text, mime
    params = post.get("params")
    if isinstance(params, list) and params:
        return urlencode([(p.get("name", ""), p.get("value", "")) for p in params if isinstance(p, dict)]), mime
    return None, mime


def _response_text(content) -> str | None:
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return None
    if content.get("encoding") == "base64":
        import base64
        import binascii
        try:
            return base64.b64decode(content["text"], validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return content["text"]


def _entry(n: int, item, source: str) -> Recorded:
    where = f"{source}: log.entries[{n}]"
    if not isinstance(item, dict):
        raise ConvertError(f"{where}: expected an object (request, response, startedDateTime, time)")
    request = item.get("request")
    if not isinstance(request, dict):
        raise ConvertError(f"{where}.request: missing (a HAR entry has request {{method, url, headers}})")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not method.strip():
        raise ConvertError(f"{where}.request.method: missing, expected a method like GET")
    if not isinstance(url, str) or not url.strip():
        raise ConvertError(f"{where}.request.url: missing, expected an absolute URL")
    body, mime = _body(request.get("postData"), f"{where}.request.postData")
    response = item.get("response") if isinstance(item.get("response"), dict) else {}
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    status = response.get("status")
    time_ms = item.get("time")
    return Recorded(
        index=n, method=method.strip().upper(), url=url.strip(),
        headers=_pairs(request.get("headers"), f"{where}.request.headers"), body=body, body_mime=mime,
        started_s=parse_started(item.get("startedDateTime")),
        time_ms=float(time_ms) if isinstance(time_ms, (int, float)) and not isinstance(time_ms, bool) else None,
        status=status if isinstance(status, int) and not isinstance(status, bool) and status > 0 else None,
        response_headers=_pairs(response.get("headers"), f"{where}.response.headers"),
        response_mime=content.get("mimeType") if isinstance(content.get("mimeType"), str) else None,
        response_text=_response_text(content),
        redirect_url=response.get("redirectURL") or None if isinstance(response.get("redirectURL"), str) else None,
        pageref=item.get("pageref") if isinstance(item.get("pageref"), str) else None,
        resource_type=item.get("_resourceType") if isinstance(item.get("_resourceType"), str) else None)


def parse_har(text: str, source: str) -> Recording:
    """The recording in `text` (the content of the file `source`), entries in start order."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if hasattr(exc, "lineno") else str(exc)
        raise ConvertError(f"{source}: not JSON ({detail}); expected a HAR 1.2 file") from None
    log = document.get("log") if isinstance(document, dict) else None
    if not isinstance(log, dict) or not isinstance(log.get("entries"), list):
        raise ConvertError(f"{source}: not a HAR file: no log.entries list "
                           f"(expected {{\"log\": {{\"version\": \"1.2\", \"entries\": [...]}}}})")
    entries = [_entry(n, item, source) for n, item in enumerate(log["entries"])]
    # In start order; entries without a start keep their place after the ones before them.
    last = [0.0]

    def key(entry: Recorded):
        if entry.started_s is not None:
            last[0] = entry.started_s
        return (last[0], entry.index)
    entries.sort(key=key)
    pages = {}
    for page in log.get("pages") or []:
        if isinstance(page, dict) and isinstance(page.get("id"), str):
            pages[page["id"]] = page.get("title") if isinstance(page.get("title"), str) else ""
    return Recording(source, entries, pages)


def read_har(path: str) -> Recording:
    """The recording at `path` ('-': standard input)."""
    import sys
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8-sig") as f:
                text = f.read()
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConvertError(f"{path}: not JSON (not UTF-8 text); expected a HAR 1.2 file") from None
    return parse_har(text, path)
