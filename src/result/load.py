"""Reading a result file back, with one-line reasons when it is not one we can read.

Every report can be remade from the file, so the file is checked here once:
missing, truncated, another tool's JSON, written by a newer surge, or a value
a report reads of the wrong type or missing (schema.py names its JSON
path: `result.json: totals.requests: expected an integer, got "many"`).
Nothing here loads the engine or the run layer: re-reporting a file needs
neither (tests/result/test_no_engine.py).
"""
from __future__ import annotations

import json
import os

from surge.result.format import RESULT_FORMAT
from surge.result.schema import SchemaProblem, check_schema


class ResultFileError(ValueError):
    """A result file that cannot be read; the message is one line naming the file."""


def load_result(path: str | os.PathLike) -> dict:
    """The result dict from a surge result file, or ResultFileError saying which and why."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ResultFileError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ResultFileError(f"{name}: is a directory, expected a result file (surge run --json)") from None
    except OSError as exc:
        raise ResultFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultFileError(f"{name}: not a text file, expected a surge result file (JSON)") from None
    if not text.strip():
        raise ResultFileError(f"{name}: empty file, expected a surge result file (JSON)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # An error at the very end, or a string never closed, means the writer
        # stopped early (disk full, killed).
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            lines = text.count("\n") + (not text.endswith("\n"))
            raise ResultFileError(f"{name}: truncated JSON: the file ends after {len(raw)} bytes ({lines} lines) "
                                  "in the middle of the result; was the run killed while writing it?") from None
        raise ResultFileError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return check_result(data, name)


def check_result(data, where: str = "result") -> dict:
    """`data` if it is a surge result this surge can read, else ResultFileError."""
    if not isinstance(data, dict):
        raise ResultFileError(f"{where}: not a surge result: the JSON is a {type(data).__name__}, "
                              "expected an object with 'surge_version' and 'result_format'")
    if "result_format" not in data or "surge_version" not in data:
        keys = ", ".join(repr(k) for k in list(data)[:4]) or "none"
        raise ResultFileError(f"{where}: not a surge result (no 'surge_version'/'result_format'; "
                              f"keys {keys}): made by another tool?")
    result_format = data["result_format"]
    if not isinstance(result_format, int) or isinstance(result_format, bool) or result_format < 1:
        raise ResultFileError(f"{where}: 'result_format' must be a whole number >= 1, got {result_format!r}")
    if result_format > RESULT_FORMAT:
        from surge import __version__
        raise ResultFileError(f"{where}: written by surge {data['surge_version']} in result format "
                              f"{result_format}; this surge {__version__} reads format {RESULT_FORMAT} "
                              "and older: upgrade surge to read it")
    try:
        check_schema(data)
    except SchemaProblem as problem:
        raise ResultFileError(f"{where}: {problem}") from None
    return data
