"""Exit codes, and the one code of a run that ended in several ways (shared by
the commands and surge.run.session; loads nothing, so `surge report` and
`surge compare` stay without the engine and run).

0 ok, 1 runtime error, 2 usage or plan error, 3 objectives or regression gate
failed, 130 interrupted (the README's contract).  No click here: the run's
policy is tested without a command line.
"""
from __future__ import annotations

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# When a run ends in several ways at once, its exit code is the first of these
# that happened. An interrupted run is partial, so its verdicts are not the
# answer; a runtime failure (a worker died, a report was not written) means
# the numbers or the files are incomplete, which a CI job must see as broken
# rather than as "regressed"; then a usage error found at the end (a result
# without histograms for --hlog); then the gates: failed (objectives,
# abort_on_fail, a regression, an inconclusive regression gate).
EXIT_PRECEDENCE = (EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE, EXIT_GATE, EXIT_OK)


def worst_exit(*codes: int) -> int:
    """The exit code of several outcomes, by EXIT_PRECEDENCE (an unknown code ranks
    just after EXIT_RUNTIME); EXIT_OK when there are none."""
    def rank(code: int) -> float:
        return EXIT_PRECEDENCE.index(code) if code in EXIT_PRECEDENCE else 1.5
    return min(codes, key=rank, default=EXIT_OK)


def gate(baseline: dict, current: dict, max_regression: float, baseline_name="baseline",
         current_name="current", allow_inconclusive: bool = False) -> tuple[int, str]:
    """(exit code, text) of a comparison: EXIT_GATE on a significant regression beyond
    the bound, and EXIT_GATE too when nothing could be significant (unless allowed)."""
    from surge.report.compare import compare

    comparison = compare(baseline, current, max_regression, baseline_name=baseline_name,
                         current_name=current_name)
    if comparison.regressions:
        code = EXIT_GATE
    elif comparison.inconclusive and not allow_inconclusive:
        code = EXIT_GATE
    else:
        code = EXIT_OK
    return code, comparison.render()
