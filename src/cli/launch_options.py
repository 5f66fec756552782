"""`surge run`'s options for one instance of a run spread over many
(--segment, --start-at, --barrier, --barrier-timeout, --run-id, --emit-result):
the click options, and the surge.run.start.Launch they make."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_USAGE, SurgeExit
from surge.plan.units import UnitError, parse_duration_ns

DEFAULT_BARRIER_TIMEOUT = "5m"


def _via(parse):
    def callback(ctx, param, value):
        if value is None or value == "":
            return None
        try:
            return parse(value)
        except ValueError as exc:           # SegmentError, LaunchOptionError, UnitError
            raise click.BadParameter(str(exc), ctx, param) from None
    return callback


def _segment(value):
    from surge.run.segment import parse_segment
    return parse_segment(value)


def _start_at(value):
    from surge.run.start import parse_start_at
    return parse_start_at(value)


def _barrier(value):
    from surge.run.start import parse_barrier
    return parse_barrier(value)


def _run_id(value):
    from surge.run.start import parse_run_id
    return parse_run_id(value)


def _duration(value):
    try:
        return parse_duration_ns(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


OPTIONS = (
    click.option("--segment", callback=_via(_segment), metavar="I/N", envvar="SURGE_SEGMENT", show_envvar=True,
                 help="Run only segment I of N (0 <= I < N) of a test that N instances run together: its stripe "
                      "of the open-model schedule, its share of connections, -n, stages and unique data rows."),
    click.option("--start-at", callback=_via(_start_at), metavar="TIME",
                 help="Connect, then start on this wall-clock instant: RFC 3339 (2026-12-02T14:30:00Z) or Unix "
                      "seconds; more than 1 s past fails (exit 1)."),
    click.option("--barrier", callback=_via(_barrier), metavar="HOST:PORT", envvar="SURGE_BARRIER",
                 show_envvar=True,
                 help="With --segment: segment 0 listens on PORT, the others connect to HOST:PORT; once all N "
                      "are connected and ready, segment 0 announces a start instant a moment ahead."),
    click.option("--barrier-timeout", callback=_via(_duration), metavar="DURATION",
                 help=f"With --barrier: fail when a segment has not arrived by then (default {DEFAULT_BARRIER_TIMEOUT})."),
    click.option("--run-id", callback=_via(_run_id), metavar="ID", envvar="SURGE_RUN_ID", show_envvar=True,
                 help="Name the run the parts belong to (the result's run.id; default: derived from the start "
                      "instant and the plan)."),
    click.option("--emit-result", is_flag=True,
                 help="At the end, print the result on stdout as one line: SURGE-RESULT <base64 of gzipped JSON> "
                      "(collect it with `kubectl logs`)."),
)


def launch_options(command):
    """Decorate `surge run` with the options above."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def build_launch(ctx, segment, start_at, barrier, barrier_timeout, run_id, emit_result, json_to_stdout: bool,
                 quiet: bool, say, baseline_path=None):
    """The Launch the options ask for; clashes are one line each (exit 2)."""
    from surge.run.segment import WHOLE
    from surge.run.start import Launch

    def origin(name, flag, env):
        source = ctx.get_parameter_source(name)
        return env if source == click.core.ParameterSource.ENVIRONMENT else flag

    problems = []
    if start_at is not None and barrier is not None:
        problems.append(f"--start-at and {origin('barrier', '--barrier', 'SURGE_BARRIER')} exclude each other: "
                        f"give one (a barrier chooses its own start instant)")
    if barrier is not None and segment is None:
        problems.append(f"{origin('barrier', '--barrier', 'SURGE_BARRIER')} needs --segment I/N "
                        f"(segment 0 listens, the others connect)")
    if barrier_timeout is not None and barrier is None:
        problems.append("--barrier-timeout applies with --barrier only")
    if baseline_path and segment is not None and not segment.whole:
        problems.append("--baseline with --segment: a part is not the whole run; gate the merged result "
                        "(surge merge PARTS --baseline FILE)")
    if emit_result and json_to_stdout:
        problems.append("--emit-result and --json - exclude each other: both write the result on stdout")
    if problems:
        raise SurgeExit(EXIT_USAGE, "\n".join(f"surge run: error: {p}" for p in problems))
    timeout_ns = barrier_timeout if barrier_timeout is not None else parse_duration_ns(DEFAULT_BARRIER_TIMEOUT)
    return Launch(segment=segment or WHOLE, start_at_unix_ns=start_at, barrier=barrier,
                  barrier_timeout_s=timeout_ns / 1e9, run_id=run_id, say=None if quiet else say)


def share_check(launch, workload) -> None:
    """Every segment needs at least one user (and with -n one request): exit 2 if not."""
    from surge.plan.workload import UrlSource
    from surge.run.segment import share_problems

    load = workload.load
    if not isinstance(workload.source, UrlSource):
        flag = "load.vus" if load.model == "closed" else "load.max_vus"
    else:
        flag = "--max-connections" if load.model == "open" else "-c"
    problems = share_problems(launch.segment, load.users, load.requests, flag)
    if problems:
        raise SurgeExit(EXIT_USAGE, "\n".join(f"surge run: error: {p}" for p in problems))


def emit(result: dict) -> None:
    """--emit-result: the one stdout line, flushed."""
    from surge.result.emit import encode_result_line
    click.echo(encode_result_line(result))
