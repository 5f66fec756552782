"""`surge run --targets FILE`: many URLs without writing a plan (vegeta's format).

    # comments and blank lines are ignored
    GET http://127.0.0.1:8080/items/1
    X-Trace: abc                      <- headers of the target above
    POST http://127.0.0.1:8080/login
    Content-Type: application/json
    @login.json                       <- its body, read from this file (relative to FILE)
    http://127.0.0.1:8080/health      <- a URL alone is a GET

Each target becomes a step of its own, so the result counts each apart.  The
workload has one scenario of one step per target, and an iteration is one
request, so -n, --rate and -c mean what they mean for one URL:
`--order round-robin` (the default) gives each iteration the next target in
turn (the engine's scenario rotation: the targets' counts differ by at most
one per worker, and with -n the workers start where the others leave off, so
the totals are exact); `--order random` picks one at random, all equally likely.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from surge.plan.errors import PlanError
from surge.plan.model import Target
from surge.plan.redact import redact_query
from surge.plan.request import parse_header, parse_method, parse_target

ORDERS = ("round-robin", "random")
FORMAT_HELP = "a line 'METHOD URL' (or a URL alone), then 'Name: value' header lines and one '@FILE' body line"
_TARGET_LINE = re.compile(r"^(?:([^\s:]+)\s+)?([A-Za-z][A-Za-z0-9+.-]*://\S*)\s*$")
_RELATIVE = re.compile(r"^[^\s:]+\s+/")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:")


@dataclass(frozen=True)
class TargetSpec:
    """One target of the file, as written (the body read)."""
    method: str
    target: Target
    headers: tuple[tuple[str, str], ...]
    body: bytes
    line: int                   # where its METHOD URL line is (1-based)
    written: str                # "GET http://host/path" as written (URL credentials hidden)


def read_targets(path: str) -> tuple[list[TargetSpec], list[str]]:
    """The targets of the file at path, or the problems: each one line
    `FILE:LINE: what was found, what is allowed`."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        return [], [f"--targets: cannot read {path!r}: {exc.strerror}"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return [], [f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})"]
    return _Reader(path).read(text)


class _Reader:
    def __init__(self, path: str):
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.problems: list[str] = []
        self.targets: list[TargetSpec] = []
        self.current: dict | None = None        # the target being read: its lines so far

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def read(self, text: str) -> tuple[list[TargetSpec], list[str]]:
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line:
                self.finish()               # a blank line ends a target
            elif line.startswith("#"):
                continue
            elif line.startswith("@"):
                self.body(number, line[1:].strip())
            elif _TARGET_LINE.match(line):
                self.finish()
                self.start(number, line)
            elif _HEADER_NAME.match(line):
                self.header(number, line)
            elif _RELATIVE.match(line):
                self.problem(number, f"got {line[:60]!r}: a target's URL is absolute, like "
                                     f"GET http://127.0.0.1:8080/path")
            else:
                self.problem(number, f"got {line[:60]!r}, expected {FORMAT_HELP}")
        self.finish()
        if not self.targets and not self.problems:
            self.problems.append(f"{self.path}: no targets; expected {FORMAT_HELP}, a blank line between targets")
        return (self.targets if not self.problems else []), self.problems

    def start(self, number: int, line: str) -> None:
        method, url = _TARGET_LINE.match(line).groups()
        self.current = {"line": number, "headers": [], "body": None, "ok": True}
        try:
            self.current["method"] = parse_method(method or "GET")
            self.current["target"] = parse_target(url, allow_credentials=True)
        except PlanError as exc:
            message = str(exc).removeprefix("-m/--method: ").removeprefix("URL: ")
            self.problem(number, message)
            self.current["ok"] = False
            return
        target = self.current["target"]
        self.current["written"] = f"{self.current['method']} {target.url}"

    def header(self, number: int, line: str) -> None:
        if self.current is None:
            self.problem(number, f"a header line before any target; expected {FORMAT_HELP}")
            return
        if self.current["body"] is not None:
            self.problem(number, "a header line after the body line; headers come first, then '@FILE'")
            return
        try:
            name, value = parse_header(line)
        except PlanError as exc:
            self.problem(number, str(exc).removeprefix("-H/--header: "))
            return
        if name.lower() == "content-length":
            self.problem(number, "surge computes Content-Length from the body; remove it")
            return
        self.current["headers"].append((name, value))

    def body(self, number: int, name: str) -> None:
        if self.current is None:
            self.problem(number, f"a body line before any target; expected {FORMAT_HELP}")
            return
        if self.current["body"] is not None:
            self.problem(number, "a second body line; a target has one '@FILE' body")
            return
        if not name:
            self.problem(number, "'@' without a file; write @path/to/body (relative to the targets file)")
            self.current["body"] = b""
            return
        full = os.path.join(self.base, os.path.expanduser(name))
        try:
            with open(full, "rb") as f:
                self.current["body"] = f.read()
        except OSError as exc:
            self.problem(number, f"cannot read the body file {name!r} ({full}): {exc.strerror}")
            self.current["body"] = b""

    def finish(self) -> None:
        current, self.current = self.current, None
        if current is None or not current["ok"]:
            return
        self.targets.append(TargetSpec(method=current["method"], target=current["target"],
                                       headers=tuple(current["headers"]), body=current["body"] or b"",
                                       line=current["line"], written=current["written"]))


def step_names(targets: list[TargetSpec]) -> list[str]:
    """Each target's name in the result: 'GET /path' when every target has the
    same origin, else 'GET http://host/path'; a repeat gets ' #2', ' #3'."""
    origins = {(t.target.scheme, t.target.authority) for t in targets}
    names, seen = [], {}
    for t in targets:
        base = redact_query(f"{t.method} {t.target.path if len(origins) == 1 else t.target.url}")
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return names
