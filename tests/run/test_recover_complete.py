"""Issue 15 item 3: a result recovered from a killed run's journal (`surge
report --recover`) has what a normal result of the same run has: a plan's
step_timeseries, the quarter-second samples compare tests on, tls for an https
target, resources.  Against `surge serve` over TLS, two workers; "the run has
started" is read from the journal, never from a sleep."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SURGE = [sys.executable, "-m", "surge"]

# Keys only one of the two may have: a recovered result says so; the normal run
# ended by itself, which the recovered one cannot know (it is marked interrupted).
ONLY_RECOVERED = {"recovered"}


def _plan(tmp_path: Path, url: str, duration: str) -> Path:
    plan = tmp_path / f"plan-{duration}.yaml"
    plan.write_text(f"""name: recover
target: {url}
load: {{model: closed, vus: 4, duration: {duration}}}
scenarios:
  - name: browse
    steps:
      - name: search
        request: GET /search?q=x
      - name: item
        request: GET /items/7
""")
    return plan


def _journal_seconds(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except OSError:
        return 0


def _killed_and_recovered(tmp_path: Path, plan: Path, cacert: str, seconds: int) -> dict:
    proc = subprocess.Popen([*SURGE, "run", str(plan), "-q", "-w", "2", "--cacert", cacert, "--json", "k.json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "k.json.journal"
    deadline = time.monotonic() + 60
    while _journal_seconds(journal) < seconds:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the journal did not grow"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    recovered = subprocess.run([*SURGE, "report", "--recover", str(journal), "--json", "rec.json"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert recovered.returncode == 0, recovered.stderr
    return json.loads((tmp_path / "rec.json").read_text())


def test_a_recovered_plan_run_has_the_keys_of_a_normal_one(surge_server, tmp_path):
    server = surge_server(app="demo", tls=True)
    normal_run = subprocess.run([*SURGE, "run", str(_plan(tmp_path, server.url, "2s")), "-q", "-w", "2",
                                 "--cacert", server.cacert, "--json", "n.json"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert normal_run.returncode == 0, normal_run.stderr
    normal = json.loads((tmp_path / "n.json").read_text())
    rec = _killed_and_recovered(tmp_path, _plan(tmp_path, server.url, "60s"), server.cacert, seconds=3)

    assert set(normal) - set(rec) == set(), "missing from the recovered result"
    assert set(rec) - set(normal) == ONLY_RECOVERED
    for key in ("step_timeseries", "samples", "tls", "resources"):
        assert rec[key], key

    # step_timeseries: one series per step, one point per journaled second, with the
    # second's t; its counts add up to the step's, its histograms to the step's latency
    from surge.core._histogram import Histogram
    seconds_t = [p["t"] for p in rec["timeseries"]]
    steps = {s["step"]: s for s in rec["steps"]}
    assert [s["step"] for s in rec["step_timeseries"]] == [s["step"] for s in normal["step_timeseries"]]
    for series in rec["step_timeseries"]:
        assert set(series["points"][0]) == set(normal["step_timeseries"][0]["points"][0])
        assert [p["t"] for p in series["points"]] == seconds_t
        step = steps[series["step"]]
        assert sum(p["requests"] for p in series["points"]) == step["requests"] > 0
        added = Histogram()
        for p in series["points"]:
            added.add(Histogram.decode(p["hdr"]))
        assert added.total_count == step["latency"]["count"]
    assert sum(sum(p["requests"] for p in s["points"]) for s in rec["step_timeseries"]) == rec["totals"]["requests"]

    # samples: four quarters per journaled second, adding up to the run's requests
    assert len(rec["samples"]) == 4 * len(rec["timeseries"])
    assert sum(q["requests"] for q in rec["samples"]) == rec["totals"]["requests"] == rec["latency"]["count"]
    assert set(rec["samples"][0]) == set(normal["samples"][0])

    # tls: what was negotiated, and the handshakes of both workers' connections
    assert rec["tls"]["protocol"] == normal["tls"]["protocol"] and rec["tls"]["protocol"].startswith("TLS")
    assert rec["tls"]["handshakes"]["full"] + rec["tls"]["handshakes"]["resumed"] >= 4     # one a VU at least
    assert sorted(w["index"] for w in rec["resources"]["workers"]) == [0, 1]
    assert set(rec["resources"]) == set(normal["resources"])

    # and every report can be made from it
    made = subprocess.run([*SURGE, "report", "rec.json", "--html", "r.html", "--csv", "r.csv", "--hlog", "r.hlog"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "r.steps.csv").exists()
