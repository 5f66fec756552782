"""The fixed cost of one surge run: `surge run URL -n 1 -q -w 1 --json FILE`
against a throwaway nginx, the CPU (user + sys of the whole process tree) and
the wall time from spawn to exit, as bench/versus_wrk.py counts them in every
round (so each 8-s round carries it once).

    .venv/bin/python bench/fixed_cost.py                       # this checkout, 20 runs
    .venv/bin/python bench/fixed_cost.py --runs 30 \\
        --surge-cmd "/work/main/.venv/bin/python -m surge" \\
        --surge-cmd ".venv/bin/python -m surge"                 # A/B, interleaved run by run

Several --surge-cmd are run in turn, run after run, so a machine that gets
busier meanwhile weighs on each alike.  Prints the medians; wrap it in
`flock /work/shared/notes/bench.lock` on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from nginx import Nginx


def one_run(command: list[str], json_path: str) -> tuple[float, float, float]:
    """(user s, sys s, wall s) of one run: its process tree's rusage, spawn to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command + ["--json", json_path], check=True, stdout=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL)
    wall_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, wall_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command (default 20), after one warm-up")
    parser.add_argument("--surge-cmd", action="append", default=None,
                        help=f"how to start surge (repeatable; default: {sys.executable} -m surge)")
    args = parser.parse_args(argv)
    commands = args.surge_cmd or [f"{shlex.quote(sys.executable)} -m surge"]
    samples: dict[str, list[tuple[float, float, float]]] = {c: [] for c in commands}
    with Nginx() as server, tempfile.TemporaryDirectory(prefix="surge-fixed-") as tmp:
        json_path = os.path.join(tmp, "result.json")
        for i in range(args.runs + 1):
            for command in commands:
                sample = one_run(shlex.split(command) + ["run", server.url, "-n", "1", "-q", "-w", "1"], json_path)
                if i:                       # the first round warms the page cache
                    samples[command].append(sample)
    for command, runs in samples.items():
        user = statistics.median(u for u, _, _ in runs)
        system = statistics.median(s for _, s, _ in runs)
        cpu = statistics.median(u + s for u, s, _ in runs)
        wall = statistics.median(w for _, _, w in runs)
        print(f"{command}: CPU {cpu * 1e3:.1f} ms (user {user * 1e3:.1f}, sys {system * 1e3:.1f}), "
              f"wall {wall * 1e3:.1f} ms; medians of {len(runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
