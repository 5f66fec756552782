"""`surge run URL`: a closed-model max-throughput test of one request."""
from __future__ import annotations

import json
import os
import sys

import click

from surge.cli.main import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit
from surge.plan.model import RunPlan
from surge.plan.request import PlanError, parse_header, parse_method, parse_target
from surge.plan.units import UnitError, parse_count, parse_duration_ns

MAX_PIPELINE = 1024


def _duration(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_duration_ns(value)
    except UnitError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _count(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_count(value)
    except UnitError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _positive(limit=None):
    def check(ctx, param, value):
        if value is None:
            return None
        if value < 1 or (limit and value > limit):
            allowed = f"1..{limit}" if limit else ">= 1"
            raise click.BadParameter(f"got {value}, allowed: {allowed}", ctx, param)
        return value
    return check


def _body(value: str | None) -> bytes:
    if value is None:
        return b""
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise PlanError(f"--body: cannot read {path!r}: {exc.strerror}") from None
    return value.encode("utf-8")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url")
@click.option("-c", "--connections", default=50, show_default=True, callback=_positive(1_000_000),
              help="Keep-alive connections, spread evenly over the workers.")
@click.option("-d", "--duration", callback=_duration, help="Run time: 500ms, 10s, 2m, 1h (default 10s).")
@click.option("-n", "--requests", callback=_count, help="Send exactly this many requests (10k, 1M), then stop.")
@click.option("-w", "--workers", type=int, callback=_positive(1024),
              help="Worker processes (default: CPU count).")
@click.option("-m", "--method", default="GET", show_default=True)
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value', repeatable.")
@click.option("--body", help="Request body: TEXT, or @FILE to read it from a file.")
@click.option("--timeout", default="5s", show_default=True, callback=_duration,
              help="A request (or connect) older than this fails with a timeout error.")
@click.option("--pipeline", default=1, show_default=True, callback=_positive(MAX_PIPELINE),
              help="Requests in flight per connection (HTTP/1.1 pipelining).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the result file here.")
@click.option("-q", "--quiet", is_flag=True, help="No per-second progress lines.")
def run_command(url, connections, duration, requests, workers, method, headers, body, timeout, pipeline,
                json_path, quiet):
    """Load URL with CONNECTIONS keep-alive connections as fast as it answers."""
    from surge.report.summary import render_summary

    if duration is not None and requests is not None:
        raise click.UsageError("-d/--duration and -n/--requests exclude each other: give one")
    try:
        plan = RunPlan(
            target=parse_target(url),
            method=parse_method(method),
            headers=tuple(parse_header(h) for h in headers),
            body=_body(body),
            connections=connections,
            workers=workers or os.cpu_count() or 1,
            duration_ns=None if requests else (duration or 10_000_000_000),
            requests=requests,
            timeout_ns=timeout,
            pipeline=pipeline,
        )
    except PlanError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    if plan.workers > plan.connections:
        plan = RunPlan(**{**plan.__dict__, "workers": plan.connections})

    result, code = execute(plan, quiet)
    click.echo(render_summary(result))
    if result["workers_failed"] and code == EXIT_OK:
        failed = ", ".join(f"worker {w['index']} ({w['cause']})" for w in result["workers_failed"])
        click.echo(f"surge run: error: {failed} died during the run; the others' results are kept", err=True)
        code = EXIT_RUNTIME
    if json_path:
        try:
            with open(json_path, "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
        except OSError as exc:
            raise SurgeExit(EXIT_RUNTIME, f"surge run: cannot write --json {json_path!r}: {exc.strerror}") from None
    return code


def execute(plan: RunPlan, quiet: bool) -> tuple[dict, int]:
    """Run the plan; returns (result dict, exit code).  An interrupted run still
    returns what it measured."""
    from surge.report.summary import render_progress_line
    from surge.run.merge import live_point
    from surge.run.supervisor import Interrupted, RunError, run_plan

    def progress(k, record):
        click.echo(render_progress_line(k, live_point(record, k)), err=True)

    try:
        record = run_plan(plan, on_tick=None if quiet else progress)
        code = EXIT_OK
    except RunError as exc:
        raise SurgeExit(EXIT_RUNTIME, f"surge run: error: {exc}") from None
    except Interrupted as exc:
        record = exc.record
        code = EXIT_INTERRUPTED
    return record.to_result(), code
