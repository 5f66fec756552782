"""Validating a step's checks (`expect`), extractions (`extract`) and think time."""
from __future__ import annotations

import re

from surge.plan import template as tpl
from surge.plan.checker import ZERO_DURATIONS, Checker, is_number, show
from surge.plan.jsonpath import JsonPathError, parse_json_path
from surge.plan.plan import Expect, Extract, Think
from surge.plan.regex import posix_problem
from surge.plan.units import UnitError, parse_duration_ns

EXPECT_KEYS = ("status", "body_contains", "body_matches", "max_latency")
EXTRACT_KEYS = ("json", "regex", "group", "header", "cookie")
EXTRACT_KINDS = ("json", "regex", "header", "cookie")
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")       # header names, methods
_VAR_NAME = re.compile(rf"^{tpl.NAME_PATTERN}\Z")
_STATUS_CLASS = re.compile(r"^([1-5])xx\Z", re.IGNORECASE)
_THINK_RANGE = re.compile(r"^(.+?)\.\.(.+)\Z", re.DOTALL)
_THINK_EXP = re.compile(r"^exp\((.*)\)\Z", re.DOTALL)
THINK_HELP = "a duration (1s), a range (1s..3s) or exp(2s)"
STATUS_HELP = "a code 100..599, a class like 2xx, or a list of them"


def check_expect(c: Checker, path, value) -> Expect | None:
    expect = c.mapping(path, value, "a mapping of checks (status, body_contains, body_matches, max_latency)")
    if expect is None:
        return None
    c.keys(path, expect, EXPECT_KEYS)
    status, status_text = (), ""
    if "status" in expect:
        status = _status(c, path + ("status",), expect["status"])
        status_text = _status_text(expect["status"])
    contains = matches = latency_us = None
    if "body_contains" in expect:
        contains = c.string(path + ("body_contains",), expect["body_contains"], "text the body must contain")
        if contains == "":
            c.problem(path + ("body_contains",), "is empty; give the text the body must contain")
    if "body_matches" in expect:
        matches = c.string(path + ("body_matches",), expect["body_matches"], "a regular expression")
        if matches is not None:
            _compile(c, path + ("body_matches",), matches)
    if "max_latency" in expect:
        latency_ns = c.duration_ns(path + ("max_latency",), expect["max_latency"])
        latency_us = None if latency_ns is None else max(1, latency_ns // 1_000)
    return Expect(status or (), status_text, contains, matches, latency_us)


def _status(c: Checker, path, value) -> tuple[int, ...] | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        c.problem(path, f"is empty; expected {STATUS_HELP}")
        return None
    codes: set[int] = set()
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if is_number(item) and item == int(item) and 100 <= item <= 599:
            codes.add(int(item))
        elif isinstance(item, str) and _STATUS_CLASS.match(item.strip()):
            first = int(item.strip()[0]) * 100
            codes.update(range(first, first + 100))
        else:
            c.problem(path, f"got {show(item)}, allowed: {STATUS_HELP}")
            return None
    return tuple(sorted(codes))


def _status_text(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _compile(c: Checker, path, pattern: str):
    try:
        compiled = re.compile(pattern)
        problem = posix_problem(pattern)
        if problem:
            c.problem(path, f"regular expression {show(pattern)} {problem}")
            return None
        return compiled
    except re.error as exc:
        c.problem(path, f"bad regular expression {show(pattern)}: {exc.msg} at position {exc.pos}")
    except (OverflowError, RecursionError, ValueError) as exc:
        c.problem(path, f"bad regular expression {show(pattern)}: {exc}")
    return None


def check_extract(c: Checker, path, value) -> tuple[Extract, ...] | None:
    extract = c.mapping(path, value, "a mapping of VARIABLE: {json: PATH} | {regex: PATTERN} | {header: NAME}"
                                     " | {cookie: NAME}")
    if extract is None:
        return None
    result, ok = [], True
    for var, spec in extract.items():
        where = path + (var,)
        if not _VAR_NAME.match(var):
            c.problem(where, "a variable name is letters, digits and _ (not starting with a digit)")
            ok = False
            continue
        if var in tpl.BUILTIN_NAMES:
            c.problem(where, f"{var!r} is a builtin name; pick another variable name")
            ok = False
            continue
        item = _extractor(c, where, var, spec)
        ok = ok and item is not None
        result.append(item)
    return tuple(result) if ok else None


def _extractor(c: Checker, path, var: str, value) -> Extract | None:
    spec = c.mapping(path, value, "{json: PATH}, {regex: PATTERN}, {header: NAME} or {cookie: NAME}")
    if spec is None:
        return None
    before = c.count
    c.keys(path, spec, EXTRACT_KEYS)
    kinds = [k for k in EXTRACT_KINDS if k in spec]
    if len(kinds) != 1:
        given = f"got {' and '.join(kinds)}" if kinds else "got none"
        c.problem(path, f"give exactly one of json, regex, header or cookie; {given}")
        return None
    kind = kinds[0]
    expression = c.string(path + (kind,), spec[kind], {"json": "a JSON path like $.token",
                                                       "regex": "a regular expression",
                                                       "header": "a header name",
                                                       "cookie": "a cookie name"}[kind])
    if "group" in spec and kind != "regex":
        c.problem(path + ("group",), "applies only to regex")
    if expression is None or c.count > before:
        return None
    if kind == "json":
        try:
            return Extract(var, kind, expression, json_path=parse_json_path(expression))
        except JsonPathError as exc:
            c.problem(path + (kind,), f"bad JSON path: {exc}")
            return None
    if kind in ("header", "cookie"):
        if not TOKEN.match(expression):
            c.problem(path + (kind,), f"got {show(expression)}, not a valid {kind} name")
            return None
        return Extract(var, kind, expression)
    compiled = _compile(c, path + (kind,), expression)
    if compiled is None:
        return None
    group = 1 if compiled.groups else 0
    if "group" in spec:
        number = c.number(path + ("group",), spec["group"], minimum=0, whole=True)
        if number is None:
            return None
        if number > compiled.groups:
            groups = f"{compiled.groups} group{'s' * (compiled.groups != 1)}"
            c.problem(path + ("group",), f"got {int(number)}, the pattern has only {groups}")
            return None
        group = int(number)
    return Extract(var, kind, expression, group=group)


def check_think(c: Checker, path, value) -> Think | None:
    if is_number(value) and value == 0:
        return None
    text = c.string(path, value, THINK_HELP)
    if text is None:
        return None
    text = text.strip()
    exp, span = _THINK_EXP.match(text), _THINK_RANGE.match(text)
    if exp:
        mean = _duration_ns(exp.group(1))
        if mean:
            return Think("exponential", 0, None, mean, text)
    elif span:
        low, high = _duration_ns(span.group(1)), _duration_ns(span.group(2))
        if low is not None and high:
            if low > high:
                c.problem(path, f"got {show(text)}, the low end must not exceed the high end")
                return None
            return Think("uniform", low, high, (low + high) // 2, text)
    else:
        pause = _duration_ns(text)
        if pause is not None:
            return Think("constant", pause, pause, pause, text) if pause else None
    c.problem(path, f"got {show(text)}, expected {THINK_HELP}")
    return None


def _duration_ns(text: str) -> int | None:
    """A duration in ns (0 for '0s'), or None when it does not parse."""
    text = text.strip()
    if text in ZERO_DURATIONS:
        return 0
    try:
        return parse_duration_ns(text)
    except (UnitError, OverflowError):
        return None
