"""A plan's `cookies:` and a step's: each virtual user's cookie jar (the engine's
src/core/cookies.pxi keeps it; this module only validates what the plan says).

    cookies: off                    # no jar: Set-Cookie is ignored, no Cookie header is sent
    cookies: {reset: never}         # one jar per VU for the whole run (default: reset each iteration)
    scenarios:
      - steps:
          - request: GET /feed
            cookies: off            # this step neither sends nor keeps cookies
          - request: GET /cart
            cookies: {theme: dark, sid: "${sid}"}    # into the jar before it is sent (host-only, Path=/)

Plans have a jar by default, as k6 and Gatling do; `surge run URL` has none (as wrk).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from surge.plan.template import Template

if TYPE_CHECKING:       # plan files only: a URL run never loads the checker (start-up cost)
    from surge.plan.checker import Checker

RESETS = ("iteration", "never")
PLAN_HELP = "off, on, or {reset: iteration | never}"
STEP_HELP = "off, or a mapping of cookie names to values"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 6265 section 4.1.1's cookie-octet: no controls, space, '"', ',', ';' or '\'.
_COOKIE_OCTETS = re.compile(r"^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*\Z")
OCTETS_HELP = "printable ASCII without spaces, quotes, commas, semicolons or backslashes"


@dataclass(frozen=True)
class CookiePolicy:
    """The plan's jar: on (the default) or off, emptied each iteration or never."""
    enabled: bool = True
    reset: str = "iteration"        # "iteration" | "never"


@dataclass(frozen=True)
class StepCookies:
    """A step's cookies: off, or cookies it puts into the jar before sending."""
    enabled: bool = True
    values: tuple[tuple[str, Template], ...] = field(default=(), repr=False)   # (name, value template)


def _switch(value) -> bool | None:
    """off/on as YAML booleans or as words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("off", "on"):
        return value.strip().lower() == "on"
    return None


def check_plan_cookies(c: Checker, path, value) -> CookiePolicy | None:
    """The plan's `cookies:` (None after recording a problem)."""
    from surge.plan.checker import show

    switch = _switch(value)
    if switch is not None:
        return CookiePolicy(enabled=switch)
    if not isinstance(value, dict):
        c.problem(path, f"expected {PLAN_HELP}, got {show(value)}")
        return None
    c.keys(path, value, ("reset",))
    if "reset" not in value:
        return CookiePolicy() if len(value) == 0 else None
    reset = c.choice(path + ("reset",), value["reset"], RESETS)
    return None if reset is None or len(value) != 1 else CookiePolicy(reset=reset)


def check_step_cookies(c: Checker, path, value, parse, plan: CookiePolicy | None, headers) -> StepCookies | None:
    """A step's `cookies:`; parse(path, text) gives a header-escaped template
    (or None after a problem); headers: the step's (name, template) pairs."""
    from surge.plan.checker import is_number, show

    switch = _switch(value)
    if switch is not None:
        return StepCookies(enabled=switch)
    if not isinstance(value, dict) or not value:
        c.problem(path, f"expected {STEP_HELP}, got {show(value)}")
        return None
    if plan is not None and not plan.enabled:
        c.problem(path, "the plan has cookies: off, so a step cannot set cookies (remove one of the two)")
        return None
    if headers and any(name.lower() == "cookie" for name, _ in headers):
        c.problem(path, "the step also sets a Cookie header; give its cookies here or there, not both")
        return None
    found, ok = [], True
    for name, raw in value.items():
        where = path + (name,)
        if not isinstance(name, str) or not _TOKEN.match(name):
            c.problem(where, "not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)")
            ok = False
            continue
        if is_number(raw):
            raw = str(raw)
        text = c.string(where, raw, "a cookie value (text)")
        template = parse(where, text) if text is not None else None
        if template is None:
            ok = False
            continue
        if not all(_COOKIE_OCTETS.match(part) for part in template.parts if isinstance(part, str)):
            c.problem(where, f"got {show(text)}: a cookie value is {OCTETS_HELP}")
            ok = False
            continue
        found.append((name, template))
    return StepCookies(values=tuple(found)) if ok else None


def cookie_extract_problem(plan: CookiePolicy | None, step: StepCookies | None) -> str | None:
    """Why a step cannot read a cookie from the jar (extract: {cookie: NAME}), if it cannot."""
    if plan is not None and not plan.enabled:
        return "the plan has cookies: off, so there is no jar to read a cookie from"
    if step is not None and not step.enabled:
        return "this step has cookies: off, so it keeps no cookie to read"
    return None


def cookie_name_problem(name: str) -> str | None:
    from surge.plan.checker import show

    if not _TOKEN.match(name):
        return f"got {show(name)}, not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)"
    return None

