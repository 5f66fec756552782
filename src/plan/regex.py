"""Regular expressions as the engine runs them: POSIX extended (libc regcomp).

Plans are written in Python's syntax; the common classes are translated, and
what POSIX cannot express (lookarounds, lazy quantifiers, named groups) is a
plan error at validation time rather than a failure at run time.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import re

# Python `re` spellings that POSIX extended expressions write differently.
_POSIX_CLASSES = {r"\d": "[0-9]", r"\D": "[^0-9]", r"\s": "[[:space:]]", r"\S": "[^[:space:]]"}
_LAZY = re.compile(r"(?<!\\)[*+?}]\?")
REG_EXTENDED = 1                     # glibc's value
_REGEX_T_BYTES = 512                 # larger than glibc's regex_t (64 bytes)


def posix_regex(pattern: str) -> bytes:
    """A Python-syntax pattern as POSIX ERE for the engine (\\d, \\s, non-capturing groups)."""
    out = re.sub(r"\\[dDsS]", lambda m: _POSIX_CLASSES[m.group(0)], pattern)
    out = out.replace("(?:", "(")
    return out.encode("utf-8")


def posix_problem(pattern: str) -> str | None:
    """Why the engine cannot run this pattern, or None when it can."""
    translated = posix_regex(pattern)
    if b"(?" in translated:
        return "uses (?...) groups (lookarounds, named or flag groups), which POSIX regular expressions lack"
    if _LAZY.search(pattern):
        return "uses a lazy quantifier (*?, +?, ??), which POSIX regular expressions lack"
    libc = _libc()
    if libc is None:
        return None
    compiled = ctypes.create_string_buffer(_REGEX_T_BYTES)
    if libc.regcomp(compiled, translated, REG_EXTENDED) != 0:
        return "does not compile as a POSIX extended regular expression"
    libc.regfree(compiled)
    return None


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        _LIBC = ctypes.CDLL(name) if name else False
    return _LIBC or None
