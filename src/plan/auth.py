"""A plan's `auth:` (plan, host and step level; `--auth`; URL credentials).

    auth: {basic: {user: alice, password: ${env.PASSWORD}}}
    auth: {bearer: ${token}}            # a variable (extracted, or a data column) or a literal
    auth: off                           # a step or host without the inherited one

The most specific level wins: a step's, its host's (hosts: NAME: auth: or
the host url's user:password@), `--auth`, then the plan's (auth: or the
target's user:password@).  A step that sets its own Authorization header
keeps it.  Each becomes the step's Authorization header: Basic is encoded
once here (its user and password are literal or ${env.NAME}), Bearer is a
header template the engine renders per request.  An inherited Bearer whose
variable a step cannot see yet (the login step that extracts it) is not
sent by that step.  The values never reach an output: Authorization is a
secret header (surge.plan.redact), and no message here repeats one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from surge.plan.checker import Checker
from surge.plan.redact import redact_auth

AUTH_KEYS = ("basic", "bearer")
BASIC_KEYS = ("user", "password")
AUTH_HELP = "{basic: {user: ..., password: ...}}, {bearer: TOKEN or ${VARIABLE}}, or off"


@dataclass(frozen=True)
class AuthSpec:
    """One level's auth as written (values unparsed, never shown)."""
    kind: str                                       # "basic" | "bearer" | "off"
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def __repr__(self) -> str:          # never the secret, wherever an AuthSpec is printed
        return f"AuthSpec({redact_auth(self.kind, self.user)})"

    __str__ = __repr__

    @property
    def header_text(self) -> str | None:
        """The Authorization header's text before templates are parsed (None: off)."""
        if self.kind == "bearer":
            return f"Bearer {self.token}"
        return None


OFF = AuthSpec("off")


def check_auth(c: Checker, path, value) -> AuthSpec | None:
    """The auth block at `path` (problems recorded in c; values never echoed)."""
    if value is False or value == "off":       # YAML reads a bare `off` as False
        return OFF
    block = c.mapping(path, value, AUTH_HELP)
    if block is None:
        return None
    c.keys(path, block, AUTH_KEYS)
    kinds = [k for k in AUTH_KEYS if k in block]
    if len(kinds) != 1:
        c.problem(path, "give one of basic or bearer" if kinds else f"expected {AUTH_HELP}")
        return None
    if kinds[0] == "bearer":
        token = _secret(c, path + ("bearer",), block["bearer"], "a token, or a ${VARIABLE} holding one")
        return AuthSpec("bearer", token=token) if token is not None else None
    basic = c.mapping(path + ("basic",), block["basic"], "{user: ..., password: ...}")
    if basic is None:
        return None
    c.keys(path + ("basic",), basic, BASIC_KEYS, required=("user",))
    user = _secret(c, path + ("basic", "user"), basic.get("user", ""), "a user name")
    password = _secret(c, path + ("basic", "password"), basic.get("password", ""), "a password (text)")
    if user is None or password is None:
        return None
    if not user:
        c.problem(path + ("basic", "user"), "is empty; Basic auth needs a user name")
        return None
    if ":" in user:
        c.problem(path + ("basic", "user"), "contains ':', which Basic auth cannot carry in a user name")
        return None
    return AuthSpec("basic", user=user, password=password)


def _secret(c: Checker, path, value, expected: str) -> str | None:
    """A text value; a problem names the field and the type found, never the value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        c.problem(path, f"expected {expected}, got a {type(value).__name__}")
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        c.problem(path, "contains a control character (not shown)")
        return None
    return value


def from_credentials(target) -> AuthSpec | None:
    """A URL's user:password@ as Basic auth (None: the URL has none)."""
    if target is None or target.username is None:
        return None
    return AuthSpec("basic", user=target.username, password=target.password or "")


def from_option(credentials: tuple[str, str] | None) -> AuthSpec | None:
    """`--auth USER:PASSWORD` (already parsed) as Basic auth."""
    return AuthSpec("basic", user=credentials[0], password=credentials[1]) if credentials else None


def effective(*levels: AuthSpec | None) -> AuthSpec | None:
    """The most specific level given (first in `levels`); None for off or none."""
    for spec in levels:
        if spec is not None:
            return None if spec.kind == "off" else spec
    return None


def basic_header_value(c: Checker, path, spec: AuthSpec) -> str | None:
    """`Basic base64(user:password)`, encoded once (${env.NAME} resolved first;
    other templates are refused: the engine does not encode per request)."""
    from surge.plan.request import basic_authorization
    from surge.plan.template import TemplateError, parse_template

    values = []
    for name, text in (("user", spec.user), ("password", spec.password)):
        try:
            template = parse_template(text).resolve_env(c.environ)
        except TemplateError as exc:
            for problem in exc.problems:
                c.problem(path + ("basic", name), problem)
            return None
        if not template.is_static:
            c.problem(path + ("basic", name), "Basic auth takes literal text or ${env.NAME} (it is encoded "
                                              "once); for a value per user, use bearer: or a header")
            return None
        values.append(template.literal)
    return basic_authorization(*values)


def step_headers(c: Checker, path, own: AuthSpec | None, inherited: AuthSpec | None, headers: tuple,
                 templates) -> tuple | None:
    """The step's headers with its Authorization from auth, first (None: a problem).
    `templates` parses and checks a header template (the step's _TemplateChecker)."""
    from surge.plan.template import TemplateError, parse_template, static_template

    has_header = any(name.lower() == "authorization" for name, _ in headers)
    if own is not None and own.kind != "off" and has_header:
        c.problem(path + ("auth",), "give auth or an Authorization header, not both")
        return None
    spec = effective(own, inherited)
    if spec is None or has_header:
        return headers
    where = path + ("auth",)
    if spec.kind == "basic":
        value = basic_header_value(c, where, spec)
        return None if value is None else (("Authorization", static_template(value)),) + headers
    if own is None:         # inherited Bearer: not sent before its variable exists in this scenario
        try:
            parsed = parse_template(spec.header_text, "raw")
        except TemplateError:
            parsed = None
        if parsed is not None and any(templates.scenario.extracted_where(s.name, templates.step_index)
                                      for s in parsed.slots if s.kind == "var"):
            return headers
    template = templates.parse(where + ("bearer",), spec.header_text, "raw", header=True)
    return None if template is None else (("Authorization", template),) + headers


def check_follow(c: Checker, path, value) -> int | None:
    """follow_redirects: a whole number >= 0 (0: redirects are the step's response)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 1000:
        c.problem(path, f"expected a whole number of redirects from 0 to 1000, got {value!r}")
        return None
    return value
