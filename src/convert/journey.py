"""A recording (surge.convert.har) as a draft plan: which requests become
steps, which headers they keep, their bodies, think times and variables.

The rules, in the order they apply to each request:
- not http(s) (data:, blob:, ws:, extensions), a CORS preflight (OPTIONS with
  Access-Control-Request-Method: the browser's, not the user's), or the
  request a redirect led to (the client follows redirects itself): dropped;
- a static asset (image, stylesheet, script, font, media: by the browser's
  resource type, the response's MIME type or the path's extension): dropped,
  or with keep_static kept right after the step of its page, named static.*;
- headers: hop-by-hop ones, Host, Content-Length, HTTP/2 pseudo-headers,
  Cookie (the cookie jar sends what Set-Cookie gave) and Accept-Encoding
  (unless kept) are dropped; so are the browser's own (User-Agent, Referer,
  Origin, Sec-*, Accept-Language, cache validators, ...); Content-Type,
  Accept, X-* and any other header are kept (keep_headers keeps any by name);
- a secret (Authorization, Proxy-Authorization, API-key and token headers,
  password-like fields of a body or query) never reaches the plan: when an
  earlier response carried the same value (a login's JSON `token`, a header),
  that step extracts it into a variable; otherwise the plan reads it from an
  environment variable the user sets (named in the first comments);
- a JSON body that parses becomes `json:`; any other is `body:`;
- think time after a step: from its end to the next kept request's start,
  rounded to 100 ms, none under 100 ms, capped at max_think_s.
"""
from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

from surge.convert.draft import (NO_BODY, Draft, DraftHost, DraftStep, Secret, env_name, escape_json,
                                 escape_template, host_name, origin_of, step_name, var_name)
from surge.convert.har import Recorded, Recording
from surge.plan.redact import redact_url

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "host", "content-length"})
# What a browser adds by itself: not part of what the application needs.
BROWSER_HEADERS = frozenset({"user-agent", "referer", "origin", "accept-language", "cache-control", "pragma",
                             "dnt", "upgrade-insecure-requests", "priority", "if-none-match",
                             "if-modified-since", "purpose", "sec-purpose", "x-client-data", "save-data",
                             "access-control-request-method", "access-control-request-headers"})
SECRET_HEADER = re.compile(r"^(authorization|proxy-authorization|.*api[-_]?key.*|.*token.*|.*secret.*)\Z", re.I)
SECRET_FIELD = re.compile(r"(pass(word|wd)?|secret|api[-_]?key|token|credential)", re.I)
STATIC_TYPES = {"image": "image", "stylesheet": "css", "script": "js", "font": "font", "media": "media",
                "texttrack": "media", "manifest": "manifest"}
STATIC_EXTENSIONS = {**dict.fromkeys(("png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp"), "image"),
                     "css": "css", **dict.fromkeys(("js", "mjs", "map"), "js"),
                     **dict.fromkeys(("woff", "woff2", "ttf", "otf", "eot"), "font"),
                     **dict.fromkeys(("mp4", "webm", "mp3", "ogg", "wav"), "media")}
REDIRECTS = (301, 302, 303, 307, 308)
THINK_STEP_S = 0.1


@dataclass(frozen=True)
class Options:
    keep_static: bool = False
    keep_headers: frozenset = frozenset()      # lower-case names kept whatever the rules say
    max_think_s: float = 10.0
    vus: int = 1
    duration: str = "1m"


def static_kind(entry: Recorded) -> str | None:
    """'image', 'css', 'js', 'font', 'media', 'manifest', or None for what is not a static asset."""
    if entry.resource_type and entry.resource_type.lower() in STATIC_TYPES:
        return STATIC_TYPES[entry.resource_type.lower()]
    if entry.resource_type and entry.resource_type.lower() in ("document", "xhr", "fetch"):
        return None
    mime = (entry.response_mime or "").split(";")[0].strip().lower()
    if mime.startswith("image/"):
        return "image"
    if mime == "text/css":
        return "css"
    if "javascript" in mime or mime == "text/ecmascript":
        return "js"
    if mime.startswith("font/") or "font" in mime:
        return "font"
    if mime.startswith(("video/", "audio/")):
        return "media"
    path = urlsplit(entry.url).path.lower()
    extension = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return STATIC_EXTENSIONS.get(extension)


def _location(entry: Recorded) -> str | None:
    if entry.status not in REDIRECTS:
        return None
    target = entry.redirect_url or entry.header("location", response=True)
    return urljoin(entry.url, target).split("#")[0] if target else None


def _shown(entry: Recorded) -> str:
    """'GET http://host/path' for a comment, the query left out (it may hold a secret)."""
    parts = urlsplit(entry.url)
    return f"{entry.method} {parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path or '/'}" + \
        ("?..." if parts.query else "")


class _Converter:
    def __init__(self, recording: Recording, options: Options):
        self.recording, self.options = recording, options
        self.step_names: set = set()
        self.var_names: set = set()
        self.env_names: set = {"TARGET_URL"}
        self.host_names: set = set()
        self.secrets: dict = {}         # (kind, value) -> Secret
        self.secret_steps: dict = {}    # env name -> [step names]
        self.dropped_headers: dict = {}  # lower-case name -> (why, count)
        self.counts: dict = {}          # why dropped -> count
        self.chain_end: dict = {}       # entry index -> when the last redirect it led to ended
        self.auth: dict = {}            # step name -> its auth: block (Basic credentials)

    # ---- which requests -------------------------------------------------------------

    def select(self):
        """[(entry, static kind or None, comment lines before it)] of the requests kept,
        and the comments of drops after the last one."""
        kept, pending = [], []
        follow_ups = {}                 # url -> the entry whose redirect it is
        for entry in self.recording.entries:
            scheme = urlsplit(entry.url).scheme.lower()
            led_by = follow_ups.pop(entry.url.split("#")[0], None)     # (the hop before, the chain's first)
            location = _location(entry)
            if location:
                follow_ups[location] = (entry, led_by[1] if led_by else entry)
            if scheme not in ("http", "https"):
                self._drop(pending, "not http(s)", f"{entry.method} {redact_url(entry.url)[:60]}: "
                                                   f"not an http(s) request")
                continue
            if not _valid_url(entry.url):
                self._drop(pending, "bad URL", f"{entry.method} {redact_url(entry.url)[:60]}: not a valid URL")
                continue
            if led_by is not None:
                hop, first = led_by
                self._drop(pending, "redirect", f"{_shown(entry)}: the redirect of {_shown(hop)} "
                                                f"(status {hop.status}), followed by the client itself")
                if entry.ended_s is not None:       # the step's think time starts where its chain ended
                    self.chain_end[first.index] = max(self.chain_end.get(first.index, 0.0), entry.ended_s)
                continue
            if entry.method == "OPTIONS" and entry.header("access-control-request-method"):
                self._drop(pending, "preflight", f"{_shown(entry)}: a CORS preflight (the browser's own)")
                continue
            kind = static_kind(entry)
            if kind and not self.options.keep_static:
                self._drop(pending, "static", f"{_shown(entry)}: static ({kind}); --keep-static keeps it")
                continue
            kept.append((entry, kind, pending))
            pending = []
        return kept, pending

    def _drop(self, pending: list, why: str, line: str) -> None:
        self.counts[why] = self.counts.get(why, 0) + 1
        pending.append(f"dropped: {line}")

    # ---- hosts ------------------------------------------------------------------------

    def hosts(self, kept) -> tuple[DraftHost, dict]:
        """The target (the origin of most non-static steps) and a host per other origin."""
        tally: dict = {}
        for entry, kind, _ in kept:
            origin = origin_of(entry.url)
            tally[origin] = tally.get(origin, 0) + (1 if kind is None else 0) + 1e-6
        order = list(dict.fromkeys(origin_of(e.url) for e, _, _ in kept))
        main = max(order, key=lambda o: tally[o])
        target = DraftHost("target", main, "TARGET_URL")
        others = {}
        for origin in order:
            if origin != main:
                name = host_name(origin, self.host_names)
                others[origin] = DraftHost(name, origin, env_name(f"{name}_URL", self.env_names))
        return target, others

    # ---- secrets ------------------------------------------------------------------------

    def _correlate(self, value: str, before: list) -> tuple[int, dict, str] | None:
        """(index in `before`, extraction, variable hint) of the latest earlier
        response that carried `value` (a JSON string or a header)."""
        for n in range(len(before) - 1, -1, -1):
            entry = before[n]
            for name, header_value in entry.response_headers:
                if header_value.strip() == value and name.lower() not in ("set-cookie", "authorization"):
                    return n, {"header": name}, name
            text = entry.response_text
            if text and value in text:
                try:
                    document = json.loads(text)
                except ValueError:
                    continue
                path = _find(document, value)
                if path is not None:
                    return n, {"json": _json_path(path)}, str(path[-1]) if path and isinstance(path[-1], str) \
                        else "value"
        return None

    def secret_value(self, kind: str, value: str, hint: str, what: str, step: str, before_entries: list,
                     steps: list) -> str:
        """The template that stands for a secret `value` in step `step`."""
        key = (kind, value)
        if key in self.secrets:
            found = self.secrets[key]
            self.secret_steps.setdefault(found.env, []).append(step)
            return found.env if found.env.startswith("${") else f"${{env.{found.env}}}"
        correlated = self._correlate(value, before_entries) if value else None
        if correlated is not None:
            n, extraction, var_hint = correlated
            source = steps[n]
            var = var_name(var_hint, self.var_names)
            source.extract[var] = extraction
            self.secrets[key] = Secret("${" + var + "}", what)
            return "${" + var + "}"
        env = env_name(hint, self.env_names)
        self.secrets[key] = Secret(env, what)
        self.secret_steps.setdefault(env, []).append(step)
        return f"${{env.{env}}}"

    def basic_auth(self, value: str, step: str) -> dict | None:
        """`Authorization: Basic ...` as a step's auth block {"basic": {"user", "password"}}
        (the user as recorded, the password from an environment variable), or None
        when the value is not Basic credentials a plan can say that way."""
        import base64
        import binascii
        scheme, _, credential = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, colon, password = base64.b64decode(credential.strip(), validate=True).decode("utf-8") \
                .partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not colon or not user or any(ch in user + password for ch in "\r\n") or "${" in user:
            return None
        auth = {"user": user}
        if password:
            auth["password"] = self.secret_value("basic-password", password, "BASIC_PASSWORD",
                                                 f"the Basic auth password of {user}", step, [], [])
        self.auth[step] = {"basic": auth}
        return self.auth[step]

    def header_value(self, name: str, value: str, step: str, before: list, steps: list) -> str:
        lower = name.lower()
        if lower in ("authorization", "proxy-authorization"):
            scheme, _, credential = value.strip().partition(" ")
            if scheme.lower() == "basic":
                template = self.secret_value("basic", credential, "BASIC_AUTH",
                                             f"base64 of user:password for {name}: Basic", step, [], steps)
            elif credential:
                template = self.secret_value("token", credential.strip(), f"{scheme}_TOKEN",
                                             f"the {scheme} token of {name}", step, before, steps)
            else:
                return self.secret_value("token", value, "AUTH_HEADER", f"the {name} header", step, before, steps)
            return f"{scheme} {template}"
        return self.secret_value("token", value.strip(), lower, f"the {name} header", step, before, steps)

    # ---- steps ------------------------------------------------------------------------

    def headers(self, entry: Recorded, step: str, before: list, steps: list) -> list:
        kept = []
        for name, value in entry.headers:
            lower = name.lower()
            if lower.startswith(":"):
                continue                                    # HTTP/2 pseudo-headers: the request line says them
            if lower == "cookie":
                self._note_header(lower, "the cookie jar sends what Set-Cookie gave")
                continue
            if lower == "authorization" and self.basic_auth(value, step) is not None:
                continue                                    # the step's auth: block says it
            if SECRET_HEADER.match(lower):
                kept.append((name, self.header_value(name, value, step, before, steps)))
                continue
            if lower in self.options.keep_headers:
                kept.append((name, escape_template(value)))
                continue
            if lower in HOP_BY_HOP:
                self._note_header(lower, "set by the client")
                continue
            if lower == "accept-encoding":
                self._note_header(lower, "compressed answers are not wanted (--keep-header accept-encoding keeps it)")
                continue
            if lower in BROWSER_HEADERS or lower.startswith("sec-"):
                self._note_header(lower, "the browser's own")
                continue
            kept.append((name, escape_template(value)))
        return kept

    def _note_header(self, name: str, why: str) -> None:
        _, count = self.dropped_headers.get(name, (why, 0))
        self.dropped_headers[name] = (why, count + 1)

    def request_line(self, entry: Recorded, hosts: dict, target: DraftHost, step: str, before, steps) -> str:
        parts = urlsplit(entry.url)
        path = parts.path or "/"
        query = self.query(parts.query, step, before, steps)          # already a template
        where = escape_template(path) + (f"?{query}" if query else "")
        origin = origin_of(entry.url)
        prefix = "" if origin == target.origin else f"{hosts[origin].name}:"
        return f"{entry.method} {prefix}{where}"

    def query(self, query: str, step: str, before, steps) -> str:
        """The query as recorded, a secret-looking parameter's value read from a variable."""
        if not query:
            return ""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(SECRET_FIELD.search(name) for name, _ in pairs):
            return escape_template(query)
        out = []
        for name, value in pairs:
            if SECRET_FIELD.search(name) and value:
                value_template = self.secret_value("field", value, name, f"the query parameter {name}", step,
                                                   before, steps)
                out.append(f"{quote(name, safe='')}={value_template}")
            else:
                out.append(escape_template(f"{quote(name, safe='')}={quote(value, safe='')}"))
        return "&".join(out)

    def body(self, entry: Recorded, draft_step: DraftStep, before, steps) -> None:
        if entry.body is None or entry.body == "":
            return
        mime = (entry.body_mime or entry.header("content-type") or "").split(";")[0].strip().lower()
        if mime == "application/json" or mime.endswith("+json"):
            try:
                value = json.loads(entry.body)
            except ValueError:
                value = NO_BODY
            if value is not NO_BODY and _json_safe(value):
                draft_step.json = self.json_secrets(escape_json(value), draft_step.name, before, steps)
                return
        if mime == "application/x-www-form-urlencoded":
            draft_step.body = self.query(entry.body, draft_step.name, before, steps)
            return
        draft_step.body = escape_template(entry.body)

    def json_secrets(self, value, step: str, before, steps, key: str = ""):
        if isinstance(value, dict):
            return {k: self.json_secrets(v, step, before, steps, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_secrets(v, step, before, steps, key) for v in value]
        if isinstance(value, str) and value and key and SECRET_FIELD.search(key):
            return self.secret_value("field", value.replace("$${", "${"), key, f"the {key} field of a body",
                                     step, before, steps)
        return value

    def think(self, entry: Recorded, following: Recorded | None) -> tuple[str | None, str | None]:
        """(think time, a note when it was capped) after `entry`."""
        if following is None or entry.ended_s is None or following.started_s is None:
            return None, None
        gap_s = following.started_s - max(entry.ended_s, self.chain_end.get(entry.index, 0.0))
        steps = round(gap_s / THINK_STEP_S)
        if steps < 1:
            return None, None
        think_s = steps * THINK_STEP_S
        note = None
        if think_s > self.options.max_think_s:
            note = f"think: recorded {think_s:.1f}s, capped at {_seconds(self.options.max_think_s)} (--max-think)"
            think_s = self.options.max_think_s
        return _seconds(think_s), note

    def convert(self) -> Draft:
        kept, trailing = self.select()
        if not kept:
            return None
        target, hosts = self.hosts(kept)
        steps: list[DraftStep] = []
        entries = [entry for entry, _, _ in kept]
        page_step = None
        for n, (entry, kind, comments) in enumerate(kept):
            name = step_name(entry.url, self.step_names, prefix="static." if kind else "")
            step = DraftStep(name=name, request="", comments=list(comments))
            before = entries[:n]
            step.request = self.request_line(entry, hosts, target, name, before, steps)
            step.headers = self.headers(entry, name, before, steps)
            step.auth = self.auth.get(name)
            self.body(entry, step, before, steps)
            if entry.status is not None and entry.status >= 400:
                step.expect_status = entry.status
                step.notes.append(f"recorded status {entry.status}: expected, so a replay that gets it is fine")
            if kind and page_step is not None and (not steps[-1].name.startswith("static.")):
                step.comments.append(f"static assets after {page_step}")
            if not kind:
                page_step = name
            following = entries[n + 1] if n + 1 < len(entries) else None
            next_kind = kept[n + 1][1] if n + 1 < len(kept) else None
            if not (next_kind and self.options.keep_static):     # a page's assets go out back to back
                step.think, note = self.think(entry, following)
                if note:
                    step.notes.append(note)
            steps.append(step)
        return self.draft(target, hosts, steps, trailing)

    def draft(self, target, hosts, steps, trailing) -> Draft:
        recording = self.recording
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", _stem(recording.source)).strip("-.") or "recording"
        header = []
        for secret in self.secrets.values():
            if not secret.env.startswith("${"):
                used = ", ".join(dict.fromkeys(self.secret_steps.get(secret.env, [])))
                header.append(f"set {secret.env} before running: {secret.what} (steps {used}); "
                              f"the value in the input is not written here")
        dropped = ", ".join(f"{n} {why}" for why, n in self.counts.items())
        if dropped:
            header.append(f"left out: {dropped} (each listed where it was)")
        if self.dropped_headers:
            by_why: dict = {}
            for header_name, (why, count) in sorted(self.dropped_headers.items()):
                by_why.setdefault(why, []).append(f"{header_name} ({count})")
            header.append("headers dropped (how many requests had them):")
            for why, names in by_why.items():
                header += textwrap.wrap(f"{why}: {', '.join(names)}", width=100, initial_indent="  ",
                                        subsequent_indent="    ", break_on_hyphens=False)
        return Draft(name=name, source=recording.source, target=target, hosts=list(hosts.values()),
                     scenario=_scenario_name(recording), steps=steps, secrets=list(self.secrets.values()),
                     header_comments=header, trailing_comments=trailing, vus=self.options.vus,
                     duration=self.options.duration)


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        return False
    return bool(parts.hostname) and not any(ch.isspace() for ch in url)


def _stem(path: str) -> str:
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _scenario_name(recording: Recording) -> str:
    titles = [t for t in recording.pages.values() if t]
    if len(titles) == 1:
        words = urlsplit(titles[0]).path.strip("/") if "://" in titles[0] else titles[0]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", words).strip("-.")[:40]
        if name and (name[0].isalnum() or name[0] == "_"):
            return name
    return "recording"


def _seconds(value_s: float) -> str:
    text = f"{value_s:.1f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _json_safe(value) -> bool:
    """Whether YAML reads the value back as the same JSON: no NaN, and no number
    YAML 1.1 reads otherwise (PyYAML takes 1e+20, without a dot, for a string)."""
    import yaml
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        return yaml.safe_load(text) == value
    except (ValueError, yaml.YAMLError):
        return False


def _find(document, value: str, path=()):
    """The path of the first string in `document` equal to `value`."""
    if isinstance(document, str):
        return path if document == value else None
    if isinstance(document, dict):
        for key, item in document.items():
            found = _find(item, value, path + (key,))
            if found is not None:
                return found
    if isinstance(document, list):
        for n, item in enumerate(document):
            found = _find(item, value, path + (n,))
            if found is not None:
                return found
    return None


def _json_path(path: tuple) -> str:
    """('data', 0, 'token') -> '$.data[0].token' (the subset surge.plan.jsonpath reads)."""
    out = "$"
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.match(r"^[A-Za-z0-9_$-]+\Z", step):
            out += f".{step}"
        elif "'" not in step:
            out += f"['{step}']"
        else:
            out += f'["{step}"]'
    return out


def convert_recording(recording: Recording, options: Options = Options()) -> Draft | None:
    """The draft plan of a recording; None when no request is left to replay."""
    return _Converter(recording, options).convert()
