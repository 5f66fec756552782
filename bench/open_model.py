"""Open-model benchmarks (issue 3's bars), against nginx, same run.

    python bench/open_model.py                  # 3 alternating rounds + a 60-s accuracy run
    python bench/open_model.py --rounds 1 --accuracy 20s

1. Cost of the open model: closed `-c 1 -w 1` first (one connection ping-pong
   runs at some rate R on loopback), then open `--rate R -w 1` against the same
   nginx: the same throughput, so client CPU per request compares directly
   (rusage of each tool's process tree / requests counted by nginx).
2. Schedule accuracy: `--rate 20000` for 60 s; nginx's count against
   rate x duration (bar: within 0.2 %).

Writes its table into bench/RESULTS.md between the open-model markers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from results_file import replace_section, section_head  # noqa: E402
from nginx import Nginx, nginx_available  # noqa: E402

sys.path.insert(0, str(BENCH_DIR.parent))
from surge.serve.server import ServeProcess  # noqa: E402

SURGE = [sys.executable, "-m", "surge", "run"]
BEGIN, END = "<!-- open-model -->", "<!-- /open-model -->"


def measure(target, args: list[str]) -> dict:
    """Run surge with args; requests from the target's own counter, CPU from
    wait4 (whole process tree).  target: Nginx or ServeProcess."""
    count = target.requests if isinstance(target, Nginx) else target.served
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        before = count()
        proc = subprocess.Popen(SURGE + [target.url, *args, "-q", "--json", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        time.sleep(0.2)
        served = count() - before
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"surge failed: {proc.stderr.read().decode()[-2000:]}")
        with open(path) as f:
            result = json.load(f)
    return {"served": served, "cpu_us": (usage.ru_utime + usage.ru_stime) * 1e6 / served,
            "user_us": usage.ru_utime * 1e6 / served, "sys_us": usage.ru_stime * 1e6 / served,
            "duration_s": result["totals"]["duration_s"], "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="8s")
    parser.add_argument("--accuracy", default="60s", help="length of the 20k/s accuracy run (0 to skip)")
    args = parser.parse_args()
    ok, reason = nginx_available()
    if not ok:
        print(f"open_model: nginx is not available: {reason}", file=sys.stderr)
        return 2
    duration_s = float(args.duration.rstrip("s"))
    rows = []

    def same_rate_round(label, target, closed_args, k):
        closed = measure(target, closed_args + ["-w", "1", "-d", args.duration])
        rate = round(closed["served"] / duration_s)
        opened = measure(target, ["--rate", str(rate), "-w", "1", "-d", args.duration])
        rows.append((f"{k} ({label})", rate, closed, opened))
        print(f"round {k} {label}: closed {closed['served'] / duration_s:,.0f}/s {closed['cpu_us']:.2f} µs/req | "
              f"open --rate {rate} {opened['served'] / duration_s:,.0f}/s {opened['cpu_us']:.2f} µs/req "
              f"(ratio {opened['cpu_us'] / closed['cpu_us']:.2f})", flush=True)

    # ~20,000/s: 24 connections against a target that answers in ~1.2 ms.
    with ServeProcess(delay="1ms", workers=1) as slow_target:
        for k in range(1, args.rounds + 1):
            same_rate_round("surge serve --delay 1ms, closed -c 24", slow_target, ["-c", "24"], k)
    with Nginx() as nginx:
        for k in range(1, args.rounds + 1):
            same_rate_round("nginx, closed -c 1", nginx, ["-c", "1"], k)
        accuracy = None
        if args.accuracy not in ("0", "0s"):
            seconds = float(args.accuracy.rstrip("s"))
            run = measure(nginx, ["--rate", "20000", "-d", args.accuracy])
            expected = 20_000 * seconds
            accuracy = (seconds, run["served"], expected, run)
            print(f"accuracy: {run['served']:,} served of {expected:,.0f} intended "
                  f"({(run['served'] - expected) / expected * 100:+.3f} %)", flush=True)
    write_results(args, rows, accuracy)
    return 0


def write_results(args, rows, accuracy) -> None:
    ratio = statistics.median(o["cpu_us"] / c["cpu_us"] for _, _, c, o in rows)
    ratio_20k = statistics.median(o["cpu_us"] / c["cpu_us"] for k, _, c, o in rows if "delay" in k)
    lines = section_head(BEGIN, "Open model (issue 3)") + [
             "Same throughput, same target, one worker each: the closed model sets the rate (24 connections "
             "against `surge serve --delay 1ms`: ~20,000/s; one connection against nginx: its ping-pong rate), "
             "then the open model is run at that rate. CPU = rusage of surge's process tree / the target's count.", "",
             "| round | rate | closed CPU µs/req (user/sys) | open CPU µs/req (user/sys) | open / closed |",
             "|---|---|---|---|---|"]
    for k, rate, c, o in rows:
        lines.append(f"| {k} | {rate:,}/s | {c['cpu_us']:.2f} ({c['user_us']:.2f}/{c['sys_us']:.2f}) | "
                     f"{o['cpu_us']:.2f} ({o['user_us']:.2f}/{o['sys_us']:.2f}) | {o['cpu_us'] / c['cpu_us']:.2f} |")
    lines += ["", f"Median open / closed CPU per request: **{ratio_20k:.2f}** at ~20,000/s, {ratio:.2f} over all "
              f"rounds (bar ≤ 1.15).", ""]
    if accuracy:
        seconds, served, expected, run = accuracy
        points = run["result"]["timeseries"]
        worst = max(abs(p["requests"] - 20_000) / 20_000 for p in points[1:] if p["t"] == int(p["t"]))
        lines += [f"Accuracy: `--rate 20000 -d {args.accuracy}`: nginx served **{served:,}** of {expected:,.0f} "
                  f"intended (**{(served - expected) / expected * 100:+.3f} %**, bar ± 0.2 %); worst whole second "
                  f"after the first: {worst * 100:.2f} % off 20,000 (bar ± 2 %).", ""]
    lines.append(END)
    path = replace_section(BEGIN, END, lines)
    print(f"(written to {path})")


if __name__ == "__main__":
    sys.exit(main())
