"""`surge run URL`: a closed-model max-throughput test of one request."""
from __future__ import annotations

import json
import os
import sys

import click

from surge.cli.compare_cmd import _max_regression, gate
from surge.cli.main import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit
from surge.cli.report_cmd import write_reports
from surge.plan.load import SHAPES_HELP, LoadError, LoadProfile, parse_shape, parse_stages
from surge.plan.model import RunPlan
from surge.plan.request import PlanError, parse_auth, parse_header, parse_method, parse_target
from surge.plan.units import UnitError, parse_count, parse_duration_ns

MAX_PIPELINE = 1024


def _parsed(parse):
    """A click callback that runs a unit parser and names the option on error."""
    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return parse(value)
        except UnitError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return callback


_duration = _parsed(parse_duration_ns)
_count = _parsed(parse_count)


def _rate(ctx, param, value):
    """Requests per second: '20000', '20k', '0.5' (0 only as the start of --stages)."""
    if value is None:
        return None
    text = value.strip().lower().removesuffix("/s")
    scale = 1.0
    if text.endswith("k"):
        text, scale = text[:-1], 1_000.0
    elif text.endswith("m"):
        text, scale = text[:-1], 1_000_000.0
    try:
        rate = float(text) * scale
    except ValueError:
        raise click.BadParameter(f"got {value!r}, expected requests per second like 500, 20k or 0.5",
                                 ctx, param) from None
    if not rate >= 0 or rate == float("inf"):
        raise click.BadParameter(f"got {value!r}, must be > 0", ctx, param)
    return rate


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
@click.argument("url", metavar="URL|PLAN")
@click.option("-c", "--connections", default=50, show_default=True, callback=_positive(1_000_000),
              help="Keep-alive connections, spread evenly over the workers.")
@click.option("-d", "--duration", callback=_duration, help="Run time: 500ms, 10s, 2m, 1h (default 10s).")
@click.option("-n", "--requests", callback=_count, help="Send exactly this many requests (10k, 1M), then stop.")
@click.option("-w", "--workers", type=int, callback=_positive(1024),
              help="Worker processes (default: CPU count).")
@click.option("-m", "--method", default="GET", show_default=True)
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value', repeatable.")
@click.option("--body", help="Request body: TEXT, or @FILE to read it from a file.")
@click.option("--auth", metavar="USER:PASSWORD",
              help="HTTP Basic auth (as credentials in the URL do); conflicts with -H Authorization.")
@click.option("--timeout", default="5s", show_default=True, callback=_duration,
              help="A request (or connect) older than this fails with a timeout error.")
@click.option("--pipeline", default=1, show_default=True, callback=_positive(MAX_PIPELINE),
              help="Requests in flight per connection (HTTP/1.1 pipelining).")
@click.option("--pipeline-timing", type=click.Choice(["batch", "each"]), default="batch", show_default=True,
              help="With --pipeline: wake once per batch of responses, timing them all on its arrival "
                   "(fewer wake-ups), or time each response as it arrives.")
@click.option("--rate", callback=_rate,
              help="Open model: requests/s in total (20000, 20k); with --stages/--shape, the start rate.")
@click.option("--max-connections", type=int, callback=_positive(1_000_000),
              help="Open model: most connections opened on demand (default: 100 ms of latency at the peak rate).")
@click.option("--stages", help="DURATION:TARGET,... each ramps linearly from the previous target "
                               "(requests/s with --rate, connections without); implies the duration.")
@click.option("--shape", help=f"A named load shape: {SHAPES_HELP}.")
@click.option("--schedule-grid", callback=_duration,
              help="Open model: due requests go out in batches on this grid (default: ~32 per batch, at most 2ms; "
                   "smaller is smoother and costs more CPU).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the result file here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the time series as CSV here.")
@click.option("--hlog", "hlog_path", type=click.Path(dir_okay=False), help="Write an HdrHistogram interval log here.")
@click.option("--prometheus", "prometheus_address", metavar="[HOST:]PORT",
              help="Serve /metrics during the run (loopback unless HOST is given), e.g. 9464.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Compare with this result at the end; a significant regression exits 3.")
@click.option("--max-regression", default="5%", show_default=True, callback=_max_regression,
              help="With --baseline: the worst change allowed.")
@click.option("--watch-pid", type=int, help="Sample this process's CPU and memory each second (the target).")
@click.option("-q", "--quiet", is_flag=True, help="No live progress.")
def run_command(url, connections, duration, requests, workers, method, headers, body, auth, timeout, pipeline,
                pipeline_timing, rate, max_connections, stages, shape, schedule_grid, json_path, html_path,
                csv_path, hlog_path, prometheus_address, baseline_path, max_regression, watch_pid, quiet):
    """Load URL: with CONNECTIONS keep-alive connections as fast as it answers
    (closed model), or at a fixed or staged arrival RATE (open model)."""

    ctx = click.get_current_context()
    if looks_like_plan(url):
        plan = plan_from_file(ctx, url, workers, timeout, schedule_grid)
        return finish_run(plan, quiet, json_path, html_path, csv_path, hlog_path, prometheus_address,
                          baseline_path, max_regression, watch_pid)
    profile = load_profile(ctx, connections, duration, requests, rate, max_connections, stages, shape, pipeline)
    try:
        plan = RunPlan(
            target=parse_target(url, allow_credentials=True),
            method=parse_method(method),
            headers=tuple(parse_header(h) for h in headers),
            body=_body(body),
            auth=parse_auth(auth),
            connections=connections,
            workers=workers or os.cpu_count() or 1,
            duration_ns=None if requests else (duration or 10_000_000_000),
            requests=requests,
            timeout_ns=timeout,
            pipeline=pipeline,
            pipeline_timing=pipeline_timing,
            profile=profile,
            max_connections=max_connections,
            schedule_grid_ns=schedule_grid,
        )
    except PlanError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None

    return finish_run(plan, quiet, json_path, html_path, csv_path, hlog_path, prometheus_address,
                      baseline_path, max_regression, watch_pid)


PLAN_SUFFIXES = (".yaml", ".yml", ".toml")
# URL-run options a plan file says itself, and ones that have no meaning for it.
PLAN_FIXED_OPTIONS = ("connections", "duration", "requests", "method", "headers", "body", "auth", "rate",
                      "max_connections", "stages", "shape")
PLAN_INAPPLICABLE_OPTIONS = ("pipeline", "pipeline_timing")


def looks_like_plan(argument: str) -> bool:
    """`surge run plan.yaml`: a file argument instead of a URL."""
    return "://" not in argument and (argument.endswith(PLAN_SUFFIXES) or os.path.isfile(argument))


def plan_from_file(ctx, path: str, workers, timeout, schedule_grid_ns=None) -> RunPlan:
    """Load and validate a test plan (every problem at once, exit 2) into a RunPlan."""
    from surge.plan.validate import PlanValidationError, load_plan

    for name in PLAN_FIXED_OPTIONS + PLAN_INAPPLICABLE_OPTIONS:
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = next(o for o in ctx.command.params if o.name == name).opts[-1]
            if name in PLAN_INAPPLICABLE_OPTIONS:
                raise click.UsageError(f"{flag} does not apply to a test plan ({path!r}): each virtual user "
                                       f"sends one request at a time")
            raise click.UsageError(f"{flag} is set by the plan {path!r}: change it there")
    try:
        test_plan = load_plan(path)
    except PlanValidationError as exc:
        raise SurgeExit(EXIT_USAGE, "\n".join(exc.problems)) from None
    return RunPlan(target=test_plan.target, workers=workers or os.cpu_count() or 1, duration_ns=None,
                   timeout_ns=timeout, profile=test_plan.load, test_plan=test_plan,
                   max_connections=test_plan.max_vus, schedule_grid_ns=schedule_grid_ns)


def finish_run(plan: RunPlan, quiet, json_path, html_path, csv_path, hlog_path, prometheus_address,
               baseline_path, max_regression, watch_pid) -> int:
    """Run, then summary, result file, reports, objectives and the baseline gate."""
    from surge.report.summary import render_summary

    outputs = RunOutputs(plan, quiet, baseline_path, prometheus_address, watch_pid)
    try:
        result, code = execute(plan, outputs)
    finally:
        outputs.close()
    if plan.test_plan is not None and plan.test_plan.objectives:
        from surge.run.objectives import evaluate
        result["objectives"] = evaluate(plan.test_plan.objectives, result)
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
    write_reports(result, html_path=html_path, csv_path=csv_path, hlog_path=hlog_path)
    failed = [o["name"] for o in result.get("objectives", []) if not o["passed"]]
    if result.get("aborted_by"):
        click.echo(f"surge run: stopped early: {result['aborted_by']}", err=True)
        if code == EXIT_OK:
            code = EXIT_GATE
    if failed and code == EXIT_OK:
        click.echo(f"surge run: objectives failed: {'; '.join(failed)}", err=True)
        code = EXIT_GATE
    if outputs.baseline is not None:
        gate_code, text = gate(outputs.baseline, result, max_regression, baseline_path, "this run")
        click.echo(text)
        if code == EXIT_OK:
            code = gate_code
    return code


class RunOutputs:
    """What watches a run while it goes: live progress, the Prometheus exporter,
    the --watch-pid sampler; plus the baseline, read before any load is sent."""

    def __init__(self, plan: RunPlan, quiet: bool, baseline_path, prometheus_address, watch_pid):
        from surge.report.live import LiveProgress

        self.baseline = self.exporter = self.watch = None
        if baseline_path:
            from surge.report.load import ResultFileError, load_result
            try:
                self.baseline = load_result(baseline_path)
            except ResultFileError as exc:
                raise SurgeExit(EXIT_USAGE, f"surge run: error: --baseline: {exc}") from None
        if watch_pid is not None:
            from surge.run.resources import WatchedProcess, WatchError
            try:
                self.watch = WatchedProcess(watch_pid)
            except WatchError as exc:
                raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
        if prometheus_address:
            from surge.report.prometheus import AddressError, ExporterError, PrometheusExporter
            try:
                self.exporter = PrometheusExporter(prometheus_address, config=plan.describe()).start()
            except AddressError as exc:
                raise SurgeExit(EXIT_USAGE, f"surge run: error: --prometheus: {exc}") from None
            except ExporterError as exc:
                raise SurgeExit(EXIT_RUNTIME, f"surge run: error: --prometheus: {exc}") from None
        self.progress = LiveProgress(plan.describe(), quiet, sys.stderr)
        self.abort_objectives = [o for o in (plan.test_plan.objectives if plan.test_plan is not None else ())
                                 if o.abort_on_fail]

    def on_tick(self, k: int, record) -> str | None:
        """Each second: progress, metrics; returns a reason to stop when an
        objective with abort_on_fail fails after its grace period."""
        from surge.run.merge import live_point

        point = live_point(record, k)
        self.progress.update(k, point)
        if self.exporter:
            self.exporter.update(point, record.totals(), record.step_counters()[0])
        watched = [o for o in self.abort_objectives if k * 1_000_000_000 >= o.grace_ns]
        if watched:
            from surge.run.objectives import evaluate
            for outcome in evaluate(watched, record.live_result()):
                if not outcome["passed"]:
                    return f"objective failed at {k}s: {outcome['name']}"
        return None

    def finish(self, result: dict) -> None:
        self.progress.finish(result)            # the seconds only the final reports carried
        if self.exporter:
            self.exporter.finish(result)

    def close(self) -> None:
        self.progress.close()
        if self.exporter:
            self.exporter.stop(wait_for_scrape_s=2.0)


def load_profile(ctx, connections, duration, requests, rate, max_connections, stages, shape, pipeline):
    """The load profile the flags describe (None: a plain closed run); usage errors name the flag."""
    def explicit(name):
        return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE

    if duration is not None and requests is not None:
        raise click.UsageError("-d/--duration and -n/--requests exclude each other: give one")
    if stages and shape:
        raise click.UsageError("--stages and --shape exclude each other: give one")
    staged = stages or shape
    if staged and duration is not None:
        raise click.UsageError(f"{'--stages' if stages else '--shape'} sets the run's length: drop -d/--duration")
    if staged and requests is not None:
        raise click.UsageError(f"{'--stages' if stages else '--shape'} and -n/--requests exclude each other")
    if rate is not None:
        if requests is not None:
            raise click.UsageError("--rate and -n/--requests exclude each other: an open-model run is bounded "
                                   "by time (-d or --stages)")
        if rate == 0 and not staged:
            raise click.UsageError("Invalid value for '--rate': got 0, must be > 0 (0 is allowed only as the "
                                   "start of --stages)")
        if pipeline > 1:
            raise click.UsageError("--pipeline applies to the closed model only; with --rate each connection "
                                   "carries one request at a time")
        if explicit("connections"):
            raise click.UsageError("-c/--connections applies to the closed model; with --rate use --max-connections")
    elif max_connections is not None:
        raise click.UsageError("--max-connections applies to the open model: add --rate")
    if ctx.params.get("schedule_grid") is not None and rate is None:
        raise click.UsageError("--schedule-grid applies to the open model: add --rate")
    # A ramp (--stages, --shape ramp) starts from --rate, or in the closed model from an explicit -c.
    ramp_start = rate if rate is not None else (connections if explicit("connections") else 0)
    try:
        if shape:
            start, stage_list = parse_shape(shape, ramp_start)
            given = rate if rate is not None else (connections if explicit("connections") else None)
            if given not in (None, 0, start):       # spike/step name their own start
                fix = f"give --rate 0 or --rate {start:g}" if rate is not None else f"drop -c or give -c {start:g}"
                raise LoadError(f"--shape {shape.partition(':')[0]} starts at {start:g} (its own first value), "
                                f"not at {given:g}: {fix}")
        elif stages:
            stage_list = parse_stages(stages)
            start = ramp_start
        else:
            stage_list, start = (), rate
    except LoadError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    model = "open" if rate is not None else "closed"
    if model == "closed" and not staged:
        return None
    if model == "open" and max(start, *(s.target for s in stage_list), 0) <= 0:
        raise SurgeExit(EXIT_USAGE, "surge run: error: --stages: every target is 0: nothing would be sent")
    constant_ns = None if staged else (duration or 10_000_000_000)
    return LoadProfile(model, float(start), stage_list, constant_ns)


def execute(plan: RunPlan, outputs: RunOutputs) -> tuple[dict, int]:
    """Run the plan; returns (result dict, exit code).  An interrupted run still
    returns what it measured."""
    from surge.run.supervisor import Interrupted, RunError, run_plan

    try:
        record = run_plan(plan, on_tick=outputs.on_tick, watch=outputs.watch)
        code = EXIT_OK
    except RunError as exc:
        raise SurgeExit(EXIT_RUNTIME, f"surge run: error: {exc}") from None
    except Interrupted as exc:
        record = exc.record
        code = EXIT_INTERRUPTED
    result = record.to_result()
    outputs.finish(result)
    return result, code
