"""`surge run URL`: a closed-model max-throughput test of one request."""
from __future__ import annotations

import os
import sys

import click

from surge.cli.compare_cmd import _max_regression, gate
from surge.cli.main import (EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit,
                            worst_exit)
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
@click.option("--json", "json_path", metavar="FILE",
              help="Write the result file here (- for standard output; the summary then goes to stderr).")
@click.option("--html", "html_path", metavar="FILE", help="Write the HTML report here.")
@click.option("--csv", "csv_path", metavar="FILE",
              help="Write the time series as CSV here (and <stem>.steps.csv when the run has steps or stages).")
@click.option("--hlog", "hlog_path", metavar="FILE", help="Write an HdrHistogram interval log here.")
@click.option("--prometheus", "prometheus_address", metavar="[HOST:]PORT",
              help="Serve /metrics during the run (loopback unless HOST is given), e.g. 9464.")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False),
              help="Compare with this result at the end; a significant regression exits 3.")
@click.option("--max-regression", default="5%", show_default=True, callback=_max_regression,
              help="With --baseline: the worst change allowed.")
@click.option("--allow-inconclusive", is_flag=True,
              help="With --baseline: exit 0, not 3, when the runs are too short for any change to be significant.")
@click.option("--watch-pid", type=int, help="Sample this process's CPU and memory each second (the target).")
@click.option("-q", "--quiet", is_flag=True, help="No live progress.")
def run_command(url, connections, duration, requests, workers, method, headers, body, auth, timeout, pipeline,
                pipeline_timing, rate, max_connections, stages, shape, schedule_grid, json_path, html_path,
                csv_path, hlog_path, prometheus_address, baseline_path, max_regression, allow_inconclusive, watch_pid,
                quiet):
    """Load URL: with CONNECTIONS keep-alive connections as fast as it answers
    (closed model), or at a fixed or staged arrival RATE (open model)."""

    ctx = click.get_current_context()
    if looks_like_plan(url):
        plan = plan_from_file(ctx, url, workers, timeout, schedule_grid)
        return finish_run(plan, quiet, json_path, html_path, csv_path, hlog_path, prometheus_address,
                          baseline_path, (max_regression, allow_inconclusive), watch_pid)
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
                      baseline_path, (max_regression, allow_inconclusive), watch_pid)


PLAN_SUFFIXES = (".yaml", ".yml", ".toml")
# URL-run options a plan says in its own way (what it has instead), and ones
# that have no meaning for it.
PLAN_INSTEAD = {
    "connections": "it sets its virtual users in load: vus (closed model) or load: max_vus (open model)",
    "duration": "its length is load: duration, or the sum of its load: stages",
    "requests": "it runs for a time (load: duration or load: stages), not a number of requests",
    "method": "each step names its method (request: METHOD /path)",
    "headers": "it sets headers per step (a step's headers:), not for the whole run",
    "body": "each step sends its own body (a step's body: or json:)",
    "auth": "set Authorization in the headers: of the steps that need it",
    "rate": "its open model sets iterations started per second in load: rate (or load: stages)",
    "max_connections": "its open model sets the most virtual users in load: max_vus",
    "stages": "it sets them in load: stages",
    "shape": "it has no named shapes: write the shape as load: stages",
}
PLAN_FIXED_OPTIONS = tuple(PLAN_INSTEAD)
PLAN_INAPPLICABLE_OPTIONS = ("pipeline", "pipeline_timing")


def looks_like_plan(argument: str) -> bool:
    """`surge run plan.yaml`: a file argument instead of a URL."""
    return "://" not in argument and (argument.endswith(PLAN_SUFFIXES) or os.path.isfile(argument))


def plan_from_file(ctx, path: str, workers, timeout, schedule_grid_ns=None) -> RunPlan:
    """Load and validate a test plan (every problem at once, exit 2) into a RunPlan."""
    from surge.plan.validate import PlanValidationError, load_plan

    for name in PLAN_FIXED_OPTIONS + PLAN_INAPPLICABLE_OPTIONS:
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = "/".join(next(o for o in ctx.command.params if o.name == name).opts)
            instead = PLAN_INSTEAD.get(name, "each virtual user sends one request at a time")
            raise click.UsageError(f"{flag} does not apply to a test plan ({path}): {instead}")
    try:
        test_plan = load_plan(path)
    except PlanValidationError as exc:
        raise SurgeExit(EXIT_USAGE, "\n".join(exc.problems)) from None
    return RunPlan(target=test_plan.target, workers=workers or os.cpu_count() or 1, duration_ns=None,
                   timeout_ns=timeout, profile=test_plan.load, test_plan=test_plan,
                   max_connections=test_plan.max_vus, schedule_grid_ns=schedule_grid_ns)


def finish_run(plan: RunPlan, quiet, json_path, html_path, csv_path, hlog_path, prometheus_address,
               baseline_path, gate_rule, watch_pid) -> int:
    """Check every output path, run, then the summary, every report that can be
    written, objectives and the baseline gate.

    The exit code is worst_exit() of all that happened (EXIT_PRECEDENCE in
    surge.cli.main): 130 interrupted, then 1 (a worker died, a report not
    written), then 3 (objectives failed, stopped by abort_on_fail, a
    regression, a gate too short to test unless allowed), else 0.  `gate_rule` is
    (max_regression, allow_inconclusive) for --baseline."""
    from surge.report.outputs import OutputPathError, check_paths, requested, write_all

    files = requested(json_path, html_path, csv_path, hlog_path)
    try:
        check_paths(files)                  # before any load is sent
    except OutputPathError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    # `--json -`: stdout carries the result file alone; what else went there goes to stderr.
    to_stderr = any(f.to_stdout for f in files)
    outputs = RunOutputs(plan, quiet, baseline_path, prometheus_address, watch_pid)
    try:
        result, run_code = execute(plan, outputs)
    finally:
        outputs.close()
    codes = [run_code]
    if plan.test_plan is not None and plan.test_plan.objectives:
        from surge.result.objectives import evaluate
        result["objectives"] = evaluate(plan.test_plan.objectives, result)
    gate_text = None
    if outputs.baseline is not None:        # before the reports, so they can show its verdict
        max_regression, allow_inconclusive = gate_rule
        gate_code, gate_text = gate(outputs.baseline, result, max_regression, baseline_path, "this run",
                                    allow_inconclusive=allow_inconclusive)
        verdict = gate_text.strip().splitlines()[-1].strip()
        result["gate"] = {"verdict": verdict, "baseline": os.path.basename(baseline_path),
                          "passed": gate_code == EXIT_OK}
        codes.append(gate_code)
    codes.append(_print_summary(result, to_stderr))
    if result["workers_failed"]:
        click.echo(f"surge run: error: {_died(result['workers_failed'], result['config']['workers'])}", err=True)
        codes.append(EXIT_RUNTIME)
    for failure in write_all(result, files, say=lambda text: click.echo(text, err=True)):
        click.echo(failure.line("surge run"), err=True)
        codes.append(failure.code)
    if result.get("aborted_by"):
        click.echo(f"surge run: stopped early: {result['aborted_by']}", err=True)
        codes.append(EXIT_GATE)
    failed = [o["name"] for o in result.get("objectives", []) if not o["passed"]]
    if failed:
        click.echo(f"surge run: {'objective' if len(failed) == 1 else 'objectives'} failed: {'; '.join(failed)}",
                   err=True)
        codes.append(EXIT_GATE)
    if gate_text is not None:
        click.echo(gate_text, err=to_stderr)
    return worst_exit(*codes)


def _died(failed: list[dict], workers: int) -> str:
    """'worker 1 (killed by SIGKILL) died during the run; the others' results are kept'."""
    names = ", ".join(f"worker {w['index']} ({w['cause']})" for w in failed)
    if len(failed) < workers:
        kept = "the other's results are kept" if workers - len(failed) == 1 else "the others' results are kept"
    else:
        kept = "what it reported before is kept" if len(failed) == 1 else "what they reported before is kept"
    return f"{names} died during the run; {kept}"


def _print_summary(result: dict, to_stderr: bool) -> int:
    """The terminal summary; a bug in it is reported in one line and must not
    keep the reports from being written (EXIT_RUNTIME then)."""
    from surge.report.summary import render_summary
    try:
        click.echo(render_summary(result), err=to_stderr)
    except Exception as exc:  # noqa: BLE001 - the reports after it still have to be written
        click.echo(f"surge run: error: the summary failed: internal error: {type(exc).__name__}: {exc} "
                   "(please report it; the reports are still written)", err=True)
        return EXIT_RUNTIME
    return EXIT_OK


class RunOutputs:
    """What watches a run while it goes: live progress, the Prometheus exporter,
    the --watch-pid sampler; plus the baseline, read before any load is sent."""

    def __init__(self, plan: RunPlan, quiet: bool, baseline_path, prometheus_address, watch_pid):
        from surge.report.live import LiveProgress

        self.baseline = self.exporter = self.watch = None
        if baseline_path:
            from surge.result.load import ResultFileError, load_result
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
                raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
            except ExporterError as exc:
                raise SurgeExit(EXIT_RUNTIME, f"surge run: error: {exc}") from None
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
            from surge.result.objectives import evaluate
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
