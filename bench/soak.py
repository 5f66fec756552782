"""Long runs (issue 15 item 5), not in CI.

    flock /work/shared/notes/bench.lock nice -n -5 .venv/bin/python bench/soak.py real [--minutes 20] [--rate 20000]
    nice .venv/bin/python bench/soak.py synthetic [--hours 24] [--workers 2]

real: `surge run --rate R -d M min -w 2` against nginx, sampling every 10 s the
RSS (/proc/PID/statm) and open descriptors (/proc/PID/fd: sockets and the rest)
of the supervisor and each worker; the bar: each grows < 2 MiB after the first
minute, descriptors flat.  "Flat": the non-socket ones exactly; the sockets
(a worker's connections) do not creep up: their floor over the last third of
the run is at most twice the floor over the first third after minute 1,
plus SOCKET_SLACK (a leak raises the floor for good: 147 -> 1,015 in 20 min
was the symptom this looks for; the pool the rate needs itself varied
63..223 a worker from minute to minute in a 20-min run at 20,000/s).  Their peaks are not the bar: a stall of the machine queues due
requests, the open model opens connections on demand for them (up to the
maximum), and those are closed again after its idle timeout (15 s).

synthetic: a run of H hours of per-second snapshots from W workers fed to the
supervisor's record (surge.run.merge.RunRecord.add_tick, as the supervisor
does; the live point of each second made as live progress makes it) faster
than real time, then the result made and written; the bar: peak memory
< 200 MB and the result < 100 MB.  The snapshots are shaped like the engine's
(one taken from a real 1-s run against nginx), their counters growing and their
histograms drawn fresh each second.
"""
from __future__ import annotations

import argparse
from array import array
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nginx import Nginx  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB


def fds(pid: int) -> tuple[int, int]:
    """(sockets, other descriptors) open in pid."""
    sockets = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:             # closed meanwhile
            continue
        if link.startswith("socket:"):
            sockets += 1
        else:
            other += 1
    return sockets, other


SOCKET_SLACK = 16


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def real(minutes: float, rate: int) -> int:
    with Nginx() as server, tempfile.TemporaryDirectory(prefix="surge-soak-") as tmp:
        before = server.requests()
        proc = subprocess.Popen([sys.executable, "-m", "surge", "run", server.url, "--rate", str(rate),
                                 "-d", f"{int(minutes * 60)}s", "-w", "2", "-q",
                                 "--json", "r.json"], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        while len(children(proc.pid)) < 2:
            if proc.poll() is not None:
                print(f"real: surge exited {proc.returncode} before its workers started: {proc.stderr.read()[-500:]}")
                return 1
            time.sleep(0.05)
        pids = {"supervisor": proc.pid, **{f"worker {i}": pid for i, pid in enumerate(children(proc.pid))}}
        t0 = time.monotonic()
        samples = []            # (t_s, {name: (rss_kib, (sockets, other fds))})
        while proc.poll() is None:
            try:
                samples.append((time.monotonic() - t0, {name: (rss_kib(pid), fds(pid)) for name, pid in pids.items()}))
            except (OSError, IndexError):
                break
            time.sleep(10)
        _, err = proc.communicate()
        served = server.requests() - before
        result = json.loads(Path(tmp, "r.json").read_text())
        size = Path(tmp, "r.json").stat().st_size
    after_minute = [s for t, s in samples if t >= 60]
    ok = proc.returncode == 0 and len(after_minute) >= 2
    totals = result["totals"]
    print(f"real: {minutes:g} min at --rate {rate}: exit {proc.returncode}, {totals['requests']} requests "
          f"(nginx {served}), result {size / 1e6:.2f} MB, {len(result['timeseries'])} points, "
          f"{totals.get('connections_opened')} connections opened, {totals.get('dropped', 0)} dropped")
    third = max(1, len(after_minute) // 3)
    for name in pids:
        if len(after_minute) < 2:
            break
        rss = [s[name][0] for s in after_minute]
        sockets = [s[name][1][0] for s in after_minute]
        other = [s[name][1][1] for s in after_minute]
        growth = rss[-1] - rss[0]
        early_floor, late_floor = min(sockets[:third]), min(sockets[-third:])
        ok = ok and growth < 2048 and max(other) == min(other) and late_floor <= 2 * early_floor + SOCKET_SLACK
        print(f"  {name}: RSS {rss[0] / 1024:.1f} -> {rss[-1] / 1024:.1f} MiB after the first minute "
              f"(growth {growth / 1024:+.2f} MiB, max {max(rss) / 1024:.1f}); other fds {other[0]} -> {other[-1]} "
              f"({min(other)}..{max(other)}); sockets {sockets[0]} -> {sockets[-1]} ({min(sockets)}..{max(sockets)}, "
              f"floor {early_floor} in the first third, {late_floor} in the last)")
    for name in pids:
        if name != "supervisor":
            print(f"  {name} sockets, each minute: {[s[name][1][0] for t, s in samples if t >= 60][::6]}")
    if proc.returncode:
        print(err[-2000:])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def template_snapshot() -> dict:
    """One real tick of a 2-s run against nginx, as the supervisor receives it."""
    from surge.plan.build import build_workload
    from surge.plan.options import RunOptions
    from surge.run.supervisor import run_workload

    with Nginx() as server:
        built = build_workload(server.url, RunOptions(duration_ns=2_000_000_000, connections=4, workers=1))
        record = run_workload(built.workload)
    worker = record.workers[0]
    return worker.ticks.get(1) or worker.kept


def synthetic(hours: float, workers: int) -> int:
    from surge.core._histogram import Histogram
    from surge.plan.build import build_workload
    from surge.plan.options import RunOptions
    from surge.report.outputs import write_json
    from surge.run.merge import RunRecord, WorkerRecord, live_point
    from surge.run.segment import WHOLE

    template = template_snapshot()
    seconds = int(hours * 3600)
    built = build_workload("http://127.0.0.1:9/", RunOptions(duration_ns=seconds * 1_000_000_000, connections=64,
                                                             workers=workers))
    record = RunRecord(built.workload, [WorkerRecord(i) for i in range(workers)], {})
    record.segment = WHOLE
    record.start_ns = time.monotonic_ns()
    rng = random.Random(15)
    rate = 10_000                   # requests a second per worker (20,000/s for two)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    hist = Histogram()
    for k in range(1, seconds + 1):
        for w in record.workers:
            quarters = []
            hist.reset_counts()
            for q in range(1, 4):       # the second so far at each quarter (not reset)
                hist.record_many(array("q", [int(rng.lognormvariate(4.5, 0.6)) + 1 for _ in range(50)]))
                quarters.append((k * 4 - 4 + q, hist.to_sparse()))
            hist.record_many(array("q", [int(rng.lognormvariate(4.5, 0.6)) + 1 for _ in range(50)]))
            latency = hist.to_sparse()
            usage = {**template["usage"], "user_s": k * 0.3, "sys_s": k * 0.2, "rss_kb": 22000, "max_rss_kb": 22000}
            flows = template["flows"]
            steps = [(k * rate, 0, 0, step[3], {200: k * rate}, latency) for step in flows["steps"]]
            snap = {**template, "completed": k * rate, "bytes_in": k * rate * 38, "bytes_out": k * rate * 66,
                    "statuses": {200: k * rate}, "latency": latency, "usage": usage, "worker": w.index,
                    "quarters": quarters, "flows": {**flows, "steps": steps,
                                                    "scenarios": [(k * rate, k * rate, 0)]}}
            if k < seconds:
                record.add_tick(w, k, snap)
            else:                       # the last second is the Final's, as from a worker
                record.add_final(w, snap, record.start_ns + seconds * 1_000_000_000)
        if k < seconds:
            live_point(record, k)       # live progress / Prometheus / the journal each second
        if k % 3600 == 0:
            print(f"  {k // 3600} h fed: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
                  f"now {rss_kib(os.getpid()) / 1024:.0f} MiB, {time.monotonic() - t0:.0f} s", flush=True)
    result = record.to_result()
    with tempfile.TemporaryDirectory(prefix="surge-soak-") as tmp:
        path = os.path.join(tmp, "r.json")
        write_json(result, path)
        size = os.path.getsize(path)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = len(record.series)
    exact = seconds * rate * workers
    recorded = seconds * 200 * workers          # what each second's histograms hold (4 x 50 drawn)
    ok = (peak_mib < 200 and size < 100e6 and result["totals"]["requests"] == exact
          and result["latency"]["count"] == sum(p["requests"] for p in result["timeseries"]) == recorded)
    print(f"synthetic: {hours:g} h x {workers} workers fed in {time.monotonic() - t0:.0f} s: peak memory "
          f"{peak_mib:.0f} MiB (at the start {baseline_kib / 1024:.0f} MiB), result {size / 1e6:.1f} MB, "
          f"{len(result['timeseries'])} points, {len(result.get('samples') or [])} samples, {kept} seconds and blocks kept, "
          f"totals.requests {result['totals']['requests']} (exact: {exact}), latency count {result['latency']['count']} "
          f"(recorded: {recorded}): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("real")
    r.add_argument("--minutes", type=float, default=20)
    r.add_argument("--rate", type=int, default=20_000)
    s = sub.add_parser("synthetic")
    s.add_argument("--hours", type=float, default=24)
    s.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    return real(args.minutes, args.rate) if args.mode == "real" else synthetic(args.hours, args.workers)


if __name__ == "__main__":
    sys.exit(main())
