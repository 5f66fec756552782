"""What a result file is: its format number and the words it uses.

RESULT_FORMAT is written into every result (surge.run.merge) and checked on
load (surge.result.load); bump it when the file changes incompatibly.
ERROR_KINDS are the keys of `errors` in totals and steps, in the engine's
order; they come from surge.core._limits, a small compiled module of the
engine's constants that does not load the engine itself. percentile_key
names a latency percentile ("99", "99.9") as the file keys it.
"""
from __future__ import annotations

from surge.core._limits import ERROR_KINDS

RESULT_FORMAT = 1           # bumped when the result file changes incompatibly


def percentile_key(percentile: float) -> str:
    """99.0 -> '99', 99.9 -> '99.9': the keys of a latency summary's "percentiles"."""
    return str(int(percentile)) if percentile == int(percentile) else str(percentile)


__all__ = ["ERROR_KINDS", "RESULT_FORMAT", "percentile_key"]
