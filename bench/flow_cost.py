"""What a test-plan flow costs the client (issue 10's bar: a 4-step flow with one
JSON extraction and a CSV feeder reaches >= 80% of single-URL requests per
client CPU-second, against the same target, same run; issue 4 asked 60%).
Issue 12's bar: the 4-step flow with cookies (the demo app's session-cookie
shop: login sets the cookie, the account page and an order answered 303 need
it, logout deletes it) reaches >= 70% of single-URL requests per CPU-second.

    python bench/flow_cost.py [--rounds 3] [--duration 8s]

Target: `surge serve --app demo -w 1`; both clients `-w 1`, 50 connections /
50 virtual users, no think time, alternating rounds.  Requests are counted by
the target (its status path); CPU is the rusage of surge's process tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
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

BEGIN, END = "<!-- flow-cost -->", "<!-- /flow-cost -->"
PLAN = """
name: flow-cost
target: {url}
load: {{model: closed, vus: 50, duration: {duration}}}
data:
  users: {{file: users.csv, order: sequential}}
scenarios:
  - name: shop
    steps:
      - name: login
        request: POST /login
        json: {{user: "${{users.name}}", password: "${{users.password}}"}}
        extract: {{token: {{json: "$.token"}}}}
      - name: dashboard
        request: GET /dashboard
        headers: {{Authorization: "Bearer ${{token}}"}}
      - name: item
        request: GET /items/${{random.int(1,1000)}}
      - name: logout
        request: POST /logout
        headers: {{Authorization: "Bearer ${{token}}"}}
"""
COOKIE_PLAN = """
name: flow-cost-cookies
target: {url}
load: {{model: closed, vus: 50, duration: {duration}}}
data:
  users: {{file: users.csv, order: sequential}}
scenarios:
  - name: web
    steps:
      - name: login
        request: POST /web/login
        json: {{user: "${{users.name}}", password: "${{users.password}}"}}
      - name: account
        request: GET /web/account
      - name: order
        request: POST /web/orders
        json: {{item: "${{random.int(1,1000)}}"}}
      - name: logout
        request: POST /web/logout
"""


def measure(server: ServeProcess, args: list[str]) -> tuple[float, int]:
    """(requests per client CPU-second, requests) for one surge run."""
    before = server.served()
    proc = subprocess.Popen([sys.executable, "-m", "surge", "run", *args, "-w", "1", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    time.sleep(0.2)
    served = server.served() - before
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"surge failed: {proc.stderr.read().decode()[-1500:]}")
    return served / (usage.ru_utime + usage.ru_stime), served


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="8s")
    args = parser.parse_args()
    single, flow, cookies = [], [], []
    with tempfile.TemporaryDirectory() as tmp, ServeProcess(app="demo", workers=1) as server:
        shutil.copy(REPO / "examples" / "users.csv", Path(tmp, "users.csv"))
        plan = Path(tmp, "flow.yaml")
        plan.write_text(PLAN.format(url=server.url, duration=args.duration))
        cookie_plan = Path(tmp, "cookies.yaml")
        cookie_plan.write_text(COOKIE_PLAN.format(url=server.url, duration=args.duration))
        for k in range(args.rounds):
            single.append(measure(server, [server.url.rstrip("/") + "/items/5", "-c", "50", "-d", args.duration]))
            flow.append(measure(server, [str(plan)]))
            cookies.append(measure(server, [str(cookie_plan)]))
            print(f"round {k + 1}: single URL {single[-1][0]:,.0f} req/CPU-s ({single[-1][1]:,} requests) | "
                  f"4-step flow {flow[-1][0]:,.0f} req/CPU-s ({flow[-1][1]:,}), ratio "
                  f"{flow[-1][0] / single[-1][0]:.2f} | with cookies {cookies[-1][0]:,.0f} req/CPU-s "
                  f"({cookies[-1][1]:,}), ratio {cookies[-1][0] / single[-1][0]:.2f}", flush=True)
    ratio = statistics.median(f[0] / s[0] for s, f in zip(single, flow))
    cookie_ratio = statistics.median(c[0] / s[0] for s, c in zip(single, cookies))
    lines = section_head(BEGIN, "Flow cost (issue 4)") + [
             "Target `surge serve --app demo -w 1`; single URL `GET /items/5 -c 50` vs a 4-step flow (login with a "
             "CSV user and a JSON extraction of the token, dashboard and logout with the bearer token, an item) with "
             "50 VUs; `-w 1` each; requests counted by the target, CPU from rusage of surge's process tree. "
             "With cookies (issue 12): the session-cookie shop, 50 VUs (login sets `session`, the account page and "
             "`POST /web/orders` (303) send it, logout deletes it; with follow_redirects the 303 adds one hop).", "",
             "| round | single URL req/CPU-s | flow req/CPU-s | flow / single | cookie flow req/CPU-s | cookies / single |",
             "|---|---|---|---|---|---|"]
    for k, (s, f, c) in enumerate(zip(single, flow, cookies), 1):
        lines.append(f"| {k} | {s[0]:,.0f} | {f[0]:,.0f} | {f[0] / s[0]:.2f} | {c[0]:,.0f} | {c[0] / s[0]:.2f} |")
    lines += ["", f"Median flow / single: **{ratio:.2f}** (bar ≥ 0.80); with cookies: **{cookie_ratio:.2f}** "
                  f"(bar ≥ 0.70).", "", END]
    replace_section(BEGIN, END, lines)
    block = "\n".join(lines)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
