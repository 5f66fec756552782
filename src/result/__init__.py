"""surge.result: the result file, on its own.

`surge run` produces a result (surge.run.merge builds it), every report
consumes one (surge.report), and `surge report` / `surge compare` read one
back from a file. This package is what they share, and nothing more:

- format.py      RESULT_FORMAT, ERROR_KINDS (from surge.core._limits), percentile_key
- schema.py      the keys and types every report reads, as data, with JSON paths in its messages
- load.py        load_result / check_result: a file or dict to a checked result, or one-line ResultFileError
- failed.py      failed requests, attempts and the error rate of any part of a result (one rule)
- objectives.py  objectives evaluated on a result dict (live for abort_on_fail, and at the end)

It imports only surge.core._limits and surge.core._histogram (two small
compiled modules), never surge.core._engine or surge.run: reading or
re-reporting a result file does not load the engine.
"""
from surge.result.format import ERROR_KINDS, RESULT_FORMAT

_FROM_LOAD = ("ResultFileError", "check_result", "load_result")


def __getattr__(name: str):
    """load.py (and the schema it checks with) on first use: a run imports this
    package for its format constants and never reads a result file back."""
    if name in _FROM_LOAD:
        from surge.result import load
        return getattr(load, name)
    raise AttributeError(f"module 'surge.result' has no attribute {name!r}")


__all__ = ["ERROR_KINDS", "RESULT_FORMAT", "ResultFileError", "check_result", "load_result"]
