"""The bars of execution segments (issue 14, items 1-3), against one nginx on
loopback that counts (stub_status) and logs each request's instant and URI.

    flock /work/shared/notes/bench.lock nice -n -5 .venv/bin/python bench/segment_bars.py [N-ROUNDS]

Three instances, --segment 0/3 .. 2/3, -w 1 each:

quota    -n 30000 with one --start-at: each part's totals.requests, nginx's count.
rate     --rate 6000 -d 5s with one --start-at (a URL run): nginx's count against
         30,000, and the parts' per-second points added by t (what `surge merge`
         will do) against 6,000.
rows     the same schedule as a plan with `order: unique` rows (GET /row/ID):
         nginx's count, rows used twice (must be 0), and the spread of the
         parts' first requests as nginx logged them (row r is segment r mod 3).
barrier  the rows plan through --barrier, the instances started 2 s apart:
         the same numbers.
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
from bench.nginx import free_port  # noqa: E402
from tests.support.segment_nginx import LoggingNginx  # noqa: E402

PY = sys.executable
SEGMENTS = 3
RATE, SECONDS = 6000, 5
START_AHEAD_S = 4.0


def load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_parts(argv_of, stagger_s: float = 0.0) -> list[dict]:
    """Start the three parts (each `surge run ... --json FILE`), wait, return their results."""
    with tempfile.TemporaryDirectory(prefix="surge-segment-bars-") as tmp:
        procs = []
        for i in range(SEGMENTS):
            if i and stagger_s:
                time.sleep(stagger_s)
            path = os.path.join(tmp, f"part-{i}.json")
            procs.append((path, subprocess.Popen([PY, "-m", "surge", "run", *argv_of(i), "-w", "1", "-q",
                                                  "--segment", f"{i}/{SEGMENTS}", "--json", path],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        results = []
        for path, proc in procs:
            _, stderr = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise SystemExit(f"a part failed (exit {proc.returncode}): {stderr.strip()}")
            with open(path) as f:
                results.append(json.load(f))
        return results


def start_at() -> str:
    return f"{time.time() + START_AHEAD_S:.3f}"


def per_second_sums(results: list[dict]) -> list[int]:
    """The parts' points added by t (a common start: equal t is the same second), last partial one left out."""
    by_t: dict[float, int] = {}
    for result in results:
        for point in result["timeseries"]:
            by_t[point["t"]] = by_t.get(point["t"], 0) + point["requests"]
    return [by_t[t] for t in sorted(by_t) if float(t).is_integer()]


def rows_plan(directory: str, url: str) -> str:
    rows = RATE * SECONDS + 2000
    with open(os.path.join(directory, "rows.csv"), "w") as f:
        f.write("id\n" + "".join(f"{i}\n" for i in range(rows)))
    path = os.path.join(directory, "rows.yaml")
    with open(path, "w") as f:
        f.write(f"""name: rows
target: {url}
load: {{model: open, rate: {RATE}, duration: {SECONDS}s}}
data:
  rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
scenarios:
  - name: once
    steps: [{{name: row, request: "GET /row/${{rows.id}}"}}]
""")
    return path


def row_numbers(server, served: int) -> tuple[int, int, float]:
    """(rows logged, rows used twice, spread of the parts' first requests in ms)."""
    entries = [(at, int(uri.rsplit("/", 1)[1])) for at, uri in server.log(served) if uri.startswith("/row/")]
    rows = [row for _, row in entries]
    firsts = [min(at for at, row in entries if row % SEGMENTS == s) for s in range(SEGMENTS)]
    return len(rows), len(rows) - len(set(rows)), (max(firsts) - min(firsts)) * 1000


def same_run(results) -> str:
    ids = {r["run"]["id"] for r in results}
    starts = {r["run"]["started_at_unix_ns"] for r in results}
    return "one run id, one start instant" if len(ids) == 1 and len(starts) == 1 else f"ids {ids} starts {starts}"


def main(rounds: int) -> None:
    with LoggingNginx() as server, tempfile.TemporaryDirectory() as tmp:
        plan = rows_plan(tmp, server.url)
        for round_number in range(1, rounds + 1):
            print(f"round {round_number} ({load()})")
            before = server.requests()
            at = start_at()
            results = run_parts(lambda i: [server.url, "-n", "30000", "-c", "30", "--start-at", at])
            print(f"  quota:   parts {[r['totals']['requests'] for r in results]}, nginx served "
                  f"{server.requests() - before}; {same_run(results)}")

            before = server.requests()
            at = start_at()
            results = run_parts(lambda i: [server.url, "--rate", str(RATE), "-d", f"{SECONDS}s", "--start-at", at])
            served = server.requests() - before
            sums = per_second_sums(results)
            worst = max(abs(n - RATE) / RATE for n in sums[1:]) if len(sums) > 1 else float("nan")
            print(f"  rate:    nginx served {served} ({(served - RATE * SECONDS) / (RATE * SECONDS):+.3%} of "
                  f"{RATE * SECONDS}); parts' seconds added {sums}, worst after the first {worst:.2%}; "
                  f"{same_run(results)}")

            for name, stagger_s, extra in (("rows", 0.0, lambda: ["--start-at", at]),
                                            ("barrier", 2.0, lambda: ["--barrier", barrier])):
                server.clear_log()
                before = server.requests()
                at, barrier = start_at(), f"127.0.0.1:{free_port()}"
                args = extra()
                results = run_parts(lambda i: [plan, *args], stagger_s)
                served = server.requests() - before
                logged, twice, spread_ms = row_numbers(server, served)
                print(f"  {name + ':':<8} nginx served {served} ({(served - RATE * SECONDS) / (RATE * SECONDS):+.3%}), "
                      f"rows used twice {twice} (of {logged}), first requests within {spread_ms:.0f} ms; "
                      f"{same_run(results)}")
        print(f"after ({load()})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
