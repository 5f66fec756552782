"""The `${...}` template language of plans.

A template is literal text with slots: `${users.name}` (a data source's
column), `${token}` (a variable extracted by an earlier step), and the
builtins `${random.int(A,B)}` (`${random.int(A,B,pad=N)}`: zero-padded to N
digits), `${random.string(N)}` (N letters and digits), `${random.choice(a,b,c)}`
(one of the items; `"quoted, items"` keep commas and spaces), `${random.word}`,
`${uuid}`, `${iteration}`, `${user}`, `${timestamp}` (Unix time in ms;
`${timestamp(s)}`, `(ms)`, `(us)`, `(iso)` for RFC 3339 UTC with ms) and
`${env.NAME}` / `${env.NAME:-default}` (environment variables, resolved when
the plan is loaded, so a loaded plan never holds an env slot).
`$${` is an escape for a literal `${`; any other `$` is literal.

Templates are parsed once here; the engine pre-renders the literal parts and
fills the slots, escaping each value as `Slot.escape` says (see escape_value).

Typed values: in a `json:` body, a string that is exactly one slot
(`{"id": "${id}"}`) is replaced by a JSON value of the slot's type
(escape JSON_VALUE): a value extracted with a JSON path keeps the type it
had in the response (number, boolean, null, object, array or string); a
JSON-lines data column keeps its JSON type; `random.int` (unpadded),
`iteration`, `user` and `timestamp` (s, ms, us) are numbers, as is a
`random.choice` whose items are all numbers; a variable that was never
extracted is `null`; everything else is a JSON string.  Inside a longer
string (`"id-${id}"`) a value is always text.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from surge.core._escape import escape as _engine_escape

# Slot kinds.
DATA, VAR, RANDOM_INT, RANDOM_WORD, UUID, ITERATION, USER, ENV = (
    "data", "var", "random_int", "random_word", "uuid", "iteration", "user", "env")
RANDOM_STRING, RANDOM_CHOICE, TIMESTAMP = "random_string", "random_choice", "timestamp"
# How a slot's value is escaped where it lands.  JSON_VALUE: the whole value
# of a json: field, written as a JSON value of the slot's type (module docstring).
RAW, URL, JSON, JSON_VALUE = "raw", "url", "json", "json_value"

BUILTIN_NAMES = ("random", "env", "uuid", "iteration", "user", "timestamp")
BUILTINS_HELP = ("${uuid}, ${iteration}, ${user}, ${timestamp}, ${random.int(A,B)}, ${random.string(N)}, "
                 "${random.choice(a,b)}, ${random.word}, ${env.NAME}")
_SIMPLE_BUILTINS = {"uuid": UUID, "iteration": ITERATION, "user": USER}
TIMESTAMP_UNITS = ("s", "ms", "us", "iso")
RANDOM_STRING_MAX = 4096             # characters of ${random.string(N)}
RANDOM_INT_PAD_MAX = 20              # digits of a padded ${random.int(A,B,pad=N)}

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^{NAME_PATTERN}\Z")
_DATA_REF = re.compile(rf"^({NAME_PATTERN})\.([A-Za-z_][A-Za-z0-9_-]*)\Z")
_RANDOM_INT = re.compile(r"^random\.int\(\s*(-?\d{1,18})\s*,\s*(-?\d{1,18})\s*"
                         r"(?:,\s*pad\s*=\s*(\d{1,3})\s*)?\)\Z")
_RANDOM_STRING = re.compile(r"^random\.string\(\s*(\d{1,6})\s*\)\Z")
_RANDOM_CHOICE = re.compile(r"^random\.choice\((.*)\)\Z", re.DOTALL)
_CHOICE_ITEM = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^,"]*?))\s*(,|\Z)', re.DOTALL)
_TIMESTAMP = re.compile(r"^timestamp(?:\(\s*([a-z]*)\s*\))?\Z")
_JSON_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
_ENV = re.compile(rf"^env\.({NAME_PATTERN})(?::-(.*))?\Z", re.DOTALL)


class TemplateError(ValueError):
    """A template that does not parse; `problems` holds one sentence per bad slot."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Slot:
    """One `${...}` of a template."""
    kind: str                    # DATA, VAR, RANDOM_INT, RANDOM_WORD, RANDOM_STRING, RANDOM_CHOICE, UUID,
                                 # ITERATION, USER, TIMESTAMP or ENV
    text: str                    # as written, "${users.name}"
    name: str = ""               # DATA: the source; VAR: the variable; ENV: the environment variable
    column: str = ""             # DATA: the column
    low: int = 0                 # RANDOM_INT: inclusive bounds
    high: int = 0
    default: str | None = None   # ENV: the value when the variable is not set
    escape: str = RAW            # RAW, URL (percent-encoded: path or query rule by where it lands), JSON
                                 # (inside a JSON string) or JSON_VALUE (a json: field's whole value, typed)
    width: int = 0               # RANDOM_INT: zero-padded to this many digits (0: not padded);
                                 # RANDOM_STRING: its length
    choices: tuple[str, ...] = ()  # RANDOM_CHOICE: the items
    unit: str = ""               # TIMESTAMP: s, ms, us or iso

    @property
    def variable(self) -> str:
        """The name the slot reads: 'users.name', 'token', 'random.int', 'uuid', 'env.HOME'."""
        if self.kind == DATA:
            return f"{self.name}.{self.column}"
        if self.kind == VAR:
            return self.name
        if self.kind == ENV:
            return f"env.{self.name}"
        return {RANDOM_INT: "random.int", RANDOM_WORD: "random.word", RANDOM_STRING: "random.string",
                RANDOM_CHOICE: "random.choice"}.get(self.kind, self.kind)

    @property
    def is_number(self) -> bool:
        """Whether the slot's value is always a JSON number (so a typed json: field writes it bare)."""
        if self.kind == RANDOM_INT:
            return self.width == 0
        if self.kind == TIMESTAMP:
            return self.unit != "iso"
        if self.kind == RANDOM_CHOICE:
            return all(_JSON_NUMBER.match(item) for item in self.choices)
        return self.kind in (ITERATION, USER)


@dataclass(frozen=True)
class Template:
    """Literal text and slots, in order; `text` is the source as written."""
    parts: tuple[str | Slot, ...]
    text: str

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(part for part in self.parts if isinstance(part, Slot))

    @property
    def variables(self) -> tuple[str, ...]:
        """Every name the template reads, in order, each once (see Slot.variable)."""
        return tuple(dict.fromkeys(slot.variable for slot in self.slots))

    @property
    def data_columns(self) -> tuple[tuple[str, str], ...]:
        """(source, column) pairs read from data sources."""
        return tuple(dict.fromkeys((s.name, s.column) for s in self.slots if s.kind == DATA))

    @property
    def extracted_variables(self) -> tuple[str, ...]:
        """Variables that an earlier step must extract."""
        return tuple(dict.fromkeys(s.name for s in self.slots if s.kind == VAR))

    @property
    def is_static(self) -> bool:
        return not self.slots

    @property
    def literal(self) -> str:
        """The text of a template without slots (escapes resolved)."""
        if not self.is_static:
            raise ValueError(f"template {self.text!r} has slots")
        return "".join(self.parts)

    def render(self, value_of: Callable[[Slot], str]) -> str:
        """The text with every slot filled by value_of(slot), escaped as the slot says
        (a URL slot after a literal "?" is escaped as a query value)."""
        out, in_query = [], False
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                in_query = in_query or "?" in part
            else:
                out.append(escape_value(part, value_of(part), in_query))
        return "".join(out)

    def url_contexts(self) -> tuple[bool, ...]:
        """For each part: whether it lies in the query (after a literal "?")."""
        contexts, in_query = [], False
        for part in self.parts:
            contexts.append(in_query)
            if isinstance(part, str):
                in_query = in_query or "?" in part
        return tuple(contexts)

    def resolve_env(self, environ: Mapping[str, str]) -> Template:
        """The template with its ${env...} slots replaced by their values.
        Raises TemplateError naming every unset variable that has no default."""
        missing = [s for s in self.slots if s.kind == ENV and s.name not in environ and s.default is None]
        if missing:
            raise TemplateError([f"environment variable {s.name} is not set; set it or give a default: "
                                 f"${{env.{s.name}:-VALUE}}" for s in dict.fromkeys(missing)])
        parts = []
        for part in self.parts:
            if isinstance(part, Slot) and part.kind == ENV:
                value = environ.get(part.name, part.default)
                part = escape_value(part, value) if part.escape == JSON else value
            parts.append(part)
        return Template(merge_literals(parts), self.text)


def escape_value(slot: Slot, value: str, in_query: bool = False) -> str:
    """A slot's value as it lands: percent-encoded in a path segment or a query
    value (the engine's own C code, surge.core._escape, whose rule is written
    in src/core/escape.pxd: what stays literal differs between the two),
    JSON-string-escaped inside a JSON body, as is elsewhere (header values and
    raw bodies)."""
    if slot.escape == URL:
        return _engine_escape(value, "query" if in_query else "path")
    if slot.escape == JSON:
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if slot.escape == JSON_VALUE:        # Python's renderings know only text, or a number builtin
        return value if slot.is_number else json.dumps(value, ensure_ascii=False)
    return value


def parse_template(text: str, escape: str = RAW) -> Template:
    """Parse text into a Template whose slots carry `escape`.
    Raises TemplateError listing every slot that does not parse."""
    parts: list[str | Slot] = []
    problems: list[str] = []
    literal: list[str] = []
    pos = 0
    while True:
        start = text.find("$", pos)
        if start < 0:
            literal.append(text[pos:])
            break
        literal.append(text[pos:start])
        if text.startswith("$${", start):
            literal.append("${")
            pos = start + 3
        elif text.startswith("${", start):
            end = text.find("}", start + 2)
            if end < 0:
                problems.append(f"unterminated ${{ at character {start + 1}: close it with }} "
                                f"or write $${{ for a literal ${{")
                break
            written = text[start:end + 1]
            try:
                slot = _parse_slot(text[start + 2:end].strip(), written, escape)
            except TemplateError as exc:
                problems.extend(exc.problems)
            else:
                parts.append("".join(literal))
                literal = []
                parts.append(slot)
            pos = end + 1
        else:
            literal.append("$")
            pos = start + 1
    if problems:
        raise TemplateError(problems)
    parts.append("".join(literal))
    return Template(merge_literals(parts), text)


def static_template(text: str) -> Template:
    """A template of literal text only (no parsing: `${` stays as written)."""
    return Template((text,) if text else (), text)


def _parse_slot(expression: str, written: str, escape: str) -> Slot:
    if not expression:
        raise TemplateError([f"{written} is empty; expected a name like ${{token}} or ${{users.name}}"])
    if expression in _SIMPLE_BUILTINS:
        return Slot(_SIMPLE_BUILTINS[expression], written, escape=escape)
    if expression == "random.word":
        return Slot(RANDOM_WORD, written, escape=escape)
    match = _RANDOM_INT.match(expression)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise TemplateError([f"{written}: A ({low}) must be <= B ({high})"])
        width = int(match.group(3)) if match.group(3) is not None else 0
        if match.group(3) is not None and not 1 <= width <= RANDOM_INT_PAD_MAX:
            raise TemplateError([f"{written}: pad={width}, allowed: 1..{RANDOM_INT_PAD_MAX} digits"])
        return Slot(RANDOM_INT, written, low=low, high=high, escape=escape, width=width)
    if expression.startswith(("random.string", "random.choice")):
        return _random_text(expression, written, escape)
    if expression.startswith("random."):
        raise TemplateError([f"{written}: unknown generator, allowed: ${{random.int(A,B)}} with whole "
                             f"numbers A <= B (${{random.int(A,B,pad=N)}}: zero-padded to N digits), "
                             f"${{random.string(N)}}, ${{random.choice(a,b,...)}}, ${{random.word}}"])
    if expression == "timestamp" or expression.startswith("timestamp("):
        match = _TIMESTAMP.match(expression)
        unit = (match.group(1) or "ms") if match else None
        if unit not in TIMESTAMP_UNITS:
            raise TemplateError([f"{written}: expected ${{timestamp}} (Unix time in ms) or ${{timestamp(UNIT)}} "
                                 f"with UNIT one of {', '.join(TIMESTAMP_UNITS)}"])
        return Slot(TIMESTAMP, written, escape=escape, unit=unit)
    if expression.startswith("env."):
        match = _ENV.match(expression)
        if not match:
            raise TemplateError([f"{written}: expected ${{env.NAME}} or ${{env.NAME:-default}} with NAME "
                                 f"made of letters, digits and _"])
        return Slot(ENV, written, name=match.group(1), default=match.group(2), escape=escape)
    head = re.split(r"[.(\s]", expression, maxsplit=1)[0]
    if head in _SIMPLE_BUILTINS:
        raise TemplateError([f"{written}: {head} is a builtin and takes nothing more; write ${{{head}}}"])
    if _NAME.match(expression):
        return Slot(VAR, written, name=expression, escape=escape)
    match = _DATA_REF.match(expression)
    if match:
        return Slot(DATA, written, name=match.group(1), column=match.group(2), escape=escape)
    raise TemplateError([f"{written}: not a template expression; expected ${{VARIABLE}}, "
                         f"${{SOURCE.COLUMN}} or a builtin ({BUILTINS_HELP})"])


def _random_text(expression: str, written: str, escape: str) -> Slot:
    """${random.string(N)} or ${random.choice(a,b,...)}."""
    match = _RANDOM_STRING.match(expression)
    if match:
        length = int(match.group(1))
        if not 1 <= length <= RANDOM_STRING_MAX:
            raise TemplateError([f"{written}: length {length}, allowed: 1..{RANDOM_STRING_MAX}"])
        return Slot(RANDOM_STRING, written, escape=escape, width=length)
    match = _RANDOM_CHOICE.match(expression)
    if not match or not match.group(1).strip():
        raise TemplateError([f"{written}: expected ${{random.string(N)}} with N from 1 to {RANDOM_STRING_MAX}, "
                             f"or ${{random.choice(a,b,...)}} with one or more items"])
    items, rest = [], match.group(1)
    while True:
        item = _CHOICE_ITEM.match(rest)
        if item is None:
            raise TemplateError([f'{written}: a quoted item must be the whole item, like "a, b"'])
        quoted, plain, comma = item.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        if quoted is None and not value:
            raise TemplateError([f"{written}: an empty item; quote it (\"\") to choose empty text"])
        if "\0" in value:
            raise TemplateError([f"{written}: an item holds a NUL character"])
        items.append(value)
        rest = rest[item.end():]
        if not comma:
            break
    if rest.strip():
        raise TemplateError([f'{written}: a quoted item must be the whole item, like "a, b"'])
    return Slot(RANDOM_CHOICE, written, escape=escape, choices=tuple(items))


def merge_literals(parts: list) -> tuple[str | Slot, ...]:
    """Parts with empty literals dropped and adjacent literals joined."""
    merged: list[str | Slot] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += part
                continue
        merged.append(part)
    return tuple(merged)


def json_template(value, text: str = "") -> Template:
    """A JSON body as one template: `value` is a JSON value whose strings are
    Templates (their slots escaped as JSON); the rest is compact JSON."""
    parts: list[str | Slot] = []
    _json_parts(value, parts)
    return Template(merge_literals(parts), text)


def _json_parts(value, parts: list, key: bool = False) -> None:
    if isinstance(value, Template) and not key and len(value.parts) == 1 and isinstance(value.parts[0], Slot):
        parts.append(replace(value.parts[0], escape=JSON_VALUE))     # typed: a JSON value of the slot's type
    elif isinstance(value, Template):
        parts.append('"')
        for part in value.parts:
            parts.append(json.dumps(part, ensure_ascii=False)[1:-1] if isinstance(part, str) else part)
        parts.append('"')
    elif isinstance(value, dict):
        parts.append("{")
        for n, (key, item) in enumerate(value.items()):
            if n:
                parts.append(",")
            _json_parts(key, parts, key=True)
            parts.append(":")
            _json_parts(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for n, item in enumerate(value):
            if n:
                parts.append(",")
            _json_parts(item, parts)
        parts.append("]")
    else:
        parts.append(json.dumps(value, ensure_ascii=False))
