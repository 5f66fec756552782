"""A run from start to exit code: the workload run with its observers, then
what the result says (objectives, the baseline gate, the reports written).

    observers = Observers(LiveProgress(config, quiet), exporter, watch, AbortOnFail(workload.objectives))
    try:
        result, interrupted = run_observed(workload, observers)     # RunError: exit 1
    finally:
        observers.close()
    code = conclude(result, workload, Ending(...), echo)

The command line only parses options and prints; every decision here is a
function of its arguments, tested without a subprocess (tests/run/test_session.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from surge.plan.units import NS_PER_S
from surge.plan.workload import Workload
from surge.outcome import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, gate, worst_exit

Echo = Callable[[str, bool], None]      # (text, to_stderr)


class AbortOnFail:
    """The objectives marked abort_on_fail, evaluated each second once past
    their grace: the first that fails stops the run (exit 3)."""

    def __init__(self, objectives=()):
        self.objectives = [o for o in objectives if o.abort_on_fail]

    def reason(self, second: int, live_result: Callable[[], dict]) -> str | None:
        """Why to stop at `second`, or None.  `live_result` is called only when
        some objective is past its grace (it merges every worker's histograms)."""
        watched = [o for o in self.objectives if second * NS_PER_S >= o.grace_ns]
        if not watched:
            return None
        from surge.result.objectives import evaluate
        for outcome in evaluate(watched, live_result()):
            if not outcome["passed"]:
                return f"objective failed at {second}s: {outcome['name']}"
        return None


class Observers:
    """What watches a run while it goes: live progress, the Prometheus
    exporter, the --watch-pid sampler and the abort-on-fail rule."""

    def __init__(self, progress, exporter=None, watch=None, abort: AbortOnFail | None = None, journal=None):
        self.progress = progress
        self.exporter = exporter
        self.watch = watch
        self.abort = abort or AbortOnFail()
        self.journal = journal              # surge.run.journal.Journal beside --json FILE, or None

    def on_tick(self, k: int, record) -> str | None:
        """Each second: progress, metrics; returns a reason to stop (abort_on_fail)."""
        from surge.run.merge import live_point

        point = live_point(record, k)
        self.progress.update(k, point)
        if self.journal:
            self.journal.write(k, point, record)
        if self.exporter:
            self.exporter.update(point, record.totals(), record.step_counters()[0] if record.shows_steps else None)
        return self.abort.reason(k, record.live_result)

    def finish(self, result: dict) -> None:
        self.progress.finish(result)            # the seconds only the final reports carried
        if self.exporter:
            self.exporter.finish(result)

    def close(self) -> None:
        self.progress.close()
        if self.journal:
            self.journal.close()
        if self.exporter:
            self.exporter.stop(wait_for_scrape_s=2.0)


def run_observed(workload: Workload, observers: Observers, launch=None) -> tuple[dict, bool]:
    """Run the workload; (result dict, interrupted).  An interrupted run still
    returns what it measured; a run that cannot start raises RunError.
    `launch` (surge.run.start.Launch): --segment, --start-at, --barrier, --run-id."""
    from surge.run.supervisor import Interrupted, run_workload

    try:
        record = run_workload(workload, on_tick=observers.on_tick, watch=observers.watch, launch=launch)
        interrupted = False
    except Interrupted as exc:
        record, interrupted = exc.record, True
    result = redacted(record.to_result(), workload)
    observers.finish(result)
    return result, interrupted


def redacted(result: dict, workload: Workload) -> dict:
    """The result as every report shows it: the run's secret values as ***
    (surge.plan.redact), and whether that was done (`--no-redact`: false)."""
    from surge.plan import redact
    if workload.secrets is not None:
        result = workload.secrets.scrub_tree(result)
    result["redacted"] = redact.enabled()
    return result


@dataclass
class Ending:
    """How a finished run is judged and reported."""
    files: list = field(default_factory=list)       # surge.report.outputs.requested(...), already checked
    baseline: dict | None = None                    # --baseline, already loaded
    baseline_path: str | None = None
    max_regression: float = 0.05
    allow_inconclusive: bool = False
    interrupted: bool = False
    command: str = "surge run"
    # "segment 1/3": this run is one part of a run spread over instances (--segment).
    # Its objectives are evaluated and shown, but the verdict (exit 3) is the whole
    # run's, made by `surge merge` on the merged result: a part alone may miss a
    # `throughput >=` the parts reach together, or meet a p99 the whole misses.
    part_of: str | None = None
    journal: object = None          # surge.run.journal.Journal: removed once the result file is written

    @property
    def result_file(self):
        """The --json output to a file (not stdout), or None."""
        return next((f for f in self.files if f.option == "--json" and not f.to_stdout), None)

    @property
    def to_stderr(self) -> bool:
        """`--json -`: stdout carries the result file alone; the rest goes to stderr."""
        return any(f.to_stdout for f in self.files)


def conclude(result: dict, workload: Workload, ending: Ending, echo: Echo) -> int:
    """Judge and report a finished run; returns the exit code.

    The code is worst_exit() of all that happened (EXIT_PRECEDENCE in
    surge.outcome): 130 interrupted, then 1 (a worker died, a report not
    written, the summary failed), then 3 (objectives failed, stopped by
    abort_on_fail, a regression, a gate too short to test unless allowed),
    else 0.  Everything that can be written is, before the verdict lines."""
    from surge.report.outputs import write_all

    codes = [EXIT_INTERRUPTED if ending.interrupted else EXIT_OK]
    to_stderr = ending.to_stderr
    if workload.objectives:
        from surge.result.objectives import evaluate
        result["objectives"] = evaluate(workload.objectives, result)
    gate_text = None
    if ending.baseline is not None:        # before the reports, so they can show its verdict
        gate_code, gate_text = gate(ending.baseline, result, ending.max_regression, ending.baseline_path,
                                    "this run", allow_inconclusive=ending.allow_inconclusive)
        verdict = gate_text.strip().splitlines()[-1].strip()
        result["gate"] = {"verdict": verdict, "baseline": os.path.basename(ending.baseline_path),
                          "passed": gate_code == EXIT_OK}
        codes.append(gate_code)
    codes.append(print_summary(result, to_stderr, echo, ending.command))
    from surge.run.limits import exhaustion_lines
    for line in exhaustion_lines(result["totals"], result["config"]):
        echo(f"{ending.command}: {line}", True)
    if result["workers_failed"]:
        echo(f"{ending.command}: error: {died(result['workers_failed'], result['config']['workers'])}", True)
        codes.append(EXIT_RUNTIME)
    failures = write_all(result, ending.files, say=lambda text: echo(text, True))
    for failure in failures:
        echo(failure.line(ending.command), True)
        codes.append(failure.code)
    if ending.journal is not None:
        if any(f.option == "--json" for f in failures):
            echo(f"{ending.command}: what was measured is in {ending.journal.path} "
                 f"(surge report --recover {ending.journal.path} --json FILE)", True)
        else:
            ending.journal.discard()
    if result.get("aborted_by"):
        echo(f"{ending.command}: stopped early: {result['aborted_by']}", True)
        codes.append(EXIT_GATE)
    failed = [o["name"] for o in result.get("objectives", []) if not o["passed"]]
    if failed and ending.part_of:
        echo(f"{ending.command}: {ending.part_of}: not met by this part alone: {'; '.join(failed)} "
             f"(the run's verdict is made on the merged result: surge merge)", True)
    elif failed:
        echo(f"{ending.command}: {'objective' if len(failed) == 1 else 'objectives'} failed: {'; '.join(failed)}",
             True)
        codes.append(EXIT_GATE)
    if gate_text is not None:
        echo(gate_text, to_stderr)
    return worst_exit(*codes)


def died(failed: list[dict], workers: int) -> str:
    """'worker 1 (killed by SIGKILL) died during the run; the others' results are kept'."""
    names = ", ".join(f"worker {w['index']} ({w['cause']}"
                      + (f" at {w['at_s']:g}s" if isinstance(w.get("at_s"), (int, float)) else "") + ")"
                      for w in failed)
    if len(failed) < workers:
        kept = "the other's results are kept" if workers - len(failed) == 1 else "the others' results are kept"
    else:
        kept = "what it reported before is kept" if len(failed) == 1 else "what they reported before is kept"
    return f"{names} died during the run; {kept}"


def print_summary(result: dict, to_stderr: bool, echo: Echo, command: str = "surge run") -> int:
    """The terminal summary; a bug in it is reported in one line and must not
    keep the reports from being written (EXIT_RUNTIME then)."""
    from surge.report.summary import render_summary
    try:
        echo(render_summary(result), to_stderr)
    except Exception as exc:  # noqa: BLE001 - the reports after it still have to be written
        echo(f"{command}: error: the summary failed: internal error: {type(exc).__name__}: {exc} "
             "(please report it; the reports are still written)", True)
        return EXIT_RUNTIME
    return EXIT_OK
