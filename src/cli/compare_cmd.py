"""`surge compare BASELINE CURRENT`: the regression gate.

Exit 3 on a significant regression beyond the bound, and exit 3 too when the
comparison is inconclusive: no metric's samples could have shown a significant
change at all (runs too short for Holm over this many metrics). A gate that
cannot fire must not read as a pass in CI, where only the exit code is seen, so
"could not show the current run is no worse" fails the gate like a regression;
the last line says which (REGRESSION or INCONCLUSIVE), and the project keeps one
code for "a gate failed" (0/1/2/3/130 are its whole contract).
`--allow-inconclusive` makes an inconclusive gate exit 0 for smoke runs where
only the table is wanted."""
from __future__ import annotations

import re

import click

from surge.cli.main import EXIT_USAGE, SurgeExit
from surge.outcome import gate

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def parse_percent(text: str) -> float:
    """'5%' or '5' -> 0.05; ValueError with what is allowed."""
    m = _PERCENT.match(str(text))
    if not m:
        raise ValueError(f"got {text!r}, expected a percentage like 5% or 2.5%")
    value = float(m.group(1))
    if value > 1000:
        raise ValueError(f"got {text!r}, allowed: 0% to 1000%")
    return value / 100


def _max_regression(ctx, param, value):
    try:
        return parse_percent(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("baseline_path", metavar="BASELINE.json")
@click.argument("current_path", metavar="CURRENT.json")
@click.option("--max-regression", default="5%", show_default=True, callback=_max_regression,
              help="A significant change worse than this fails (exit 3).")
@click.option("--allow-inconclusive", is_flag=True,
              help="Exit 0, not 3, when the runs are too short for any change to be significant.")
@click.option("--junit", "junit_path", metavar="FILE",
              help="Write the gate as a JUnit XML test case here (for CI), the comparison in its output.")
def compare_command(baseline_path, current_path, max_regression, allow_inconclusive, junit_path):
    """Compare CURRENT.json against BASELINE.json, metric by metric."""
    from surge.result.load import ResultFileError, load_result

    if junit_path:
        from surge.report.outputs import Output, OutputPathError, check_paths
        try:
            check_paths([Output("--junit", junit_path)], {"BASELINE": baseline_path, "CURRENT": current_path})
        except OutputPathError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge compare: error: {exc}") from None
    try:
        baseline = load_result(baseline_path)
        current = load_result(current_path)
    except ResultFileError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge compare: error: {exc}") from None
    code, text = gate(baseline, current, max_regression, baseline_path, current_path,
                      allow_inconclusive=allow_inconclusive)
    click.echo(text)
    if junit_path:
        code = _write_junit(junit_path, baseline_path, current, code, text)
    return code


def _write_junit(path: str, baseline_path: str, current: dict, code: int, text: str) -> int:
    """The gate's JUnit file; exit 1 when it cannot be written."""
    import os

    from surge.outcome import EXIT_RUNTIME, EXIT_OK, worst_exit
    from surge.report.junit import write_gate_junit

    gate = {"verdict": text.strip().splitlines()[-1].strip(), "baseline": os.path.basename(baseline_path),
            "passed": code == EXIT_OK}
    try:
        write_gate_junit(path, current, gate, code, text)
    except OSError as exc:
        click.echo(f"surge compare: error: cannot write --junit {path}: {exc.strerror or exc}", err=True)
        return worst_exit(code, EXIT_RUNTIME)
    return code
