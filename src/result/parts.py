"""Reading the parts `surge merge` is given: result files (`surge run --json`)
or logs holding `SURGE-RESULT` lines (`surge run --emit-result`, collected
with `kubectl logs`, a CI job's output, ssh), any mix, `-` for standard input.

A log line may carry a prefix before the marker (`kubectl logs --prefix`,
`--timestamps`, a CI runner's time stamp): the line is read from the marker on.
Every part is checked as a result file is (surge.result.load.check_result), so
a cut or foreign line is one message naming the file and line.
"""
from __future__ import annotations

import json
import os
import sys

from surge.result.combine import CombineError, Part
from surge.result.emit import PREFIX, ResultLineError, decode_result_line
from surge.result.load import ResultFileError, check_result, load_result

STDIN = "-"


def _text_of(name: str) -> str:
    if name == STDIN:
        return sys.stdin.read()
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CombineError(2, f"{name}: no such file") from None
    except IsADirectoryError:
        raise CombineError(2, f"{name}: is a directory, expected a result file or a log") from None
    except OSError as exc:
        raise CombineError(2, f"{name}: cannot read: {exc.strerror or exc}") from None
    return raw.decode("utf-8", errors="replace")


def parts_of_log(text: str, name: str) -> list[Part]:
    """Every SURGE-RESULT line of a log, in order."""
    parts = []
    for number, line in enumerate(text.splitlines(), 1):
        at = line.find(PREFIX)
        if at < 0:
            continue
        where = f"{name}:{number}"
        try:
            data = decode_result_line(line[at:])
        except ResultLineError as exc:
            raise CombineError(2, f"{where}: {exc}") from None
        try:
            parts.append(Part(check_result(data, where), where))
        except ResultFileError as exc:
            raise CombineError(2, str(exc)) from None
    return parts


def read_parts(names: list[str]) -> list[Part]:
    """The parts in the files named (CombineError 2, one line, for one that is
    neither a result file nor a log with a SURGE-RESULT line)."""
    parts: list[Part] = []
    for name in names:
        display = "standard input" if name == STDIN else name
        if name != STDIN and not os.path.isdir(name):
            # A result file: JSON from its first byte on (load_result says what is wrong with it).
            text = _text_of(name)
            if text.lstrip().startswith("{") and PREFIX not in text:
                try:
                    parts.append(Part(load_result(name), name))
                except ResultFileError as exc:
                    raise CombineError(2, str(exc)) from None
                continue
        else:
            text = _text_of(name)
        found = parts_of_log(text, display)
        if not found:
            try:
                json.loads(text)
                what = "JSON without a result in it"
            except ValueError:
                what = "no SURGE-RESULT line in it"
            raise CombineError(2, f"{display}: {what}: expected a result file (surge run --json) or a log "
                                  "of surge run --emit-result")
        parts.extend(found)
    return parts
