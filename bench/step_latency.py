"""Corrected latency along an open-model iteration (issue 12 item 6's bar):
under a 1-s stall every 5 s, a 3-step flow's corrected p99 for steps 2 and 3
reflects the stall (within 10% of what the stall model predicts) while their
uncorrected p99 stays low.

    python bench/step_latency.py [--rate 100] [--duration 10s] [--rounds 3] [--write]

Target: `surge serve --stall 1s --stall-every 5s` (every response due inside a
stall window is held to its end; the windows are known from the server's
status).  Client: `-w 1`, an open-model plan of three GETs with a think time
of 10..30 ms between them, enough virtual users that none is missing when a
stall holds a second of arrivals.  Each round is launched so that the run
starts ~3 s into a 5-s period: its stalls then lie wholly inside the run.

The stall model (flows.pxi chain_intended: a later step is due at its
predecessor's intended start + that step's best time + the think time, so
whatever held a step back stays in every later step): an iteration arriving
φ into a stall has every step delayed by (stall - φ), and one arriving a
little before a stall has the later steps whose send falls into it delayed
to its end too.  `stall_model` computes that for the same schedule and think
times (a share stall / period = 20% of arrivals fall in a stall, spread
evenly over it, because the open model's arrivals are a schedule, not
random: p99 = 950 ms for step 1; the later steps' sends that fall into a
stall add ~0.4% each, 980 and 991 ms).  Uncorrected, a later step is held
only when its own send falls inside a stall: ~0.4%, under the 1% a p99 sees.
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
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from surge.serve.server import ServeProcess  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
from results_file import replace_section, section_head  # noqa: E402

BEGIN, END = "<!-- step-latency -->", "<!-- /step-latency -->"
STALL_S, EVERY_S = 1.0, 5.0
START_PHASE_S = 2.6          # launch here in the period: the run starts ~0.4 s later, 2 s after a stall
THINK_S = (0.010, 0.030)     # the plan's think: 10ms..30ms
PERCENTILES = ("90", "95", "99")

PLAN = """\
name: stalled-chain
target: {url}
load: {{model: open, rate: {rate}, duration: {duration}, max_vus: {vus}}}
scenarios:
  - name: chain
    steps:
      - {{name: first, request: GET /first, think: 10ms..30ms}}
      - {{name: second, request: GET /second, think: 10ms..30ms}}
      - {{name: third, request: GET /third}}
"""


def stall_model(rate: float, duration_s: float, *, stall_s: float = STALL_S, every_s: float = EVERY_S,
                think_s: tuple[float, float] = THINK_S, steps: int = 3, start_phase_s: float = START_PHASE_S + 0.4,
                seed: int = 12, rule: str = "best") -> list[tuple[list[float], list[float]]]:
    """The stall model, computed: each scheduled arrival (i / rate) runs the
    chain against a server that answers at once outside a stall and at a
    stall's end inside one, with think times drawn from think_s; each step's
    intended instant follows flows.pxi chain_intended (predecessor's intended
    start + its best time, 0 here, + the think time; rule="measured": the
    rejected rule, its measured latency instead of its best time).  Per step:
    (corrected, uncorrected) latencies in µs, one per iteration."""
    import random
    rng = random.Random(seed)

    def answered_at(t: float) -> float:
        phase = (start_phase_s + t) % every_s
        return t - phase + stall_s if phase < stall_s else t

    out = [([], []) for _ in range(steps)]
    for i in range(int(rate * duration_s)):
        intended = sent = i / rate
        for k in range(steps):
            done = answered_at(sent)
            if done > duration_s:
                break                       # still in flight at the stop: not counted
            out[k][0].append((done - intended) * 1e6)
            out[k][1].append((done - sent) * 1e6)
            think = rng.uniform(*think_s)
            service = done - sent if rule == "measured" else 0.0
            intended, sent = intended + service + think, done + think
    return out


def percentile_us(values: list[float], q: float) -> float:
    """HdrHistogram's rank rule on exact values: the smallest value with at least q% at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def plan_text(url: str, rate: float, duration: str) -> str:
    # every arrival of a stall is held at once, plus the ones still in their chain
    vus = int(rate * (STALL_S + 1.0)) + 50
    return PLAN.format(url=url, rate=f"{rate:g}", duration=duration, vus=vus)


def wait_for_phase(server: ServeProcess, phase_s: float) -> None:
    """Sleep until the server's stall period is at phase_s (windows: [k*every, k*every + stall))."""
    started_ns = server.status()["started_at_monotonic_ns"]
    now_phase_s = ((time.monotonic_ns() - started_ns) / 1e9) % EVERY_S
    time.sleep((phase_s - now_phase_s) % EVERY_S)


def run_round(server: ServeProcess, rate: float, duration: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="surge-step-latency-") as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(plan_text(server.url, rate, duration))
        result_path = Path(tmp) / "result.json"
        wait_for_phase(server, START_PHASE_S)
        proc = subprocess.run([sys.executable, "-m", "surge", "run", str(plan), "-w", "1", "-q",
                               "--json", str(result_path)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"surge failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return json.loads(result_path.read_text())


def step_rows(result: dict) -> list[dict]:
    rows = []
    for step in result["steps"]:
        corrected = step["latency"]["percentiles"]
        uncorrected = step["latency_uncorrected"]["percentiles"]
        rows.append({"step": step["step"], "requests": step["requests"],
                     "corrected": {q: corrected[q] for q in ("50", *PERCENTILES)},
                     "uncorrected": {q: uncorrected[q] for q in ("50", *PERCENTILES)}})
    return rows


def _ms(us: float) -> str:
    return f"{us / 1000:,.1f}"


def predictions(rate: float, duration_s: float, rule: str = "best") -> list[dict]:
    """Per step, the model's corrected percentiles and uncorrected p99 (µs)."""
    rows = []
    for corrected, uncorrected in stall_model(rate, duration_s, rule=rule):
        rows.append({"corrected": {q: percentile_us(corrected, float(q)) for q in ("50", *PERCENTILES)},
                     "uncorrected": {q: percentile_us(uncorrected, float(q)) for q in ("50", "99")}})
    return rows


def off_percent(measured: float, model: float) -> float:
    return (measured - model) / model * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="iterations started per second")
    parser.add_argument("--duration", default="10s", help="a multiple of the 5-s stall period")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="put the table into bench/RESULTS.md")
    args = parser.parse_args()
    duration_s = float(args.duration.rstrip("s"))
    model = predictions(args.rate, duration_s)
    for i, row in enumerate(model):
        c = row["corrected"]
        print(f"model   step {i + 1}: corrected " + " ".join(f"p{q} {_ms(c[q])}" for q in PERCENTILES)
              + f" ms | uncorrected p99 {_ms(row['uncorrected']['99'])} ms")
    rejected = predictions(args.rate, duration_s, rule="measured")
    print("(the rejected rule, due at the predecessor's intended start + its measured latency, would give "
          + ", ".join(f"step {i + 1} p99 {_ms(r['corrected']['99'])} ms" for i, r in enumerate(rejected)) + ")")
    rounds = []
    with ServeProcess(stall=f"{STALL_S:g}s", stall_every=f"{EVERY_S:g}s") as server:
        for k in range(1, args.rounds + 1):
            result = run_round(server, args.rate, args.duration)
            rows = step_rows(result)
            rounds.append(rows)
            print(f"round {k}: dropped {result['totals']['dropped']}")
            for row, want in zip(rows, model):
                c, u = row["corrected"], row["uncorrected"]
                print(f"  {row['step']:<7} n={row['requests']:>5}  corrected p50 {_ms(c['50'])} "
                      + " ".join(f"p{q} {_ms(c[q])}" for q in PERCENTILES)
                      + f" ms (p99 {off_percent(c['99'], want['corrected']['99']):+.1f}% off the model)"
                      f" | uncorrected p50 {_ms(u['50'])} p99 {_ms(u['99'])} ms", flush=True)
    if args.write:
        write_results(args, model, rounds)
    return 0


def write_results(args, model: list[dict], rounds: list[list[dict]]) -> None:
    lines = section_head(BEGIN, "Corrected latency of every step (issue 12 item 6)") + [
        f"`surge serve --stall {STALL_S:g}s --stall-every {EVERY_S:g}s`, an open-model plan of 3 GETs "
        f"(think 10..30 ms) at {args.rate:g} iterations/s for {args.duration}, `-w 1`, {len(rounds)} rounds "
        "(median shown). Model: the stall model computed (bench/step_latency.py `stall_model`).", "",
        "| step | corrected p90 / p95 / p99 (ms) | model p90 / p95 / p99 (ms) | p99 off the model | "
        "uncorrected p50 / p99 (ms) | model uncorrected p99 (ms) |", "|---|---|---|---|---|---|"]
    for i, name in enumerate(row["step"] for row in rounds[0]):
        med = {kind: {q: statistics.median(r[i][kind][q] for r in rounds) for q in ("50", *PERCENTILES)}
               for kind in ("corrected", "uncorrected")}
        want = model[i]
        lines.append(f"| {name} | {' / '.join(_ms(med['corrected'][q]) for q in PERCENTILES)} | "
                     f"{' / '.join(_ms(want['corrected'][q]) for q in PERCENTILES)} | "
                     f"{off_percent(med['corrected']['99'], want['corrected']['99']):+.1f} % | "
                     f"{_ms(med['uncorrected']['50'])} / {_ms(med['uncorrected']['99'])} | "
                     f"{_ms(want['uncorrected']['99'])} |")
    lines += ["", "Bar: steps 2 and 3 corrected p99 within 10 % of the model, uncorrected p99 low.", "", END]
    print(f"(written to {replace_section(BEGIN, END, lines)})")


if __name__ == "__main__":
    sys.exit(main())
