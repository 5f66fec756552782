"""The result as one line of text: `SURGE-RESULT <base64 of gzipped JSON>`.

`surge run --emit-result` prints it on stdout at the end, so a launcher whose
only channel is the instance's log (`kubectl logs`, a CI job's output) can
collect the result without a volume; `surge merge` reads log files holding
such lines.  The JSON is the result file's, compact.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib

PREFIX = "SURGE-RESULT "


class ResultLineError(ValueError):
    """A SURGE-RESULT line that does not decode (the message says why)."""


def encode_result_line(result: dict) -> str:
    """The line, without its newline.  mtime=0: the same result gives the same line."""
    packed = gzip.compress(json.dumps(result, separators=(",", ":")).encode(), compresslevel=6, mtime=0)
    return PREFIX + base64.b64encode(packed).decode("ascii")


def is_result_line(line: str) -> bool:
    return line.startswith(PREFIX)


def decode_result_line(line: str) -> dict:
    """The result dict of one line (trailing whitespace allowed)."""
    if not is_result_line(line):
        raise ResultLineError(f"not a result line (expected it to start with {PREFIX.strip()!r})")
    text = line[len(PREFIX):].strip()
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ResultLineError("the line's base64 does not decode (was the log line cut or joined?)") from None
    try:
        unpacked = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error):
        raise ResultLineError("the line is cut short or not gzip (was the log line truncated?)") from None
    try:
        result = json.loads(unpacked)
    except ValueError:
        raise ResultLineError("the line's gzip holds no JSON") from None
    if not isinstance(result, dict):
        raise ResultLineError("the line holds JSON that is not a result object")
    return result
