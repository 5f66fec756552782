"""Reading a plan's data files: CSV with a header row, or JSON lines.

Rows come back as tuples of strings in column order (a JSON value that is
not a string is kept as its compact JSON text, a JsonText, so that a typed
`json:` field can write it back as the JSON value it was).  Every failure is a
DataFileError whose message says what is wrong and where in the file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

FORMATS = ("csv", "jsonl")
EXTENSION_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class JsonText(str):
    """A JSON-lines cell that was a number, boolean, null, object or array: its
    compact JSON text (a str everywhere, the JSON type kept for json: bodies)."""
    __slots__ = ()


class DataFileError(ValueError):
    """A data file that cannot feed a plan; the message names the file's problem."""


def format_for(path: str) -> str | None:
    """The format a file name implies ('users.csv' -> 'csv'), or None."""
    return EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower())


def read_data_file(path: str, shown: str, fmt: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(columns, rows) of the file at path; `shown` names it in messages."""
    raw = _read_bytes(path, shown)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{shown!r} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                            f"{exc.start})") from None
    if not text.strip():
        raise DataFileError(f"{shown!r} is empty; a {fmt} data file needs "
                            f"{'a header row and rows' if fmt == 'csv' else 'one JSON object per line'}")
    return _read_csv(text, shown) if fmt == "csv" else _read_jsonl(text, shown)


def _read_bytes(path: str, shown: str) -> bytes:
    if os.path.exists(path) and not os.path.isfile(path):
        raise DataFileError(f"{shown!r} is not a regular file")   # a directory, or a FIFO that would block
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError) as exc:                        # ValueError: a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataFileError(f"cannot read {shown!r} ({path}): {reason}") from None


def _read_csv(text: str, shown: str):
    reader = csv.reader(io.StringIO(text, newline=""))
    header = None
    rows = []
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue                     # blank line
            if header is None:
                header = _header(cells, shown)
                continue
            if len(cells) != len(header):
                raise DataFileError(f"{shown!r} line {reader.line_num} has {_fields(len(cells))}, "
                                    f"the header has {len(header)}")
            rows.append(tuple(cells))
    except csv.Error as exc:
        raise DataFileError(f"{shown!r} line {reader.line_num}: {exc}") from None
    if not rows:
        raise DataFileError(f"{shown!r} has a header row but no data rows")
    return header, tuple(rows)


def _fields(count: int) -> str:
    return f"{count} field{'s' * (count != 1)}"


def _header(cells: list[str], shown: str) -> tuple[str, ...]:
    names = tuple(cell.strip() for cell in cells)
    for n, name in enumerate(names, 1):
        if not name:
            raise DataFileError(f"{shown!r} header row: column {n} has no name; the first row must "
                                f"name the columns")
        if _is_number(name):
            raise DataFileError(f"{shown!r} has no header row (the first row starts {names[:3]!r}); "
                                f"the first row must name the columns, like name,password")
    seen = set()
    for name in names:
        if name in seen:
            raise DataFileError(f"{shown!r} header row: column {name!r} appears twice")
        seen.add(name)
    return names


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _read_jsonl(text: str, shown: str):
    columns = None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise DataFileError(f"{shown!r} line {number} is not JSON: {reason}") from None
        if not isinstance(record, dict):
            raise DataFileError(f"{shown!r} line {number} is not a JSON object; each line must be "
                                f"one object like {{\"name\": \"ann\"}}")
        if columns is None:
            if not record:
                raise DataFileError(f"{shown!r} line {number} is an empty object; the first object "
                                    f"names the columns")
            columns = tuple(record)
        missing = [c for c in columns if c not in record]
        if missing:
            raise DataFileError(f"{shown!r} line {number} has no {missing[0]!r}; every line needs the "
                                f"first line's keys ({', '.join(columns)})")
        rows.append(tuple(_cell(record[c]) for c in columns))
    return columns, tuple(rows)


def _cell(value) -> str:
    return value if isinstance(value, str) else JsonText(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
