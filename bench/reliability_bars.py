"""The bars of issue 15 items 1-4, against nginx on loopback (not in CI).

    flock /work/shared/notes/bench.lock nice -n -5 .venv/bin/python bench/reliability_bars.py [BAR...]

BARs: worker (a worker SIGKILLed 3 s into a 10-s run), supervisor (the
supervisor SIGKILLed: when nginx's counter stops), recover (a run SIGKILLed
after 10 s, its journal recovered), outage (nginx stopped 3 s into a 12-s run,
started 3 s later).  Default: all.  Each prints one line of numbers and PASS/FAIL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from restartable_nginx import RestartableNginx  # noqa: E402

SURGE = [sys.executable, "-m", "surge"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_s(pids: list[int]) -> float:
    """user + system CPU seconds of these processes so far (the ones still there)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def start(url: str, *args: str, cwd: str) -> subprocess.Popen:
    return subprocess.Popen([*SURGE, "run", url, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_workers(proc: subprocess.Popen, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while len(children(proc.pid)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return children(proc.pid)


def bar_worker(tmp: str) -> bool:
    """2 workers, -d 10s; worker 1 SIGKILLed 3 s in."""
    with RestartableNginx() as server:
        before = server.requests()
        proc = start(server.url, "-d", "10s", "-c", "8", "-w", "2", "-q", "--json", "r.json", cwd=tmp)
        wait_for_workers(proc, 2)
        t_launch = time.monotonic()
        time.sleep(3.0 + 0.3)           # ~0.3 s: connect and the start instant
        os.kill(children(proc.pid)[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        wall_s = time.monotonic() - t_launch
        served = server.requests() - before
    result = json.loads(Path(tmp, "r.json").read_text())
    [failed] = result["workers_failed"]
    surge_n = result["totals"]["requests"]
    # the bar: the dead worker's last second (its half of the run's second before it died) plus what was
    # in flight (-c 8: 4 connections per worker, the dead one's and the survivor's at its stop)
    points = {round(p["t"]): p for p in result["timeseries"]}
    last = points.get(failed["last_report_s"], {"requests": 0})
    allowed = last["requests"] / 2 + 8
    ok = (proc.returncode == 1 and served - surge_n <= allowed and abs(result["totals"]["duration_s"] - 10) <= 1
          and f"worker {failed['index']}" in err)
    print(f"worker: exit {proc.returncode}, duration {result['totals']['duration_s']:.3f} s (wall {wall_s:.2f} s "
          f"from the workers' fork), {failed}, nginx {served} - surge {surge_n} = {served - surge_n} "
          f"<= {allowed:.0f} (its last second + 8 in flight; it died {failed['at_s'] - failed['last_report_s']:.2f} s "
          f"after its last report): "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def bar_supervisor(tmp: str) -> bool:
    """The supervisor SIGKILLed 3 s into a run: when does nginx's counter stop growing?"""
    with RestartableNginx() as server:
        proc = start(server.url, "-d", "30s", "-c", "8", "-w", "2", "-q", cwd=tmp)
        workers = wait_for_workers(proc, 2)
        time.sleep(3.0)
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        readings = []
        while time.monotonic() - killed_at < 4.0:
            readings.append((time.monotonic() - killed_at, server.requests()))
            time.sleep(0.02)
        final = readings[-1][1]
        stopped_s = next(t for t, n in readings if n == final)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    ok = stopped_s < 2.0 and not alive
    print(f"supervisor: nginx's counter stopped growing {stopped_s:.2f} s after the SIGKILL "
          f"(read every 20 ms), workers left: {alive}: {'PASS' if ok else 'FAIL'}")
    return ok


def bar_recover(tmp: str) -> bool:
    """A 30-s run SIGKILLed after 10 s; `surge report --recover` of its journal vs nginx."""
    with RestartableNginx() as server:
        before = server.requests()
        proc = start(server.url, "-d", "30s", "-c", "8", "-w", "2", "-q", "--json", "r.json", cwd=tmp)
        wait_for_workers(proc, 2)
        time.sleep(10.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)                 # the orphans' parent-death signal
        served = server.requests() - before
    rec = subprocess.run([*SURGE, "report", "--recover", "r.json.journal", "--json", "recovered.json"],
                         cwd=tmp, capture_output=True, text=True)
    result = json.loads(Path(tmp, "recovered.json").read_text())
    got = result["totals"]["requests"]
    seconds = [p["requests"] for p in result["timeseries"] if p["t"] == int(p["t"])]
    per_second = max(seconds) if seconds else 0
    ok = rec.returncode == 0 and result.get("recovered") is True and served - got <= per_second
    print(f"recover: exit {rec.returncode}, recovered {got} of nginx's {served} (short by {served - got}, "
          f"one second's worth {per_second}), recovered={result.get('recovered')}: {'PASS' if ok else 'FAIL'}")
    return ok


def bar_outage(tmp: str) -> bool:
    """nginx stopped 3 s into a 12-s run, started again 3 s later."""
    with RestartableNginx() as server:
        proc = start(server.url, "-d", "12s", "-c", "50", "-w", "2", "-q", "--json", "r.json", cwd=tmp)
        workers = wait_for_workers(proc, 2)
        time.sleep(3.3)
        server.halt()
        cpu_before, halted_at = cpu_s([proc.pid, *workers]), time.monotonic()
        time.sleep(3.0)
        cpu_outage = (cpu_s([proc.pid, *workers]) - cpu_before) / (time.monotonic() - halted_at)
        server.resume()
        proc.communicate(timeout=60)
    result = json.loads(Path(tmp, "r.json").read_text())
    series = [(p["t"], p["requests"], p["errors"]) for p in result["timeseries"]]
    connect_errors = result["totals"]["errors"]["connect"]
    quiet = [t for t, n, _ in series if n == 0]
    resumed = [t for t, n, _ in series if quiet and t > max(quiet) and n > 0]
    ok = (proc.returncode == 0 and connect_errors > 0 and quiet and resumed and cpu_outage < 0.10
          and abs(result["totals"]["duration_s"] - 12) <= 1)
    print(f"outage: exit {proc.returncode}, duration {result['totals']['duration_s']:.3f} s, connect errors "
          f"{connect_errors}, seconds without responses {quiet}, resumed from t={resumed[:1]}, client CPU during "
          f"the outage {cpu_outage * 100:.1f}% of a core: {'PASS' if ok else 'FAIL'}")
    return ok


BARS = {"worker": bar_worker, "supervisor": bar_supervisor, "recover": bar_recover, "outage": bar_outage}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BARS]
    if unknown:
        print(f"reliability_bars: unknown bar {unknown[0]!r}; allowed: {', '.join(BARS)}", file=sys.stderr)
        return 2
    results = []
    for name in names or BARS:
        with tempfile.TemporaryDirectory(prefix=f"surge-bar-{name}-") as tmp:
            results.append(BARS[name](tmp))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
