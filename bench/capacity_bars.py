"""The bars of `surge capacity` (issue 13), measured with the default step lengths.

    flock /work/shared/notes/bench.lock .venv/bin/python bench/capacity_bars.py [known|sweep|nginx ...]

known: against `surge serve --service-time 2ms --concurrency 4 -w 1` and
       `--service-time 5ms --concurrency 2`, the search's max_rate over the
       capacity measured independently (a closed run of 64 connections,
       counted by the server's own clock); and the whole search's time.
sweep: the closed sweep 1..64 against `--service-time 1ms --concurrency 8`:
       usl.x_max over the measured ceiling, n_star, what limits it.
nginx: the search against nginx with an SLO it meets easily: limited_by, and
       max_rate against what nginx counted (stub_status) in the last passing step.
Prints one line per bar, with the machine's load average before and after.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from surge.serve.server import ServeProcess  # noqa: E402

PY = sys.executable


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def served_capacity(server: ServeProcess, seconds: float = 6.0) -> float:
    run = subprocess.Popen([PY, "-m", "surge", "run", server.url + "/", "-c", "64", "-w", "1", "-d",
                            f"{seconds + 2:.0f}s", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    first = server.status()
    time.sleep(seconds)
    last = server.status()
    run.wait()
    return (last["requests"] - first["requests"]) / ((last["now_monotonic_ns"] - first["now_monotonic_ns"]) / 1e9)


def capacity(url: str, *args: str) -> tuple[dict, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "capacity.json")
        started = time.monotonic()
        result = subprocess.run([PY, "-m", "surge", "capacity", url, *args, "--json", out, "-q"],
                                capture_output=True, text=True)
        took = time.monotonic() - started
        if not os.path.exists(out):
            raise SystemExit(f"surge capacity failed ({result.returncode}): {result.stderr}")
        with open(out) as handle:
            document = json.load(handle)["capacity"]
        for step in document["steps"]:       # what each step found and why, for the record
            p99 = (step.get("percentiles_us") or {}).get("p99")
            print(f"    {step['rate']:>10,.1f}/s achieved {step['achieved_rate']:>9,.1f}/s p99 "
                  f"{(p99 or 0) / 1000:8.2f}ms {step['verdict']:<12} {step['reason']}", flush=True)
        return document, took, result.returncode


def known() -> None:
    for service_time, concurrency, nominal in (("2ms", 4, 2000), ("5ms", 2, 400)):
        with ServeProcess(service_time=service_time, concurrency=concurrency, workers=1) as server:
            measured = served_capacity(server)
            before = load()
            cap, took, code = capacity(server.url + "/", "--slo", "p99 < 50ms")
            ratio = (cap["max_rate"] or 0) / measured
            print(f"known {service_time}/{concurrency} (nominal {nominal}/s): measured capacity {measured:,.1f}/s, "
                  f"max_rate {cap['max_rate']} bracket {cap['bracket']} limited_by {cap['limited_by']} "
                  f"-> {ratio * 100:.1f}% (bar 90-102%) {'MET' if 0.9 <= ratio <= 1.02 else 'NOT MET'}; "
                  f"search {took:.0f}s over {len(cap['steps'])} steps (bar < 240s for 2ms/4), exit {code}; "
                  f"{before} / {load()}", flush=True)


def sweep() -> None:
    with ServeProcess(service_time="1ms", concurrency=8, workers=1) as server:
        measured = served_capacity(server)
        before = load()
        cap, took, code = capacity(server.url + "/", "--model", "closed", "--concurrency", "1..64")
        usl = cap["usl"]
        ok = abs(usl["x_max"] / measured - 1) <= 0.15 and (usl["n_star"] is None or usl["n_star"] >= 6) \
            and usl["limited_by"] == "contention"
        print(f"sweep 1ms/8: measured ceiling {measured:,.0f}/s, points "
              f"{[(p['concurrency'], round(p['throughput'])) for p in usl['points']]}, x_max {usl['x_max']:,.0f} "
              f"({usl['x_max'] / measured * 100:.1f}%), n_star {usl['n_star']}, sigma {usl['sigma']:.4g}, "
              f"kappa {usl['kappa']:.4g}, R2 {usl['r2']:.4f}, limited_by {usl['limited_by']} -> "
              f"{'MET' if ok else 'NOT MET'}; {took:.0f}s, exit {code}; {before} / {load()}", flush=True)


def nginx_bar() -> None:
    from nginx import Nginx

    with Nginx() as server:
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.time(), server.requests()))
                time.sleep(0.25)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        before = load()
        try:
            cap, took, code = capacity(server.url, "--slo", "p99 < 100ms", "--from", "2000", "--max-time", "5m")
        finally:
            stop.set()
            thread.join()
        passing = [s for s in cap["steps"] if s["verdict"] == "pass"]
        line = f"nginx: limited_by {cap['limited_by']}, max_rate {cap['max_rate']}, answer: {cap['answer']}"
        if passing:
            last = passing[-1]
            start = datetime.datetime.fromisoformat(last["result"]["started_at"]).timestamp()
            warmup = cap["settings"]["warmup_s"]
            # the measured window's interior (started_at has whole seconds)
            t0, t1 = start + warmup + 1.5, start + warmup + last["window_s"] - 0.5
            inside = [(t, n) for t, n in samples if t0 <= t <= t1]
            served = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) > 1 else None
            ok = cap["limited_by"] == "generator" or (served is not None and cap["max_rate"] <= served * 1.01)
            line += (f"; last passing step offered {last['rate']:,.0f}/s, nginx served {served or 0:,.0f}/s "
                     f"(stub_status) -> {'MET' if ok else 'NOT MET'}")
        print(f"{line}; {took:.0f}s, exit {code}; {before} / {load()}", flush=True)


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["known", "sweep", "nginx"]
    for name in wanted:
        {"known": known, "sweep": sweep, "nginx": nginx_bar}[name]()
