"""What a result file is: its format number and the words it uses.

RESULT_FORMAT is written into every result (surge.run.merge) and checked on
load (surge.result.load); bump it when the file changes incompatibly.
ERROR_KINDS are the keys of `errors` in totals and steps, in the engine's
order; they come from surge.core._limits, a small compiled module of the
engine's constants that does not load the engine itself.
"""
from __future__ import annotations

from surge.core._limits import ERROR_KINDS

RESULT_FORMAT = 1           # bumped when the result file changes incompatibly

__all__ = ["ERROR_KINDS", "RESULT_FORMAT"]
