"""surge against wrk on the same nginx, in alternating rounds.

    python bench/versus_wrk.py                         # default + pipeline, 3 rounds each
    python bench/versus_wrk.py --scenarios default,pipeline,c10k
    python bench/versus_wrk.py --tools wrk,wrk         # harness self-check: both columns wrk
    python bench/versus_wrk.py --scenarios tls,tls-pipeline,tls-close,tls-c10k,tls-ktls

TLS scenarios (issue 11) run against the same nginx, which then also listens
with TLS 1.3 and an ECDSA P-256 certificate from a throwaway CA (made with
trustme, as the tests make theirs); surge verifies it (--cacert), wrk never
verifies. `tls`, `tls-pipeline` and `tls-c10k` are default, pipeline and c10k
over TLS; `tls-ktls` is `tls` with surge's --ktls; `tls-close` opens a
connection per request (surge --disable-keepalive, wrk -H 'Connection: close')
and is measured per connection, nginx's `accepts` counting them; surge runs
there twice, --tls-resume on and off. Their tables go to their own section of
the results file (between <!-- tls --> markers), with the bars of issue 11.

What is measured, per round and tool (one client process each):
  served     requests nginx counted (stub_status delta): the ground truth,
             whatever the tool itself reports
  req/s      served / the tool's wall time from spawn to exit (start-up included)
  steady     nginx's count between 1 s after spawn and 1 s before the
             nominal end, per second: throughput with start-up and
             shutdown left out, still counted by the target
  CPU/req    (ru_utime + ru_stime) / served, from os.wait4 on the tool's pid;
             that rusage includes every descendant the tool reaped, so surge's
             worker processes are counted
  peak RSS   the largest VmHWM among the tool's processes, sampled from /proc
             while it runs (ru_maxrss would include the harness itself: see
             proctree.py); the per-round notes add the sum over processes
  conn/s     (tls-close) connections nginx accepted / wall time; CPU µs/conn
             divides the tool's CPU by them; handshake p50 is surge's own
             (its result's tls_handshake percentiles)

Rounds alternate (wrk, surge, wrk, surge, ...) so that drift on a shared
machine hits both tools alike; the tables show medians and each round's raw
numbers, and the ratio of every tool to the first one.

Exit status: 0 when every round ran, 1 when some round failed, 2 when wrk,
nginx or surge is missing or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(REPO_DIR))   # tests.support.tls makes the TLS scenarios' certificates

from nginx import Nginx, NginxError, TlsListener, nginx_available  # noqa: E402
from proctree import PeakRss, wait_for_exit  # noqa: E402

from surge import __version__ as surge_version  # noqa: E402

PIPELINE_SCRIPT = BENCH_DIR / "pipeline.lua"
NOTES_MARKER = "<!-- notes -->"
KNOWN_TOOLS = ("wrk", "surge")
PLAIN_SCENARIOS = ("default", "pipeline", "c10k")
TLS_SCENARIOS = ("tls", "tls-pipeline", "tls-close", "tls-c10k", "tls-ktls")
KNOWN_SCENARIOS = PLAIN_SCENARIOS + TLS_SCENARIOS
# Each TLS scenario but tls-close is a plain one over TLS (tls-ktls: with --ktls).
PLAIN_SHAPE = {"tls": "default", "tls-pipeline": "pipeline", "tls-c10k": "c10k", "tls-ktls": "default"}
TLS_BEGIN, TLS_END = "<!-- tls -->", "<!-- /tls -->"
# nginx may still be answering requests that were in flight when the client
# exited; its counter is read after this pause.
SETTLE_S = 0.2
# A tool that outlives its duration by this much is killed and its round failed
# (10,000 connections take a while to open and close).
OVERRUN_ALLOWANCE_S = 30.0
# How long a stub_status read may take: behind 10,000 TLS handshakes nginx's one
# worker answers it late (tests keep the 5-s default).
STATUS_TIMEOUT_S = 30.0
# Before a round, nginx must be idle (only the status connection active): after
# 10,000 TLS connections it is still closing and handshaking for a while, and the
# next round would be measured against that backlog. Waited for at most this long.
IDLE_TIMEOUT_S = 60.0


# -- arguments ---------------------------------------------------------------

def parse_duration_s(text: str) -> float:
    """'8s', '500ms', '2m', '1h' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"duration: expected e.g. 8s, 500ms, 2m; got {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def duration_argument(text: str) -> str:
    parse_duration_s(text)  # validate only; the tools get the text as written
    return text.strip()


def list_argument(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if not items or unknown:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {', '.join(allowed)}; got {text!r}")
        return items
    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="surge vs wrk against nginx, alternating rounds (see the module docstring).")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tool and scenario (default 3)")
    parser.add_argument("--duration", type=duration_argument, default="8s", help="per round (default 8s)")
    parser.add_argument("--connections", type=int, default=50, help="default and pipeline scenarios (default 50)")
    parser.add_argument("--pipeline-depth", type=int, default=16, help="pipeline scenario depth (default 16)")
    parser.add_argument("--c10k-connections", type=int, default=10000, help="c10k scenario (default 10000)")
    parser.add_argument("--c10k-workers", type=int, default=2,
                        help="surge workers / wrk threads in c10k (default 2)")
    parser.add_argument("--tls-c10k-duration", type=duration_argument, default="30s",
                        help="tls-c10k's rounds instead of --duration (default 30s: 10,000 full handshakes"
                             " alone keep nginx's one worker busy for many seconds)")
    parser.add_argument("--close-connections", type=int, default=20,
                        help="tls-close scenario: connections, each one request long (default 20)")
    parser.add_argument("--scenarios", type=list_argument(KNOWN_SCENARIOS), default=["default", "pipeline"],
                        help=f"comma list of {', '.join(KNOWN_SCENARIOS)} (default: default,pipeline)")
    parser.add_argument("--tools", type=list_argument(KNOWN_TOOLS), default=["wrk", "surge"],
                        help="comma list, the first is the baseline of the ratios (default: wrk,surge;"
                             " wrk,wrk checks the harness and shows the noise)")
    parser.add_argument("--surge-cmd", default=None,
                        help="how to invoke surge (default: this python -m surge)")
    parser.add_argument("--surge-args", default="",
                        help="extra arguments for every surge run, e.g. '--pipeline-timing each'")
    parser.add_argument("--wrk", default="wrk", help="wrk binary (default: wrk on PATH)")
    parser.add_argument("--results", default=str(BENCH_DIR / "RESULTS.md"),
                        help="markdown file whose generated section is replaced (default bench/RESULTS.md)")
    parser.add_argument("--no-results", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--json-out", default=None, help="also write every raw number to this JSON file")
    args = parser.parse_args(argv)
    if min(args.rounds, args.connections, args.pipeline_depth, args.c10k_connections,
           args.close_connections) < 1:
        parser.error("--rounds, --connections, --pipeline-depth, --c10k-connections and"
                     " --close-connections must be >= 1")
    args.surge_command = (shlex.split(args.surge_cmd) if args.surge_cmd
                          else [sys.executable, "-m", "surge"])
    return args


# -- tools and scenarios -------------------------------------------------------

@dataclass(frozen=True)
class Tool:
    kind: str    # "wrk" or "surge"
    label: str   # unique column name: "wrk", "surge", or "wrk#2" when repeated
    variant: str = ""   # tls-close: "resume-on" / "resume-off" for surge


def tools_from_kinds(kinds: list[str]) -> list[Tool]:
    tools, seen = [], {}
    for kind in kinds:
        seen[kind] = seen.get(kind, 0) + 1
        tools.append(Tool(kind, kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"))
    return tools


def scenario_tools(scenario: str, tools: list[Tool]) -> list[Tool]:
    """The columns of one scenario: the tools as given, except that in tls-close
    each surge runs twice, with --tls-resume on (its label) and off."""
    if scenario != "tls-close":
        return tools
    columns = []
    for tool in tools:
        if tool.kind == "surge":
            columns += [Tool("surge", tool.label, "resume-on"),
                        Tool("surge", f"{tool.label} resume-off", "resume-off")]
        else:
            columns.append(tool)
    return columns


TLS_TARGET = "TLS 1.3, ECDSA P-256 certificate"


def scenario_title(name: str, args: argparse.Namespace) -> str:
    if name == "tls-close":
        return (f"tls-close: {args.close_connections} connections, a new connection (and {TLS_TARGET}"
                f" handshake) per request, {args.duration}; surge with --tls-resume on and off")
    if name in PLAIN_SHAPE:
        plain = scenario_title(PLAIN_SHAPE[name], args).split(": ", 1)[1]
        extra = ", surge with --ktls" if name == "tls-ktls" else ""
        return f"{name}: {plain}, {TLS_TARGET}{extra}"
    if name == "default":
        return f"default: {args.connections} connections, {args.duration}, one client process"
    if name == "pipeline":
        return (f"pipeline: {args.connections} connections, {args.pipeline_depth} requests in flight"
                f" on each, {args.duration}")
    return (f"c10k: {args.c10k_connections} connections, {args.c10k_workers} surge workers"
            f" (wrk: threads), {args.duration}")


# surge sends `User-Agent: surge/VERSION` by default; wrk sends the same bytes, so
# both tools put identical requests on the wire.
WRK_HEADERS = ("-H", f"User-Agent: surge/{surge_version}")


def tool_command(tool: Tool, scenario: str, url: str, args: argparse.Namespace, json_path: str,
                 cacert: str | None = None) -> list[str]:
    """The exact command line of one round (a TLS scenario gets the https URL,
    and surge the CA to verify nginx's certificate with)."""
    if scenario == "tls-close":
        if tool.kind == "wrk":
            return [args.wrk, "-t1", f"-c{args.close_connections}", f"-d{args.duration}", *WRK_HEADERS,
                    "-H", "Connection: close", url]
        resume = "off" if tool.variant == "resume-off" else "on"
        return (args.surge_command + ["run", url] + shlex.split(args.surge_args)
                + ["-c", str(args.close_connections), "-d", args.duration, "-w", "1", "--disable-keepalive",
                   "--tls-resume", resume, "--cacert", cacert, "--quiet", "--json", json_path])
    if scenario in PLAIN_SHAPE:
        command = tool_command(tool, PLAIN_SHAPE[scenario], url, args, json_path)
        if tool.kind == "surge":
            # Before --quiet/--json, the tail every surge command shares.
            command[-3:-3] = ["--cacert", cacert] + (["--ktls"] if scenario == "tls-ktls" else [])
        return command
    if tool.kind == "wrk":
        if scenario == "default":
            return [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}", *WRK_HEADERS, url]
        if scenario == "pipeline":
            return [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}", *WRK_HEADERS,
                    "-s", str(PIPELINE_SCRIPT), url, "--", str(args.pipeline_depth)]
        return [args.wrk, f"-t{args.c10k_workers}", f"-c{args.c10k_connections}", f"-d{args.duration}",
                *WRK_HEADERS, url]
    run = args.surge_command + ["run", url] + shlex.split(args.surge_args)
    if scenario == "default":
        return run + ["-c", str(args.connections), "-d", args.duration, "-w", "1", "--quiet", "--json", json_path]
    if scenario == "pipeline":
        return run + ["-c", str(args.connections), "-d", args.duration, "-w", "1",
                      "--pipeline", str(args.pipeline_depth), "--quiet", "--json", json_path]
    return run + ["-c", str(args.c10k_connections), "-w", str(args.c10k_workers), "-d", args.duration,
                  "--quiet", "--json", json_path]


# -- one round -----------------------------------------------------------------

@dataclass
class Round:
    scenario: str
    round_index: int          # 1-based
    tool: str                 # label
    command: list[str]
    ok: bool = False
    failure: str = ""
    exit_code: int | None = None
    served: int = 0           # nginx's count
    connections: int = 0      # connections nginx accepted during the round
    steady_rps: float | None = None   # nginx's count over the middle of the run, per second
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    peak_rss_kib: int = 0     # largest process of the tool's tree (VmHWM)
    rss_sum_kib: int = 0      # sum of the per-process peaks
    processes: int = 0        # how many processes the tool's tree had
    ru_maxrss_kib: int = 0    # raw, for the record: includes the harness (see proctree.py)
    busy_at_start: int = 0    # connections nginx still had open when the round had to start anyway
    tool_reported_requests: int | None = None   # wrk's own count, for a cross-check
    tool_reported_errors: str = ""               # wrk's socket-error and non-2xx lines
    worker_max_rss_kib: list[int] = field(default_factory=list)  # surge's JSON, when present
    tls: dict = field(default_factory=dict)    # surge's JSON, TLS scenarios: see _surge_tls

    @property
    def requests_per_s(self) -> float:
        return self.served / self.wall_s if self.wall_s else 0.0

    @property
    def connections_per_s(self) -> float:
        return self.connections / self.wall_s if self.wall_s else 0.0

    def _cpu_s(self, which: str) -> float:
        return {"total": self.user_s + self.sys_s, "user": self.user_s, "sys": self.sys_s}[which]

    def cpu_us_per_request(self, which: str = "total") -> float:
        return self._cpu_s(which) * 1e6 / self.served if self.served else 0.0

    def cpu_us_per_connection(self, which: str = "total") -> float:
        return self._cpu_s(which) * 1e6 / self.connections if self.connections else 0.0


class SteadyWindow(threading.Thread):
    """Reads nginx's counter 1 s after the tool starts and 1 s before its
    nominal end: the target-counted rate with start-up and shutdown excluded."""

    def __init__(self, nginx: Nginx, duration_s: float):
        super().__init__(daemon=True)
        self.nginx = nginx
        self.begin_s, self.end_s = 1.0, duration_s - 1.0
        self.counts: list[tuple[float, int]] = []

    def run(self) -> None:
        if self.end_s - self.begin_s < 1.0:
            return
        started = time.monotonic()
        for offset in (self.begin_s, self.end_s):
            time.sleep(max(0.0, started + offset - time.monotonic()))
            try:
                self.counts.append((time.monotonic(), self.nginx.requests()))
            except NginxError:
                return   # no steady rate this round; the round's own counts still stand

    def rate(self) -> float | None:
        self.join(timeout=5)
        if len(self.counts) < 2:
            return None
        (t0, n0), (t1, n1) = self.counts
        return (n1 - n0) / (t1 - t0)


def run_round(nginx: Nginx, tool: Tool, scenario: str, round_index: int,
              args: argparse.Namespace, work_dir: str, cacert: str | None = None) -> Round:
    file_stem = os.path.join(work_dir, f"{scenario}-{round_index}-{re.sub(r'[^A-Za-z0-9#]+', '_', tool.label)}")
    json_path = file_stem + ".json"
    url = nginx.tls_url if scenario in TLS_SCENARIOS else nginx.url
    command = tool_command(tool, scenario, url, args, json_path, cacert)
    result = Round(scenario, round_index, tool.label, command)
    stdout_path, stderr_path = file_stem + ".out", file_stem + ".err"
    deadline_s = parse_duration_s(args.duration) + OVERRUN_ALLOWANCE_S

    result.busy_at_start = wait_until_idle(nginx, IDLE_TIMEOUT_S)
    connections_before = nginx.connections()
    served_before = nginx.requests()
    window = SteadyWindow(nginx, parse_duration_s(args.duration))
    with open(stdout_path, "wb") as stdout_file, open(stderr_path, "wb") as stderr_file:
        started_s = time.monotonic()
        window.start()
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout_file,
                                       stderr=stderr_file, cwd=REPO_DIR)
        except OSError as exc:
            result.failure = f"could not start: {exc}"
            return result
        peak_rss = PeakRss(process.pid)
        try:
            status, usage, overran, ended_s = wait_for_exit(process, deadline_s, peak_rss)
        except BaseException:
            # Interrupted: take the tool down with us (Ctrl-C reaches it too, SIGTERM does not).
            process.kill()
            process.wait()
            raise
        result.wall_s = ended_s - started_s
    result.steady_rps = window.rate()
    time.sleep(SETTLE_S)
    result.served = nginx.requests() - served_before
    result.connections = nginx.connections() - connections_before

    result.exit_code = os.waitstatus_to_exitcode(status)
    result.user_s, result.sys_s = usage.ru_utime, usage.ru_stime
    result.ru_maxrss_kib = usage.ru_maxrss  # Linux reports KiB
    result.peak_rss_kib, result.rss_sum_kib = peak_rss.largest_kib, peak_rss.sum_kib
    result.processes = len(peak_rss.peak_kib_by_pid)
    stdout_text = Path(stdout_path).read_text(errors="replace")
    stderr_text = Path(stderr_path).read_text(errors="replace")
    if tool.kind == "wrk":
        match = re.search(r"(\d+) requests in", stdout_text)
        result.tool_reported_requests = int(match.group(1)) if match else None
        # wrk reports socket errors and bad statuses on stdout and still exits 0:
        # not a failed round, but the table should show them.
        result.tool_reported_errors = "; ".join(
            line.strip() for line in stdout_text.splitlines()
            if line.strip().startswith(("Socket errors:", "Non-2xx")))
    else:
        result.worker_max_rss_kib = _surge_worker_rss_kib(json_path)
        if scenario in TLS_SCENARIOS:
            result.tls = _surge_tls(json_path)

    if overran:
        result.failure = f"still running {deadline_s:g} s after start; killed"
    elif result.exit_code != 0:
        result.failure = f"exit status {result.exit_code}"
    elif result.served <= 0:
        result.failure = "nginx counted no requests"
    if result.failure:
        print(f"  {tool.label} failed ({result.failure}): {shlex.join(command)}", file=sys.stderr)
        for line in (stderr_text or stdout_text).strip().splitlines()[-15:]:
            print(f"    | {line}", file=sys.stderr)
    result.ok = not result.failure
    return result


def wait_until_idle(nginx: Nginx, timeout_s: float) -> int:
    """Wait until nginx has no connection open but the status read's own;
    0 then, else how many were still open after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = nginx.status()["active"] - 1
        if busy <= 0:
            return 0
        if time.monotonic() > deadline:
            return busy
        time.sleep(0.1)


def _surge_worker_rss_kib(json_path: str) -> list[int]:
    """resources.workers[i].max_rss_kb from surge's result file; [] when absent."""
    try:
        with open(json_path) as json_file:
            workers = json.load(json_file)["resources"]["workers"]
        return [int(worker["max_rss_kb"]) for worker in workers]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _surge_tls(json_path: str) -> dict:
    """What surge's result says about TLS: handshake_p50_us, connect_p50_us (and
    how many were timed: handshake_count, connect_count),
    protocol, cipher, group, ktls, resume, handshakes {full, resumed}, errors
    ({reason: count}) and connections_opened; whatever of it is present."""
    try:
        with open(json_path) as json_file:
            result = json.load(json_file)
    except (OSError, ValueError):
        return {}
    found = {}
    for key in ("tls_handshake", "connect"):
        try:
            found[f"{key.removeprefix('tls_')}_p50_us"] = float(result[key]["percentiles"]["50"])
            found[f"{key.removeprefix('tls_')}_count"] = int(result[key]["count"])
        except (KeyError, TypeError, ValueError):
            pass
    tls = result.get("tls") if isinstance(result.get("tls"), dict) else {}
    found.update({key: tls[key] for key in ("protocol", "cipher", "group", "ktls", "ktls_send", "ktls_recv",
                                            "resume", "verify", "handshakes", "errors") if key in tls})
    opened = (result.get("totals") or {}).get("connections_opened")
    if opened is not None:
        found["connections_opened"] = opened
    return found


# -- summaries and markdown ----------------------------------------------------

METRICS = (  # (key, column header, how to get it from a round)
    ("requests_per_s", "req/s", lambda r: r.requests_per_s),
    ("steady_rps", "steady req/s", lambda r: r.steady_rps),
    ("cpu_us_per_request", "CPU µs/req", lambda r: r.cpu_us_per_request("total")),
    ("user_us_per_request", "user µs/req", lambda r: r.cpu_us_per_request("user")),
    ("sys_us_per_request", "sys µs/req", lambda r: r.cpu_us_per_request("sys")),
    ("peak_rss_mib", "peak RSS MiB", lambda r: r.peak_rss_kib / 1024),
)
WORKER_RSS = ("worker_peak_rss_mib", "max worker RSS MiB",
              lambda r: max(r.worker_max_rss_kib) / 1024 if r.worker_max_rss_kib else None)
HANDSHAKE_P50 = ("handshake_p50_us", "handshake p50 µs", lambda r: r.tls.get("handshake_p50_us"))
CONNECTION_METRICS = (
    ("connections_per_s", "conn/s", lambda r: r.connections_per_s),
    ("cpu_us_per_connection", "CPU µs/conn", lambda r: r.cpu_us_per_connection("total")),
    ("user_us_per_connection", "user µs/conn", lambda r: r.cpu_us_per_connection("user")),
    ("sys_us_per_connection", "sys µs/conn", lambda r: r.cpu_us_per_connection("sys")),
)
# tls-close is measured per connection (each carries one request).
CLOSE_METRICS = CONNECTION_METRICS + (METRICS[0], HANDSHAKE_P50, METRICS[-1])
ALL_METRICS = METRICS + CONNECTION_METRICS + (WORKER_RSS, HANDSHAKE_P50)


def scenario_metrics(scenario: str, rounds: list[Round]) -> list[tuple]:
    """The columns of a scenario's table."""
    metrics = list(CLOSE_METRICS if scenario == "tls-close" else METRICS)
    if any(r.worker_max_rss_kib for r in rounds) and scenario != "tls-close":
        metrics.append(WORKER_RSS)
    return metrics


def summarize(rounds: list[Round], tools: list[Tool]) -> dict[str, dict]:
    """Per tool label: the median of each metric over its successful rounds."""
    summary = {}
    for tool in tools:
        ok_rounds = [r for r in rounds if r.tool == tool.label and r.ok]
        medians = {"rounds_ok": len(ok_rounds), "rounds": sum(r.tool == tool.label for r in rounds)}
        for key, _header, metric in ALL_METRICS:
            values = [v for v in (metric(r) for r in ok_rounds) if v is not None]
            medians[key] = statistics.median(values) if values else None
        summary[tool.label] = medians
    return summary


def _format_number(value: float | None, key: str) -> str:
    if value is None:
        return "—"
    if key in ("requests_per_s", "steady_rps", "connections_per_s"):
        return f"{value:,.0f}"
    if key.endswith("_mib"):
        return f"{value:.1f}"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def render_scenario(title: str, rounds: list[Round], tools: list[Tool], summary: dict,
                    metrics: list[tuple], heading: str = "###", bars: list[str] = ()) -> str:
    lines = [f"{heading} {title}", ""]
    lines.append("| tool | " + " | ".join(header for _k, header, _m in metrics) + " | rounds ok |")
    lines.append("|---" * (len(metrics) + 2) + "|")
    for tool in tools:
        medians = summary[tool.label]
        cells = [_format_number(medians[key], key) for key, _h, _m in metrics]
        lines.append(f"| {tool.label} | " + " | ".join(cells)
                     + f" | {medians['rounds_ok']}/{medians['rounds']} |")
    baseline = summary[tools[0].label]
    for tool in tools[1:]:
        medians = summary[tool.label]
        cells = []
        for key, _h, _m in metrics:
            if medians[key] is None or not baseline[key]:
                cells.append("—")
            else:
                cells.append(f"{medians[key] / baseline[key]:.2f}")
        lines.append(f"| **{tool.label} / {tools[0].label}** | " + " | ".join(cells) + " | |")
    if bars:
        lines += ["", "Bars of issue 11 (medians):", ""] + [f"- {bar}" for bar in bars]
    lines += ["", "Each round (tools alternate within a round):", "",
              "| round | tool | served | wall s | req/s | CPU µs/req | user | sys | peak RSS MiB | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        notes = []
        if not r.ok:
            notes.append(f"FAILED: {r.failure}")
        if r.busy_at_start:
            notes.append(f"nginx still had {r.busy_at_start:,} connections open at the start")
        if r.tool_reported_requests is not None:
            notes.append(f"wrk counted {r.tool_reported_requests:,}")
        if r.tool_reported_errors:
            notes.append(r.tool_reported_errors)
        if r.processes > 1:
            notes.append(f"{r.processes} processes, RSS sum {r.rss_sum_kib / 1024:.1f} MiB")
        if r.worker_max_rss_kib:
            notes.append("worker RSS MiB " + " / ".join(f"{kib / 1024:.1f}" for kib in r.worker_max_rss_kib))
        if r.scenario == "tls-close":
            notes.append(f"{r.connections:,} connections, {r.connections_per_s:,.0f}/s,"
                         f" {r.cpu_us_per_connection():.1f} CPU µs/conn")
        notes += _tls_notes(r.tls)
        lines.append(
            f"| {r.round_index} | {r.tool} | {r.served:,} | {r.wall_s:.2f} | {r.requests_per_s:,.0f} | "
            f"{r.cpu_us_per_request():.2f} | {r.cpu_us_per_request('user'):.2f} | "
            f"{r.cpu_us_per_request('sys'):.2f} | {r.peak_rss_kib / 1024:.1f} | {'; '.join(notes)} |")
    lines.append("")
    return "\n".join(lines)


def _tls_notes(tls: dict) -> list[str]:
    """surge's own account of its TLS, for a round's notes."""
    notes = []
    if tls.get("protocol"):
        notes.append(" ".join(str(tls.get(key) or "") for key in ("protocol", "cipher", "group")).strip()
                     + (", verified" if tls.get("verify") else "") + (", kTLS" if tls.get("ktls") else ""))
    if "ktls_send" in tls or "ktls_recv" in tls:
        notes.append(f"kTLS send {'on' if tls.get('ktls_send') else 'off'},"
                     f" receive {'on' if tls.get('ktls_recv') else 'off'}")
    if isinstance(tls.get("handshakes"), dict):
        notes.append(f"handshakes {tls['handshakes'].get('full', 0):,} full /"
                     f" {tls['handshakes'].get('resumed', 0):,} resumed")
    if tls.get("handshake_p50_us") is not None:
        count = tls.get("handshake_count")
        notes.append(f"handshake p50 {tls['handshake_p50_us']:,.0f} µs"
                     + (f" (of {count:,} timed)" if count is not None else ""))
    if tls.get("errors"):
        notes.append("TLS errors " + ", ".join(f"{reason}: {count}" for reason, count in tls["errors"].items()))
    return notes


def _ratio(summary: dict, numerator: str, denominator: str, key: str,
           denominator_key: str | None = None) -> float | None:
    top, bottom = summary[numerator].get(key), summary[denominator].get(denominator_key or key)
    return top / bottom if top is not None and bottom else None


def _bar(text: str, ratio: float | None, limit: float, higher_is_better: bool) -> str:
    if ratio is None:
        return f"{text}: not measured"
    met = ratio >= limit if higher_is_better else ratio <= limit
    return f"{text}: {ratio:.2f} ({'≥' if higher_is_better else '≤'} {limit:g}: {'met' if met else 'NOT met'})"


def bar_lines(scenario: str, summary: dict, tools: list[Tool], rounds: list[Round]) -> list[str]:
    """Issue 11's bars for this scenario, from the medians: surge (the first
    surge column) against wrk (the first wrk column). Empty without both."""
    wrk = next((t.label for t in tools if t.kind == "wrk"), None)
    surge = next((t.label for t in tools if t.kind == "surge" and t.variant != "resume-off"), None)
    if not (wrk and surge):
        return []
    name = f"{surge} / {wrk}"
    if scenario in ("tls", "tls-ktls"):
        bars = [_bar(f"{name} req/s", _ratio(summary, surge, wrk, "requests_per_s"), 1.0, True),
                _bar(f"{name} CPU per request", _ratio(summary, surge, wrk, "cpu_us_per_request"), 1.0, False),
                _bar(f"{name} user CPU per request", _ratio(summary, surge, wrk, "user_us_per_request"), 1.0, False)]
        if scenario == "tls-ktls":
            took = {bool(r.tls.get("ktls")) for r in rounds if r.tool == surge and r.ok and "ktls" in r.tls}
            bars = [f"{b} (recorded; kTLS has no bar)" for b in bars]
            bars.append("kTLS took effect: " + ({True: "yes", False: "no"}.get(took.pop(), "?") if len(took) == 1
                                                 else "in some rounds" if took else "not reported"))
        return bars
    if scenario == "tls-pipeline":
        return [_bar(f"{name} req/s", _ratio(summary, surge, wrk, "requests_per_s"), 1.0, True)]
    if scenario == "tls-close":
        off = f"{surge} resume-off"
        bars = [_bar(f"{name} connections/s", _ratio(summary, surge, wrk, "connections_per_s"), 1.0, True),
                _bar(f"{name} CPU per connection", _ratio(summary, surge, wrk, "cpu_us_per_connection"), 1.0, False)]
        if off in summary:
            bars += [_bar(f"{surge} resume on / off CPU per connection",
                          _ratio(summary, surge, off, "cpu_us_per_connection"), 1.0, False) + " (must drop)",
                     _bar(f"{surge} resume on / off handshake p50",
                          _ratio(summary, surge, off, "handshake_p50_us"), 1.0, False) + " (must drop)"]
        return bars
    if scenario == "tls-c10k":
        return [f"{surge} runs: {summary[surge]['rounds_ok']}/{summary[surge]['rounds']} rounds ok",
                _bar(f"{surge} max worker peak RSS / {wrk} peak RSS (total)",
                     _ratio(summary, surge, wrk, "worker_peak_rss_mib", "peak_rss_mib"), 1.5, False)]
    return []


def machine_description() -> dict[str, str | int]:
    """The machine as surge's result files describe it, plus the usable cores."""
    from surge.run.merge import machine_info

    info = machine_info()
    return {"cpu": info["cpu_model"], "cores": info["cpus"] or 0,
            "usable_cores": len(os.sched_getaffinity(0)),
            "kernel": f"{platform.system()} {info['kernel']}"}


def tool_versions(args: argparse.Namespace, kinds: set[str], nginx_version: str) -> dict[str, str]:
    versions = {"nginx": nginx_version, "python": platform.python_version()}
    if any(scenario in TLS_SCENARIOS for scenario in args.scenarios):
        openssl = shutil.which("openssl")
        versions["openssl"] = (subprocess.run([openssl, "version"], capture_output=True, text=True,
                                              timeout=10).stdout.strip() if openssl else "openssl ?")
        try:
            ulps = Path("/proc/sys/net/ipv4/tcp_available_ulp").read_text().split()
            versions["ktls"] = "available" if "tls" in ulps else "not loaded (no `tls` in tcp_available_ulp)"
        except OSError:
            versions["ktls"] = "unknown"
    if "wrk" in kinds:
        # wrk has no --version; its usage text starts with "wrk <version> [epoll] ..."
        usage = subprocess.run([args.wrk, "--version"], capture_output=True, text=True, timeout=10)
        first_line = (usage.stdout + usage.stderr).strip().splitlines()[:1]
        versions["wrk"] = first_line[0].split("[")[0].strip() if first_line else "wrk"
    return versions


def render_report(started: datetime.datetime, command_line: str, machine: dict, versions: dict,
                  args: argparse.Namespace, sections: list[str], tls: bool = False) -> str:
    """The plain scenarios' report (a `##` section), or with tls=True the TLS
    scenarios' (a `###` section, its scenarios one level down)."""
    title = (f"### TLS (issue 11): surge vs wrk, {started:%Y-%m-%d %H:%M} UTC" if tls
             else f"## {started:%Y-%m-%d %H:%M} UTC")
    tls_target = (f" Over TLS: {TLS_TARGET} from a throwaway CA, nginx's ssl_protocols TLSv1.3,"
                  " tickets and a shared session cache; surge verifies the certificate (--cacert),"
                  " wrk does not verify."
                  f" {versions.get('openssl', 'OpenSSL ?')}; kernel TLS (the `tls` ULP):"
                  f" {versions.get('ktls', '?')}." if tls else "")
    header = [
        f"{title} — {machine['cpu']}, {machine['cores']} cores"
        f" ({machine['usable_cores']} usable), {machine['kernel']}",
        "",
        f"Command: `{command_line}`",
        "",
        f"Target: {versions['nginx'].removeprefix('nginx version: ')}, 1 worker, `return 200;`, loopback."
        + tls_target
        + (f" {versions['wrk']}." if "wrk" in versions else "")
        + f" Medians of {args.rounds} alternating rounds of {args.duration}."
        " Requests are counted by nginx's stub_status; req/s divides them by the tool's wall time"
        " (start-up included), steady req/s is nginx's count from 1 s after start to 1 s before the end;"
        " CPU is the client's rusage (its whole process tree) per request;"
        " peak RSS is the largest VmHWM among the client's processes. Each column is its own median"
        " (so user + sys need not equal the total). Ratios are to the first tool (for req/s higher"
        " is better, for the others lower)."
        + (" tls-close counts connections by nginx's `accepts` and divides CPU by them." if tls else ""),
        "",
    ]
    return "\n".join(header) + "\n" + "\n".join(sections)


def write_tls_section(path: str, report: str) -> None:
    """Replace the TLS section (between TLS_BEGIN and TLS_END) of `path`, or put
    it right after the notes marker, where the plain runs leave it alone."""
    block = f"{TLS_BEGIN}\n\n{report.rstrip()}\n\n{TLS_END}"
    try:
        text = Path(path).read_text()
    except OSError:
        text = ""
    if TLS_BEGIN in text and TLS_END in text:
        text = re.sub(re.escape(TLS_BEGIN) + ".*?" + re.escape(TLS_END), lambda _: block, text, flags=re.S)
    elif NOTES_MARKER in text:
        text = text.replace(NOTES_MARKER, f"{NOTES_MARKER}\n\n{block}", 1)
    else:
        text = text.rstrip() + f"\n\n{NOTES_MARKER}\n\n{block}\n"
    Path(path).write_text(text)


def write_results_file(path: str, report: str) -> None:
    """Replace the generated part of `path`, keeping everything from the notes marker on."""
    notes = f"{NOTES_MARKER}\n\n## Notes\n\n(Hand-written notes below this line are kept across runs.)\n"
    try:
        existing = Path(path).read_text()
        if NOTES_MARKER in existing:
            notes = existing[existing.index(NOTES_MARKER):]
    except OSError:
        pass
    preamble = ("# Benchmark results: surge vs wrk\n\n"
                "Written by `bench/versus_wrk.py` (`make bench`). Everything above the notes marker"
                " is replaced on each run.\n\n")
    Path(path).write_text(preamble + report.rstrip() + "\n\n" + notes)


# -- main ----------------------------------------------------------------------

def _raise_keyboard_interrupt(_signum, _frame):
    raise KeyboardInterrupt

def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by nginx and the tools);
    the c10k scenario needs a descriptor per connection. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def preflight(args: argparse.Namespace, kinds: set[str]) -> tuple[str, str]:
    """('', nginx version) when everything needed is present, else (reason, '')."""
    available, nginx_version = nginx_available()
    if not available:
        return nginx_version, ""
    if "wrk" in kinds and not shutil.which(args.wrk):
        return f"wrk not found ({args.wrk!r} is not on PATH; Debian package: wrk)", ""
    if "surge" in kinds:
        try:
            check = subprocess.run(args.surge_command + ["run", "--help"], capture_output=True,
                                   text=True, timeout=60, cwd=REPO_DIR)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"surge not runnable as {shlex.join(args.surge_command)}: {exc}", ""
        if check.returncode != 0:
            last_line = (check.stderr.strip().splitlines() or [f"exit status {check.returncode}"])[-1]
            return f"surge not runnable as {shlex.join(args.surge_command)}: {last_line}", ""
        wanted = _surge_tls_flags(args.scenarios)
        missing = [flag for flag in wanted if flag not in check.stdout]
        if missing:
            return (f"this surge has no {', '.join(missing)} (not in `surge run --help`), which the TLS"
                    " scenarios need; check the harness with --tools wrk,wrk meanwhile"), ""
    if any(scenario in TLS_SCENARIOS for scenario in args.scenarios):
        try:
            import trustme  # noqa: F401  (the certificates are made with it)
        except ImportError:
            return "the TLS scenarios make their certificates with trustme: pip install -e '.[test]'", ""
    return "", nginx_version


def _surge_tls_flags(scenarios: list[str]) -> list[str]:
    """The surge options the chosen TLS scenarios use (issue 11's CLI)."""
    flags = ["--cacert"] if any(scenario in TLS_SCENARIOS for scenario in scenarios) else []
    if "tls-close" in scenarios:
        flags += ["--disable-keepalive", "--tls-resume"]
    if "tls-ktls" in scenarios:
        flags.append("--ktls")
    return flags


def start_nginx(scenarios: list[str], work_dir: str) -> tuple[Nginx, str | None]:
    """nginx for these scenarios (not started yet) and the CA file surge trusts:
    with a TLS listener, and fresh certificates in work_dir, only when a TLS
    scenario is among them, so the plain scenarios run as they always have."""
    if not any(scenario in TLS_SCENARIOS for scenario in scenarios):
        return Nginx(status_timeout_s=STATUS_TIMEOUT_S), None
    from tests.support.tls import make_certs   # needs trustme; REPO_DIR is on sys.path

    certs = make_certs(os.path.join(work_dir, "certs"))
    listener = TlsListener(cert=str(certs.leaf.cert), key=str(certs.leaf.key), protocols="TLSv1.3")
    return Nginx(tls=listener, status_timeout_s=STATUS_TIMEOUT_S), str(certs.ca)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tools = tools_from_kinds(args.tools)
    kinds = {tool.kind for tool in tools}
    reason, nginx_version = preflight(args, kinds)
    if reason:
        print(f"versus_wrk: {reason}", file=sys.stderr)
        return 2
    open_file_limit = raise_open_file_limit()
    if {"c10k", "tls-c10k"} & set(args.scenarios) and open_file_limit < args.c10k_connections + 100:
        print(f"versus_wrk: note: open-file limit is {open_file_limit}, below what"
              f" {args.c10k_connections} connections need", file=sys.stderr)

    started = datetime.datetime.now(datetime.timezone.utc)
    command_line = shlex.join([os.path.relpath(sys.executable, REPO_DIR)
                               if sys.executable.startswith(str(REPO_DIR)) else sys.executable]
                              + [os.path.relpath(__file__, REPO_DIR)] + sys.argv[1:])
    machine = machine_description()
    versions = tool_versions(args, kinds, nginx_version)
    raw = {"started_utc": started.isoformat(), "command": command_line, "machine": machine,
           "versions": versions, "scenarios": {}}
    plain_sections, tls_sections, any_failed = [], [], False

    # SIGTERM (e.g. from make or CI) unwinds like Ctrl-C, so nginx is stopped.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="surge-bench-") as work_dir:
            nginx, cacert = start_nginx(args.scenarios, work_dir)
            with nginx:
                for scenario in args.scenarios:
                    section, raw_scenario, failed = run_scenario(nginx, scenario, tools, args, work_dir, cacert)
                    (tls_sections if scenario in TLS_SCENARIOS else plain_sections).append(section)
                    raw["scenarios"][scenario] = raw_scenario
                    any_failed |= failed
    except NginxError as exc:
        print(f"versus_wrk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("versus_wrk: interrupted; nothing written", file=sys.stderr)
        return 130

    for sections, tls in ((plain_sections, False), (tls_sections, True)):
        if not sections:
            continue
        report = render_report(started, command_line, machine, versions, args, sections, tls=tls)
        print(report)
        if not args.no_results:
            (write_tls_section if tls else write_results_file)(args.results, report)
            print(f"(written to {args.results})", file=sys.stderr)
    if args.json_out:
        with open(args.json_out, "w") as json_file:
            json.dump(raw, json_file, indent=2)
    return 1 if any_failed else 0


def run_scenario(nginx: Nginx, scenario: str, tools: list[Tool], args: argparse.Namespace,
                 work_dir: str, cacert: str | None) -> tuple[str, dict, bool]:
    """All rounds of one scenario: (its markdown, its raw numbers, whether a round failed)."""
    if scenario == "tls-c10k":
        args = argparse.Namespace(**{**vars(args), "duration": args.tls_c10k_duration})
    title = scenario_title(scenario, args)
    columns = scenario_tools(scenario, tools)
    print(f"== {title}", file=sys.stderr)
    rounds, any_failed = [], False
    for round_index in range(1, args.rounds + 1):
        for tool in columns:
            result = run_round(nginx, tool, scenario, round_index, args, work_dir, cacert)
            rounds.append(result)
            any_failed |= not result.ok
            per_connection = (f" {result.connections_per_s:>8,.0f} conn/s" if scenario == "tls-close" else "")
            print(f"  round {round_index}/{args.rounds} {tool.label:8}"
                  f" {result.requests_per_s:>10,.0f} req/s{per_connection}"
                  f" {result.cpu_us_per_request():6.2f} µs/req"
                  f" {'ok' if result.ok else 'FAILED'}", file=sys.stderr)
    summary = summarize(rounds, columns)
    heading = "####" if scenario in TLS_SCENARIOS else "###"
    section = render_scenario(title, rounds, columns, summary, scenario_metrics(scenario, rounds),
                              heading=heading, bars=bar_lines(scenario, summary, columns, rounds))
    raw_scenario = {
        "title": title, "summary": summary,
        "rounds": [asdict(r) | {"requests_per_s": r.requests_per_s, "connections_per_s": r.connections_per_s}
                   for r in rounds]}
    return section, raw_scenario, any_failed


if __name__ == "__main__":
    sys.exit(main())
