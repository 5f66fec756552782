"""`surge run URL|PLAN`: parse the options, build the workload through the
plan layer (surge.plan.build: every problem, exit 2), run it with its
observers and conclude (surge.run.session), and exit with the code that says."""
from __future__ import annotations

import sys

import click

from surge.cli.compare_cmd import _max_regression
from surge.cli.launch_options import build_launch, emit, launch_options, share_check
from surge.cli.main import EXIT_RUNTIME, EXIT_USAGE, SurgeExit, start_up_over
from surge.plan.load import SHAPES_HELP
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


def _follow(ctx, param, value):
    if value is not None and not 0 <= value <= 1000:
        raise click.BadParameter(f"got {value}, allowed: 0 to 1000 redirects", ctx, param)
    return value


def _positive(limit=None):
    def check(ctx, param, value):
        if value is None:
            return None
        if value < 1 or (limit and value > limit):
            allowed = f"1..{limit}" if limit else ">= 1"
            raise click.BadParameter(f"got {value}, allowed: {allowed}", ctx, param)
        return value
    return check


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url", metavar="URL|PLAN", required=False)
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
              help="HTTP Basic auth (as credentials in the URL do); conflicts with -H Authorization. "
                   "With a plan: its auth for every step (a host's or step's own auth: wins).")
@click.option("--follow", type=int, metavar="N", callback=_follow,
              help="Follow up to N redirects per request (default: 0 for a URL, as wrk; a plan's "
                   "follow_redirects, 10 unless it says).")
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
              help="Open model: most connections opened on demand (default: 100 ms of latency at the peak rate); "
                   "one idle 15 s is closed.")
@click.option("--stages", help="DURATION:TARGET,... each ramps linearly from the previous target "
                               "(requests/s with --rate, connections without); implies the duration.")
@click.option("--shape", help=f"A named load shape: {SHAPES_HELP}.")
@click.option("--schedule-grid", callback=_duration,
              help="Open model: due requests go out in batches on this grid (default: ~32 per batch, at most 2ms; "
                   "smaller is smoother and costs more CPU).")
@click.option("--bind", metavar="ADDR[,ADDR...]",
              help="Source addresses to spread connections over (past the ~28k source ports one address has "
                   "per target; on loopback 127.0.0.2,127.0.0.3,... all work).  A host takes only those of "
                   "its own family (IPv4 or IPv6): none of it is refused before the start (exit 2), the "
                   "others are named in a warning.")
@click.option("--disable-keepalive", is_flag=True,
              help="A new connection (and TLS handshake) for every request, sending Connection: close; "
                   "latency then includes connect and handshake.")
@click.option("-k", "--insecure", is_flag=True,
              help="HTTPS: do not verify the server's certificate or name (the summary says NOT VERIFIED).")
@click.option("--cacert", metavar="FILE", help="HTTPS: also trust the CA certificates in this PEM file.")
@click.option("--cert", metavar="FILE", help="HTTPS: present this client certificate (PEM; needs --key).")
@click.option("--key", metavar="FILE", help="HTTPS: the client certificate's private key (PEM).")
@click.option("--sni", metavar="NAME",
              help="HTTPS: send and check this server name instead of the URL's host (one backend by IP).")
@click.option("--tls-min", type=click.Choice(["1.2", "1.3"]), help="HTTPS: the lowest TLS version offered.")
@click.option("--tls-max", type=click.Choice(["1.2", "1.3"]), help="HTTPS: the highest TLS version offered.")
@click.option("--ciphers", metavar="LIST", help="HTTPS: the TLS 1.2 cipher list (OpenSSL syntax).")
@click.option("--tls13-ciphers", metavar="LIST", help="HTTPS: the TLS 1.3 cipher suites (OpenSSL syntax).")
@click.option("--groups", metavar="LIST", help="HTTPS: key-exchange groups, e.g. X25519:P-256.")
@click.option("--keylog", metavar="FILE", envvar="SSLKEYLOGFILE", show_envvar=True,
              help="HTTPS: append the session keys here (NSS key-log format, for Wireshark).")
@click.option("--tls-resume", type=click.Choice(["on", "off"]), default="on", show_default=True,
              callback=lambda ctx, param, value: value == "on",
              help="HTTPS: resume TLS sessions on reconnect (tickets, session IDs).")
@click.option("--ktls", is_flag=True,
              help="HTTPS: let the kernel do the record crypto after the handshake, where it can (kTLS).")
@click.option("--targets", metavar="FILE",
              help="Load many URLs instead of one: each line 'METHOD URL', then optional 'Name: value' and "
                   "'@BODYFILE' lines (vegeta's format); each target is counted apart.")
@click.option("--order", type=click.Choice(["round-robin", "random"]),
              help="With --targets: each request takes the next target in turn (round-robin, the default) "
                   "or one at random.")
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
@click.option("--junit", "junit_path", metavar="FILE",
              help="Write each objective and the baseline gate as a JUnit XML test case here (for CI).")
@click.option("--summary-json", "summary_path", metavar="FILE",
              help="Write a small JSON verdict here: passed, exit code, objectives, gate, headline numbers.")
@click.option("--watch-pid", type=int, help="Sample this process's CPU and memory each second (the target).")
@click.option("-q", "--quiet", is_flag=True, help="No live progress.")
@click.option("--no-redact", is_flag=True,
              help="Show secrets (Authorization/Cookie values, URL passwords, ${env.*} values, secret plan "
                   "fields and data columns) in the result, reports and messages; the result says so.")
@launch_options
def run_command(url, json_path, html_path, csv_path, hlog_path, prometheus_address, baseline_path, max_regression,
                allow_inconclusive, junit_path, summary_path, watch_pid, quiet, no_redact, segment, start_at, barrier,
                barrier_timeout, run_id, emit_result, **load_options):
    """Load URL: with CONNECTIONS keep-alive connections as fast as it answers
    (closed model), or at a fixed or staged arrival RATE (open model).

    An https:// URL is verified against the system trust store and its host
    name (--cacert adds trust, -k skips the check); a certificate that fails
    ends the run before any load, naming the reason (exit 1).  The TLS options
    apply to https:// URLs only; with a plan they apply to its https hosts,
    over the plan's top-level tls: (a host's own tls: keys win)."""
    from surge.plan import redact
    from surge.plan.build import build_workload

    redact.set_enabled(not no_redact)
    ctx = click.get_current_context()
    launch = build_launch(ctx, segment, start_at, barrier, barrier_timeout, run_id, emit_result,
                          json_path == "-", quiet, lambda text: click.echo(text, err=True), baseline_path)
    built = build_workload(url, run_options(ctx, load_options))
    if built.workload is not None and built.workload.secrets is not None:
        redact.activate(built.workload.secrets)        # every message and writer from here on
    if not built.problems:
        from surge.run.limits import problems as limit_problems    # descriptors and ports, before any load
        short = limit_problems(built.workload, _users_option(ctx))
        if short:
            raise SurgeExit(EXIT_USAGE, "\n".join(f"surge run: error: {line}" for line in short))
    if built.problems:
        raise SurgeExit(EXIT_USAGE, "\n".join(p.text if p.in_plan_file else f"surge run: error: {p.text}"
                                              for p in built.problems))
    workload = built.workload
    share_check(launch, workload)
    ending = _ending(json_path, html_path, csv_path, hlog_path, baseline_path, max_regression, allow_inconclusive)
    ending.part_of = None if launch.segment.whole else f"segment {launch.segment}"
    verdict_files = _verdict_files(junit_path, summary_path, ending)
    observers = _observers(workload, quiet, prometheus_address, watch_pid, launch.segment)
    observers.journal = ending.journal = _journal(ending)
    from surge.run.session import conclude, run_observed
    from surge.run.supervisor import RunError, prepare_workers
    prepare_workers(workload)       # the last imports: what the workers run
    start_up_over()                 # the collector back on, before the fork and the load
    try:
        result, ending.interrupted = run_observed(workload, observers, launch)
    except RunError as exc:        # exit 1, or 2 for an option the target's address refutes (--bind)
        raise SurgeExit(exc.exit_code, f"surge run: error: {exc}") from None
    finally:
        observers.close()
    echo = lambda text, err: click.echo(text, err=err)  # noqa: E731
    code = conclude(result, workload, ending, echo)
    code = verdict_files.write(result, code, workload.objectives, ending.command, echo)
    if emit_result:             # last, so the line holds the judged result (objectives, gate)
        emit(result)
    return code


def _users_option(ctx) -> str:
    """How the run's connection count was given, for a message about it."""
    for name, flag in (("max_connections", "--max-connections"), ("stages", "--stages"), ("connections", "-c")):
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            return flag
    return "-c" if ctx.params.get("url") and "://" in str(ctx.params.get("url")) else "the plan's users"


def run_options(ctx, values: dict):
    """The load and request options as surge.plan.options.RunOptions, with
    the spelling of each one typed on the command line."""
    from surge.plan.options import RunOptions

    explicit = {param.name: "/".join(param.opts) for param in ctx.command.params
                if ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE}
    names = {"duration": "duration_ns", "timeout": "timeout_ns", "schedule_grid": "schedule_grid_ns"}
    fields = {names.get(k, k): v for k, v in values.items()}
    fields["headers"] = tuple(fields.get("headers") or ())
    if ctx.get_parameter_source("keylog") == click.core.ParameterSource.ENVIRONMENT and not fields.get("keylog"):
        fields["keylog"] = None         # SSLKEYLOGFILE= (empty) means none
    fields["tls_resume"] = bool(fields.get("tls_resume", True))
    return RunOptions(**fields, explicit=explicit)


def _ending(json_path, html_path, csv_path, hlog_path, baseline_path, max_regression, allow_inconclusive):
    """The output files (checked before any load is sent) and the baseline (read now)."""
    from surge.report.outputs import OutputPathError, check_paths, requested
    from surge.run.session import Ending

    files = requested(json_path, html_path, csv_path, hlog_path)
    try:
        check_paths(files)
    except OutputPathError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    baseline = None
    if baseline_path:
        from surge.result.load import ResultFileError, load_result
        try:
            baseline = load_result(baseline_path)
        except ResultFileError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge run: error: --baseline: {exc}") from None
    return Ending(files=files, baseline=baseline, baseline_path=baseline_path, max_regression=max_regression,
                  allow_inconclusive=allow_inconclusive)


def _journal(ending):
    """The journal beside --json FILE (surge.run.journal), or None."""
    from surge.run.journal import Journal, journal_path

    path = journal_path(ending.result_file.path) if ending.result_file else None
    return Journal(path) if path else None


def _verdict_files(junit_path, summary_path, ending):
    """--junit and --summary-json (surge.report.verdict), their paths checked with the others'."""
    from surge.report.outputs import OutputPathError, check_paths
    from surge.report.verdict import VerdictFiles

    files = VerdictFiles(junit_path, summary_path)
    if files.outputs():
        try:
            check_paths(ending.files + files.outputs(), {"--baseline": ending.baseline_path} if ending.baseline_path
                        else None)
        except OutputPathError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    return files


def _observers(workload, quiet, prometheus_address, watch_pid, segment):
    """Live progress, --prometheus, --watch-pid and abort_on_fail, each started now
    (a wrong pid or a taken port is found before any load)."""
    from surge.plan.describe import describe_config
    from surge.report.live import LiveProgress
    from surge.run.session import AbortOnFail, Observers

    watch = exporter = None
    if watch_pid is not None:
        from surge.run.resources import WatchedProcess, WatchError
        try:
            watch = WatchedProcess(watch_pid)
        except WatchError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
    config = describe_config(workload)
    if prometheus_address:
        from surge.report.prometheus import AddressError, ExporterError, PrometheusExporter
        try:
            exporter = PrometheusExporter(prometheus_address, config=config,
                                          segment=None if segment.whole else segment.index).start()
        except AddressError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge run: error: {exc}") from None
        except ExporterError as exc:
            raise SurgeExit(EXIT_RUNTIME, f"surge run: error: {exc}") from None
    quota = segment.share(workload.load.requests) if workload.load.requests else None
    # A part does not judge the run (its objectives are the merged result's): no abort_on_fail there.
    abort = AbortOnFail(workload.objectives if segment.whole else ())
    return Observers(LiveProgress(config, quiet, sys.stderr, request_quota=quota), exporter, watch, abort)
