"""`surge merge PART...`: the parts of a distributed run (`surge run --segment
I/N`, result files or logs with SURGE-RESULT lines) merged exactly into one
result (surge.result.combine), then judged and reported as a run is: the
plan's objectives on the whole (exit 3 when one fails), the --baseline gate,
the summary with a per-instance table, the files asked for.

Exit codes: 2 parts of different runs or not readable (or an objective this surge cannot
parse, which left out would pass unjudged); 1 a segment missing or
given twice (unless --allow-partial), a part interrupted or with a dead worker
(its numbers are incomplete); 3 an objective or the gate failed; else 0.
"""
from __future__ import annotations

import click

from surge.cli.compare_cmd import _max_regression
from surge.cli.main import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit, worst_exit


def merge_options(command):
    """The options `surge merge` and `surge k8s collect` share (outputs, gate, partial)."""
    for option in reversed((
        click.option("--json", "json_path", metavar="FILE",
                     help="Write the merged result file here (- for standard output; the summary then goes to "
                          "stderr)."),
        click.option("--html", "html_path", metavar="FILE", help="Write the HTML report of the whole run here."),
        click.option("--csv", "csv_path", metavar="FILE", help="Write the merged time series as CSV here."),
        click.option("--hlog", "hlog_path", metavar="FILE", help="Write an HdrHistogram interval log here."),
        click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
                     help="Compare the whole run with this result; a significant regression exits 3."),
        click.option("--max-regression", default="5%", show_default=True, callback=_max_regression,
                     help="With --baseline: the worst change allowed."),
        click.option("--allow-inconclusive", is_flag=True,
                     help="With --baseline: exit 0, not 3, when the runs are too short for any change to be "
                          "significant."),
        click.option("--junit", "junit_path", metavar="FILE",
                     help="Write each objective and the gate as a JUnit XML test case here."),
        click.option("--summary-json", "summary_path", metavar="FILE",
                     help="Write a small JSON verdict here: passed, exit code, objectives, gate, headline numbers."),
        click.option("--allow-partial", is_flag=True,
                     help="Merge even when segments are missing (the result lists them) or given twice (the "
                          "first copy is kept)."),
    )):
        command = option(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("parts", metavar="PART...", nargs=-1, required=True)
@merge_options
def merge_command(parts, **options):
    """Merge the parts of one distributed run into one result, exactly (histograms
    added, counters summed, seconds on the common clock), and judge it: the plan's
    objectives on the whole, --baseline.  A PART is a result file (surge run --json)
    or a log holding SURGE-RESULT lines (surge run --emit-result); - reads standard input."""
    from surge.result.parts import read_parts
    return merge_and_judge("surge merge", lambda: read_parts(list(parts)), list(parts), **options)


def merge_and_judge(command: str, read, inputs: list[str], json_path, html_path, csv_path, hlog_path,
                    baseline_path, max_regression, allow_inconclusive, junit_path, summary_path,
                    allow_partial) -> int:
    """Read the parts (`read()`), merge, judge, report; the exit code."""
    from types import SimpleNamespace

    from surge.report.outputs import OutputPathError, check_paths, requested
    from surge.report.verdict import VerdictFiles
    from surge.result.combine import CombineError, combine, select
    from surge.run.session import Ending, conclude

    files = requested(json_path, html_path, csv_path, hlog_path)
    verdict_files = VerdictFiles(junit_path, summary_path)
    named_inputs = {f"PART {name}": name for name in inputs if name != "-"}
    if baseline_path:
        named_inputs["--baseline"] = baseline_path
    try:
        check_paths(files + verdict_files.outputs(), inputs=named_inputs)
    except OutputPathError as exc:
        raise SurgeExit(EXIT_USAGE, f"{command}: error: {exc}") from None
    baseline = _baseline(command, baseline_path)
    try:
        selection = select(read(), allow_partial)
        merged = combine(selection)
    except CombineError as exc:
        raise SurgeExit(exc.code, f"{command}: error: {exc}") from None
    objectives = _objectives(command, selection.parts)
    ending = Ending(files=files, baseline=baseline, baseline_path=baseline_path, max_regression=max_regression,
                    allow_inconclusive=allow_inconclusive, command=command)
    echo = lambda text, err: click.echo(text, err=err)  # noqa: E731
    codes = [conclude(merged, SimpleNamespace(objectives=objectives), ending, echo)]
    for line, code in _part_problems(merged, selection):
        echo(f"{command}: {line}", True)
        codes.append(code)
    code = worst_exit(*codes)
    return verdict_files.write(merged, code, objectives, command, echo)


def _baseline(command: str, path: str | None):
    if not path:
        return None
    from surge.result.load import ResultFileError, load_result
    try:
        return load_result(path)
    except ResultFileError as exc:
        raise SurgeExit(EXIT_USAGE, f"{command}: error: --baseline: {exc}") from None


def _objectives(command: str, parts) -> list:
    """The plan's objectives, as every part wrote them (each part judged only its
    own share; the names are the plan's text, parsed again to judge the whole)."""
    from surge.plan.objective import ObjectiveError, parse_objective

    seen: dict[str, object] = {}
    for part in parts:
        for outcome in part.result.get("objectives") or ():
            name = outcome.get("name")
            if name in seen:
                continue
            try:
                seen[name] = parse_objective(name, bool(outcome.get("abort_on_fail")))
            except ObjectiveError as exc:
                # Left out, the whole would pass an objective nobody judged (a CI gate gone silent).
                raise SurgeExit(EXIT_USAGE, f"{command}: error: {part.source}: objective {name!r} cannot be "
                                            f"judged by this surge ({exc}); merge with the surge that ran "
                                            "the parts") from None
    return list(seen.values())


def _part_problems(merged: dict, selection) -> list[tuple[str, int]]:
    """What makes the whole incomplete, one line each, with its exit code."""
    problems = []
    count = selection.count
    if selection.missing:
        missing = ", ".join(str(i) for i in selection.missing)
        problems.append((f"warning: partial result: segment{'s' if len(selection.missing) > 1 else ''} {missing} "
                         f"of {count} missing (--allow-partial)", EXIT_OK))
    for dropped in selection.duplicates:
        problems.append((f"warning: left out {dropped} (--allow-partial keeps the first)", EXIT_OK))
    for row in merged["merge"]["parts"]:
        if row["interrupted"]:
            problems.append((f"error: segment {row['segment']} ({row['source']}) was interrupted: "
                             "the merged numbers are incomplete", EXIT_RUNTIME))
    return problems
