"""The plan `surge convert` writes, before it is text: hosts, one scenario of
steps, the variables the user must set, and what was left out (each shown as
a YAML comment by surge.convert.plan_text)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

NO_BODY = object()          # DraftStep.json when the step has no JSON body

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_VAR = re.compile(r"[^A-Za-z0-9_]+")
RESERVED_VARS = ("random", "env", "uuid", "iteration", "user")


@dataclass
class DraftStep:
    name: str
    request: str                                   # "GET /login", "GET cdn:/app.js"
    headers: list = field(default_factory=list)    # [(name, value)], values already templates
    json: object = NO_BODY
    body: str | None = None
    extract: dict = field(default_factory=dict)    # var -> {"json": path} | {"header": name}
    auth: dict | None = None                       # {"basic": {"user": ..., "password": "${env.X}"}}
    expect_status: int | None = None
    think: str | None = None                       # "1.2s"
    comments: list = field(default_factory=list)   # lines above the step
    notes: list = field(default_factory=list)      # lines inside the step, after its keys


@dataclass
class DraftHost:
    name: str
    origin: str                     # "https://cdn.example.com"
    env: str                        # "CDN_URL"


@dataclass
class Secret:
    """A value the plan reads from the environment instead of the recording."""
    env: str
    what: str                       # "the Bearer token of Authorization (steps dashboard, logout)"


@dataclass
class Draft:
    name: str
    source: str                                    # what was converted, for the first comment
    target: DraftHost                              # the main origin (its env: TARGET_URL)
    hosts: list = field(default_factory=list)      # the other origins
    scenario: str = "recording"
    steps: list = field(default_factory=list)
    secrets: list = field(default_factory=list)
    header_comments: list = field(default_factory=list)
    trailing_comments: list = field(default_factory=list)   # after the last step (dropped at the end)
    vus: int = 1
    duration: str = "1m"
    objectives: list = field(default_factory=lambda: ["error_rate < 1%"])
    insecure: bool = False                          # curl -k: tls: {insecure: true}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def step_name(url: str, taken: set, prefix: str = "") -> str:
    """A readable, unique step name from a URL's path: /items/3 -> items-3, / -> home."""
    path = urlsplit(url).path.strip("/")
    words = [w for w in path.split("/") if w][-2:] if path else ["home"]
    base = _NOT_NAME.sub("-", "-".join(words)).strip("-.") or "home"
    base = (prefix + base)[:48].rstrip("-.")
    if not (base[0].isalnum() or base[0] == "_"):
        base = "s" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def var_name(hint: str, taken: set) -> str:
    """A template variable name (letters, digits, _; not a builtin) from a hint like 'access_token'."""
    base = _NOT_VAR.sub("_", hint).strip("_") or "value"
    if base[0].isdigit():
        base = "v_" + base
    if base in RESERVED_VARS:
        base += "_value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def env_name(hint: str, taken: set) -> str:
    base = _NOT_VAR.sub("_", hint).strip("_").upper() or "VALUE"
    if base[0].isdigit():
        base = "V_" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def host_name(origin: str, taken: set) -> str:
    """'https://cdn.example.com' -> 'cdn'; an IP or localhost -> 'host'; unique."""
    parts = urlsplit(origin)
    host = (parts.hostname or "host").lower()
    labels = [label for label in host.split(".") if label]
    if host == "localhost" or all(label.isdigit() for label in labels) or ":" in host:
        base = "host"
    else:
        labels = [label for label in labels if label != "www"] or labels
        base = labels[0]                # api.example.com -> api, www.shop.test -> shop
    base = re.sub(r"[^a-z0-9_-]+", "_", base).strip("_-") or "host"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "h" + base
    if base in ("http", "https"):
        base += "_host"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def escape_template(text: str) -> str:
    """Recorded text as a template literal: a `${` the recording held is `$${`."""
    return text.replace("${", "$${")


def escape_json(value):
    """A recorded JSON value with every string (and key) escaped as a template literal."""
    if isinstance(value, str):
        return escape_template(value)
    if isinstance(value, dict):
        return {escape_template(k): escape_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_json(v) for v in value]
    return value
