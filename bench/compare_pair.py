"""One real pair for `surge compare` (issue 5): same configuration twice must be
"no significant change"; a target made 10% slower must be caught (exit 3).

    python bench/compare_pair.py [--duration 10s]

Targets: `surge serve --delay 2ms` and `--delay 2.2ms` (10% slower), closed
model `-c 8 -w 1`. Writes its table into bench/RESULTS.md between markers.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from surge.serve.server import ServeProcess  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
from results_file import replace_section, section_head  # noqa: E402

BEGIN, END = "<!-- compare -->", "<!-- /compare -->"


def surge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True)


def run_once(url: str, duration: str, path: str) -> dict:
    done = surge("run", url, "-c", "8", "-w", "1", "-d", duration, "-q", "--json", path)
    if done.returncode != 0:
        raise SystemExit(f"surge run failed: {done.stderr[-1000:]}")
    return json.loads(Path(path).read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="10s")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: str(Path(tmp, f"{name}.json")) for name in ("baseline", "same", "slower")}
        with ServeProcess(delay="2ms") as fast, ServeProcess(delay="2200us") as slow:
            run_once(fast.url, args.duration, paths["baseline"])
            run_once(fast.url, args.duration, paths["same"])
            run_once(slow.url, args.duration, paths["slower"])
        for name in ("same", "slower"):
            done = surge("compare", paths["baseline"], paths[name])
            verdict = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
            rows.append((name, done.returncode, verdict, done.stdout))
            print(done.stdout, flush=True)
    lines = section_head(BEGIN, "compare, one real pair (issue 5)") + [
             f"`surge serve --delay 2ms` twice and `--delay 2200us` once, `surge run -c 8 -w 1 -d {args.duration}`, "
             "then `surge compare baseline.json X.json`.", "",
             "| pair | exit | verdict |", "|---|---|---|"]
    for name, code, verdict, _ in rows:
        lines.append(f"| baseline vs {name} | {code} | {verdict} |")
    expected = {"same": 0, "slower": 3}
    ok = all(code == expected[name] for name, code, _, _ in rows)
    lines += ["", f"Expected: same → 0 (no significant change), slower → 3 (regression): **{'met' if ok else 'NOT met'}**.",
              "", "```", rows[1][3].strip(), "```", "", END]
    replace_section(BEGIN, END, lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
