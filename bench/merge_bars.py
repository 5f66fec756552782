"""The bars of `surge merge` (issue 14, items 4-7), against one nginx on
loopback that counts (stub_status):

    flock /work/shared/notes/bench.lock nice -n -5 .venv/bin/python bench/merge_bars.py [N-ROUNDS]

Three instances, --segment 0/3 .. 2/3, -w 1 each, one --start-at, their
result files given to `surge merge`:

quota  -n 30000: each part's totals.requests, the merged totals.requests and
       histogram count (decoded), nginx's count.
rate   --rate 6000 -d 5s: nginx's count against 30,000, and each merged
       per-second point after the first against 6,000 (the worst one shown).
Prints one line per bar and round, with the load average before and after.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from surge.core._histogram import Histogram  # noqa: E402
from tests.support.segment_nginx import LoggingNginx  # noqa: E402

PY = sys.executable
SEGMENTS = 3
RATE, SECONDS = 6000, 5
START_AHEAD_S = 4.0


def load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def parts_and_merge(tmp: str, args: list[str]) -> tuple[list[dict], dict]:
    at = f"{time.time() + START_AHEAD_S:.3f}"
    procs, paths = [], []
    for i in range(SEGMENTS):
        path = os.path.join(tmp, f"part-{i}.json")
        paths.append(path)
        procs.append(subprocess.Popen([PY, "-m", "surge", "run", *args, "-w", "1", "-q", "--segment", f"{i}/{SEGMENTS}",
                                       "--start-at", at, "--json", path],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"a part failed (exit {proc.returncode}): {stderr.strip()}")
    merged_path = os.path.join(tmp, "merged.json")
    done = subprocess.run([PY, "-m", "surge", "merge", *paths, "--json", merged_path], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"surge merge failed (exit {done.returncode}): {done.stderr.strip()}")
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    with open(merged_path) as f:
        return parts, json.load(f)


def main(rounds: int) -> None:
    with LoggingNginx() as server:
        for r in range(1, rounds + 1):
            with tempfile.TemporaryDirectory(prefix="surge-merge-bars-") as tmp:
                before_load, before = load(), server.requests()
                parts, merged = parts_and_merge(tmp, [server.url, "-n", "30000", "-c", "6"])
                served = server.requests() - before
                count = Histogram.decode(merged["latency"]["hdr"]).total_count
                print(f"round {r} quota: parts {'/'.join(str(p['totals']['requests']) for p in parts)}, merged "
                      f"{merged['totals']['requests']}, histogram {count}, nginx {served} ({before_load}, {load()})",
                      flush=True)
                before_load, before = load(), server.requests()
                _, merged = parts_and_merge(tmp, [server.url, "--rate", str(RATE), "-d", f"{SECONDS}s"])
                served = server.requests() - before
                points = [p["requests"] for p in merged["timeseries"] if p["t"] > 1][:SECONDS - 1]
                worst = max(points, key=lambda n: abs(n - RATE))
                print(f"round {r} rate: nginx {served} ({(served - RATE * SECONDS) / (RATE * SECONDS):+.3%}), "
                      f"merged points after the first {points}, worst {worst} ({(worst - RATE) / RATE:+.2%}) "
                      f"({before_load}, {load()})", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
