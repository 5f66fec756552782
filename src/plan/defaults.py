"""A plan's `defaults:`: what every step gets unless it says otherwise.

    defaults:
      headers: {Accept: application/json, X-Tenant: acme}
      timeout: 5s
      think: 1s..2s
      expect: {status: 2xx}

A step's own `headers:` are merged with the defaults by name, case-insensitively,
the step's value winning; its own `expect`, `think` and `timeout` replace the
defaults' whole (`think: 0` and `expect: {}` turn them off for that step).
`surge run plan.yaml -H 'Name: value'` adds to the default headers, over a
default of the same name (the command line wins over the file) and under a
step's own (the step is more specific).

Default header values may read data columns and builtins; not extracted
variables, which the first step of a scenario cannot have yet.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from surge.plan import template as tpl
from surge.plan.checker import Checker, is_number
from surge.plan.plan import Expect, Step, Think
from surge.plan.request import literal
from surge.plan.step_checks import TOKEN, check_expect, check_think
from surge.plan.template import Template, TemplateError, parse_template

DEFAULT_KEYS = ("headers", "timeout", "think", "expect")
_PATH = ("defaults",)


@dataclass(frozen=True)
class Defaults:
    """The parsed `defaults:` block (plus -H headers); `None` fields: not given."""
    headers: tuple[tuple[str, Template], ...] = ()
    expect: Expect | None = None
    think: Think | None = None
    think_given: bool = False            # `think: 0` is given (and None): steps then think 0 too
    timeout_ns: int | None = None

    @property
    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def apply(self, step: Step, written: dict) -> Step:
        """The step with the defaults it does not override (`written`: its keys as written)."""
        own = {name.lower() for name, _ in step.headers}
        inherited = tuple((name, value) for name, value in self.headers if name.lower() not in own)
        changes = {}
        if inherited:
            changes["headers"] = inherited + step.headers
        if self.expect is not None and "expect" not in written:
            changes["expect"] = self.expect
        if self.think_given and "think" not in written:
            changes["think"] = self.think
        if self.timeout_ns is not None and "timeout" not in written:
            changes["timeout_ns"] = self.timeout_ns
        return replace(step, **changes) if changes else step


NO_DEFAULTS = Defaults()


def check_defaults(c: Checker, value, data: dict, multiline: set,
                   cli_headers: tuple[tuple[str, str], ...] = ()) -> Defaults | None:
    """The plan's `defaults:` (None after a problem) with the -H headers added.
    `data`: {source name: its columns (None: unreadable)}; `multiline`: the
    (source, column) pairs with a line break in a value (not for a header)."""
    cli = tuple((name, literal(text)) for name, text in cli_headers)
    if value is None:
        return Defaults(headers=_merged((), cli))
    block = c.mapping(_PATH, value, f"a mapping of step defaults ({', '.join(DEFAULT_KEYS)})")
    if block is None:
        return None
    c.keys(_PATH, block, DEFAULT_KEYS)
    before = c.count
    headers = _headers(c, block["headers"], data, multiline) if "headers" in block else ()
    expect = check_expect(c, _PATH + ("expect",), block["expect"]) if "expect" in block else None
    think = check_think(c, _PATH + ("think",), block["think"]) if "think" in block else None
    timeout_ns = c.duration_ns(_PATH + ("timeout",), block["timeout"]) if "timeout" in block else None
    if c.count > before or headers is None:
        return None
    return Defaults(headers=_merged(headers, cli), expect=expect, think=think, think_given="think" in block,
                    timeout_ns=timeout_ns)


def _merged(plan_headers: tuple, cli_headers: tuple) -> tuple:
    """The plan's default headers with the command line's over them (same name, case-insensitively)."""
    names = {name.lower() for name, _ in cli_headers}
    return tuple(h for h in plan_headers if h[0].lower() not in names) + cli_headers


def _headers(c: Checker, value, data: dict, multiline: set):
    path = _PATH + ("headers",)
    headers = c.mapping(path, value, "a mapping of header names to values")
    if headers is None:
        return None
    found, seen = [], {}
    for name, raw in headers.items():
        where = path + (name,)
        if not TOKEN.match(name):
            c.problem(where, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
            continue
        if name.lower() == "content-length":
            c.problem(where, "surge computes Content-Length from each step's body; remove it")
            continue
        if name.lower() in seen:
            c.problem(where, f"the same header as {seen[name.lower()]!r} (names are case-insensitive): give one")
            continue
        seen[name.lower()] = name
        text = c.string(where, str(raw) if is_number(raw) else raw, "a header value (text)")
        template = _template(c, where, text, data, multiline) if text is not None else None
        if template is not None:
            found.append((name, template))
    return tuple(found) if len(found) == len(headers) else None


def _template(c: Checker, path, text: str, data: dict, multiline: set) -> Template | None:
    try:
        template = parse_template(text, tpl.RAW).resolve_env(c.environ)
    except TemplateError as exc:
        for problem in exc.problems:
            c.problem(path, problem)
        return None
    if any(isinstance(part, str) and ("\r" in part or "\n" in part) for part in template.parts):
        c.problem(path, "contains a line break")
        return None
    ok = True
    for slot in template.slots:
        message = _slot_problem(slot, data, multiline)
        if message:
            c.problem(path, message)
            ok = False
    return template if ok else None


def _slot_problem(slot: tpl.Slot, data: dict, multiline: set) -> str | None:
    if slot.kind == tpl.VAR:
        if slot.name in data:
            return f"{slot.text} names a data source; pick a column like ${{{slot.name}.COLUMN}}"
        return (f"{slot.text}: defaults cannot read extracted variables (a scenario's first step has none "
                f"yet); set this header on the steps after the extraction, or use data columns or builtins")
    if slot.kind == tpl.DATA:
        if slot.name not in data:
            return f"unknown data source {slot.name!r} in {slot.text} (not defined under data:)"
        columns = data[slot.name]
        if columns is not None and slot.column not in columns:
            return f"{slot.text}: data source {slot.name!r} has no column {slot.column!r}; its columns: " \
                   f"{', '.join(columns)}"
        if (slot.name, slot.column) in multiline:
            return f"{slot.text}: a value of column {slot.column!r} holds a line break, which cannot go into a header"
    return None

