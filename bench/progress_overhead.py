"""What live progress costs (issue 5's bar: <= 3% more client CPU per request
than --quiet), against nginx, alternating rounds in one run.

    python bench/progress_overhead.py [--rounds 3] [--duration 8s]

Variants, all `-c 50 -w 1`:
  quiet   `-q`: no live output (the per-second snapshots still flow: workers
          always report each second, the result's time series needs them)
  plain   progress to a pipe: one plain line per second
  rich    progress on a pseudo-terminal (`script`), the rich panel
CPU per request = rusage of the whole process tree / requests nginx counted.
Writes its table into bench/RESULTS.md between the progress markers.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from results_file import replace_section, section_head  # noqa: E402
from nginx import Nginx, nginx_available  # noqa: E402

BEGIN, END = "<!-- progress -->", "<!-- /progress -->"


def measure(nginx: Nginx, variant: str, duration: str) -> float:
    args = [sys.executable, "-m", "surge", "run", nginx.url, "-c", "50", "-w", "1", "-d", duration]
    if variant == "quiet":
        args.append("-q")
    if variant == "rich":
        # `script` gives the command a terminal, so the rich panel is drawn.
        args = ["script", "-qfec", shlex.join(args), "/dev/null"]
    before = nginx.requests()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    time.sleep(0.2)
    served = nginx.requests() - before
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant} failed: {proc.stderr.read().decode()[-1000:]}")
    return (usage.ru_utime + usage.ru_stime) * 1e6 / served


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="8s")
    args = parser.parse_args()
    ok, reason = nginx_available()
    if not ok:
        print(f"progress_overhead: nginx is not available: {reason}", file=sys.stderr)
        return 2
    variants = ["quiet", "plain"] + (["rich"] if shutil.which("script") else [])
    samples = {v: [] for v in variants}
    with Nginx() as nginx:
        for k in range(args.rounds):
            for variant in variants:
                samples[variant].append(measure(nginx, variant, args.duration))
                print(f"round {k + 1} {variant:6} {samples[variant][-1]:.2f} µs/req", flush=True)
    quiet = statistics.median(samples["quiet"])
    lines = section_head(BEGIN, "Live progress overhead (issue 5)") + [
             "nginx, `-c 50 -w 1`, alternating rounds; CPU = rusage of surge's process tree / nginx's count.", "",
             "| variant | CPU µs/req (median) | rounds | vs quiet |", "|---|---|---|---|"]
    for variant in variants:
        median = statistics.median(samples[variant])
        rounds = " / ".join(f"{x:.2f}" for x in samples[variant])
        lines.append(f"| {variant} | {median:.2f} | {rounds} | {median / quiet:.3f} |")
    lines += ["", "Bar: live progress costs ≤ 1.03× the quiet run's CPU per request.", "", END]
    replace_section(BEGIN, END, lines)
    block = "\n".join(lines)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
