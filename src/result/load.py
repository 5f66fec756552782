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


# What a result file may be, so a hostile or corrupt one costs bounded time and
# memory: our writer keeps a result well under 100 MB (even a 24-hour run),
# nests ~6 deep and writes no string longer than a histogram's text.
MAX_RESULT_BYTES = 256 * 1024 * 1024
MAX_NESTING = 32
MAX_STRING_CHARS = 4 * 1024 * 1024


class ResultFileError(ValueError):
    """A result file that cannot be read; the message is one line naming the file."""


def load_result(path: str | os.PathLike) -> dict:
    """The result dict from a surge result file, or ResultFileError saying which and why."""
    return check_result(read_json(path), os.fspath(path))


def read_json(path: str | os.PathLike):
    """The parsed JSON of a file that may be a surge result (bounded in size and
    nesting), or ResultFileError; not yet checked as a result (surge report
    also reads `surge capacity --json` documents through it)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_RESULT_BYTES:
                raise ResultFileError(f"{name}: {size:,} bytes, larger than any surge result "
                                      f"(at most {MAX_RESULT_BYTES // 2**20} MiB): not a result file?")
            raw = f.read(MAX_RESULT_BYTES + 1)
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
    except RecursionError:
        raise ResultFileError(f"{name}: JSON nested deeper than any surge result "
                              f"(at most {MAX_NESTING} levels): not a result file?") from None
    except ValueError as exc:       # an integer past Python's digit limit (a hostile file)
        raise ResultFileError(f"{name}: invalid JSON: {str(exc).split(';')[0]}") from None
    return data


def check_shape(data, where: str) -> None:
    """ResultFileError when `data` nests deeper than MAX_NESTING or holds a
    string longer than MAX_STRING_CHARS (a walk without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ResultFileError(f"{where}: JSON nested deeper than any surge result "
                                  f"(at most {MAX_NESTING} levels): not a result file?")
        if isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise ResultFileError(f"{where}: a string of {len(value):,} characters, longer than any "
                                      f"surge result holds (at most {MAX_STRING_CHARS // 2**20} Mi): "
                                      "not a result file?")
        elif isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
            stack.extend((key, depth + 1) for key in value)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


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
    check_shape(data, where)
    try:
        check_schema(data)
    except SchemaProblem as problem:
        raise ResultFileError(f"{where}: {problem}") from None
    return data
