"""`surge merge` on real parts: three instances (`--segment 0/3 .. 2/3`, one
`--start-at`) against nginx, merged exactly; the plan's objectives judged on
the whole, where a part alone fails and the whole passes (and back).

Each instance is its own process with one worker; nginx's stub_status is the
ground truth.  No bound on time: what is asserted are counts and verdicts."""
import json
import subprocess
import sys
import time

import pytest

from surge.core._histogram import Histogram
from tests.helpers import run_surge_together
from tests.support.segment_nginx import LoggingNginx
from tests.support.slow_rows_nginx import SlowRowsNginx

SEGMENTS = 3
START_AHEAD_S = 6.0         # three Python start-ups on a busy machine, well within


def nginx_or_skip():
    from bench.nginx import nginx_available
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")


def run_parts(args: list[str], tmp_path, timeout_s: float = 120) -> list:
    """The three parts, each also written to tmp_path/part-I.json."""
    at = f"{time.time() + START_AHEAD_S:.3f}"
    runs = run_surge_together(*[["run", *args, "-w", "1", "-q", "--segment", f"{i}/{SEGMENTS}", "--start-at", at]
                                for i in range(SEGMENTS)], timeout_s=timeout_s)
    for i, run in enumerate(runs):
        assert run.result is not None, (i, run.code, run.stderr)
        (tmp_path / f"part-{i}.json").write_text(json.dumps(run.result))
    return runs


def merge(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surge", "merge", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def test_n_30000_over_three_segments_merges_to_30000(tmp_path):
    nginx_or_skip()
    with LoggingNginx() as server:
        before = server.requests()
        runs = run_parts([server.url, "-n", "30000", "-c", "6"], tmp_path)
        served = server.requests() - before
    assert [run.code for run in runs] == [0, 0, 0], [run.stderr for run in runs]
    assert [run.result["totals"]["requests"] for run in runs] == [10_000, 10_000, 10_000]
    out = tmp_path / "merged.json"
    done = merge(*(str(tmp_path / f"part-{i}.json") for i in range(SEGMENTS)), "--json", str(out))
    assert done.returncode == 0, done.stderr
    merged = json.loads(out.read_text())
    assert served == 30_000
    assert merged["totals"]["requests"] == 30_000
    assert merged["latency"]["count"] == 30_000
    assert Histogram.decode(merged["latency"]["hdr"]).total_count == 30_000
    assert merged["totals"]["responses_by_status"] == {"200": 30_000}
    # the histogram is the parts' added: every bucket, not just the count
    parts = [Histogram.decode(run.result["latency"]["hdr"]) for run in runs]
    added = Histogram()
    for hist in parts:
        added.add(hist)
    assert Histogram.decode(merged["latency"]["hdr"]).counts_array() == added.counts_array()
    assert merged["latency"]["max"] == max(run.result["latency"]["max"] for run in runs)
    # per second on the common clock: the seconds' requests add up to the total
    assert sum(p["requests"] for p in merged["timeseries"]) == 30_000
    assert merged["connect"]["count"] == sum(run.result["connect"]["count"] for run in runs)
    # the per-instance table: one row per part, in the summary too
    rows = merged["merge"]["parts"]
    assert [(r["segment"], r["requests"]) for r in rows] == [(0, 10_000), (1, 10_000), (2, 10_000)]
    assert merged["merge"]["missing"] == [] and merged["run"]["segment"] is None
    assert "Instances" in done.stdout and "merged: 3 of 3 segments" in done.stdout
    assert {w["segment"] for w in merged["resources"]["workers"]} == {0, 1, 2}


THROUGHPUT_PLAN = """
name: spread
target: {url}
load: {{model: open, rate: 900, duration: 2s}}
objectives:
  - throughput >= 600/s           # each part sends 300/s: only the sum reaches it
scenarios:
  - name: get
    steps: [{{name: home, request: "GET /"}}]
"""


def test_throughput_that_only_the_sum_reaches(tmp_path):
    nginx_or_skip()
    plan = tmp_path / "spread.yaml"
    with LoggingNginx() as server:
        plan.write_text(THROUGHPUT_PLAN.format(url=server.url))
        runs = run_parts([str(plan)], tmp_path)
    for run in runs:            # each part alone misses it (300/s < 600/s), and leaves the verdict to the merge
        assert run.code == 0, run.stderr
        assert run.result["objectives"][0]["passed"] is False
        assert "not met by this part alone" in run.stderr
    parts = [str(tmp_path / f"part-{i}.json") for i in range(SEGMENTS)]
    out = tmp_path / "merged.json"
    done = merge(*parts, "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    merged = json.loads(out.read_text())
    (objective,) = merged["objectives"]
    assert objective["passed"] is True and objective["value"] >= 600
    # the exit code follows the whole: one part's share alone (partial) fails it again
    alone = merge(parts[0], "--allow-partial", "--json", str(tmp_path / "alone.json"))
    assert alone.returncode == 3, alone.stderr
    assert "objective failed: throughput >= 600/s" in alone.stderr
    assert "segments 1, 2 of 3 missing" in alone.stderr
    assert json.loads((tmp_path / "alone.json").read_text())["merge"]["missing"] == [1, 2]


P99_PLAN = """
name: one-slow-part
target: {url}
load: {{vus: 6, duration: 60s}}        # the 3,000 unique rows end it (on_exhausted: stop)
objectives:
  - p99 < 100ms
data:
  rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
scenarios:
  - name: get
    steps: [{{name: row, request: "GET /${{rows.path}}"}}]
"""


def slow_rows(rows: int) -> str:
    """Row r goes to segment r mod 3 (as the schedule is striped): 2% of segment 2's
    rows are slow, none of the others'. Segment 2's p99 is then a slow request,
    the whole's (0.67% slow) a fast one."""
    lines = ["path"]
    for r in range(rows):
        slow = r % SEGMENTS == 2 and (r // SEGMENTS) % 50 == 0
        lines.append(f"slow/{r}" if slow else f"fast/{r}")
    return "\n".join(lines) + "\n"


def test_p99_that_one_slow_part_breaks_and_the_whole_meets(tmp_path):
    nginx_or_skip()
    plan = tmp_path / "slow.yaml"
    (tmp_path / "rows.csv").write_text(slow_rows(3000))
    with SlowRowsNginx("250ms") as server:
        plan.write_text(P99_PLAN.format(url=server.url))
        runs = run_parts([str(plan)], tmp_path)
    verdicts = [run.result["objectives"][0]["passed"] for run in runs]
    assert verdicts[2] is False and runs[2].code == 0, runs[2].stderr         # the slow part, alone
    assert runs[2].result["latency"]["percentiles"]["99"] >= 250_000
    out = tmp_path / "merged.json"
    done = merge(*(str(tmp_path / f"part-{i}.json") for i in range(SEGMENTS)), "--json", str(out))
    merged = json.loads(out.read_text())
    assert merged["totals"]["requests"] == 3000
    slow_count = sum(1 for line in slow_rows(3000).splitlines() if line.startswith("slow/"))
    assert slow_count == 20
    (objective,) = merged["objectives"]
    # the whole: 20 slow of 3,000 is under 1%, so its p99 is a fast request's
    assert objective["passed"] is True, (objective, done.stderr)
    assert done.returncode == 0, done.stderr
    assert merged["latency"]["max"] >= 250_000      # the slow ones are in it, only not at p99
