"""The generator's own faults against a real nginx (issue 15 items 1-4): a worker
killed, the supervisor killed, the journal and `surge report --recover`, the
target going away and coming back.  Each run is a few seconds; "the run has
started" is read from the journal's first line, never from a sleep."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nginx import nginx_available
from restartable_nginx import RestartableNginx

SURGE = [sys.executable, "-m", "surge"]
pytestmark = pytest.mark.nginx


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_until(condition, timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.02)


def _journal_seconds(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except OSError:
        return 0


def _start(url: str, tmp: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*SURGE, "run", url, *args, "-q", "--json", "r.json"], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def target():
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with RestartableNginx() as server:
        yield server


def test_a_killed_worker_is_named_and_its_seconds_kept(target, tmp_path):
    before = target.requests()
    proc = _start(target.url, tmp_path, "-d", "4s", "-c", "4", "-w", "2")
    _wait_until(lambda: _journal_seconds(tmp_path / "r.json.journal") >= 1, what="the first second")
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    served = target.requests() - before
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    result = json.loads((tmp_path / "r.json").read_text())
    [failed] = result["workers_failed"]
    assert failed["cause"] == "killed by SIGKILL"
    assert f"worker {failed['index']} (killed by SIGKILL at " in err
    assert failed["last_report_s"] >= 1 and failed["last_report_s"] <= failed["at_s"]
    assert result["totals"]["duration_s"] > 3.9           # the survivor ran to the deadline (4 s)
    # nginx served what surge counted, plus what the dead worker did after its last
    # report (under a second of its half of the load) and what was in flight
    lost = served - result["totals"]["requests"]
    assert 0 <= lost <= max(p["requests"] for p in result["timeseries"]) + 4
    assert not (tmp_path / "r.json.journal").exists()     # the result is written: no journal left


def test_a_killed_supervisor_takes_its_workers_and_the_journal_recovers(target, tmp_path):
    before = target.requests()
    proc = _start(target.url, tmp_path, "-d", "60s", "-c", "4", "-w", "2")
    journal = tmp_path / "r.json.journal"
    _wait_until(lambda: _journal_seconds(journal) >= 2, what="two journaled seconds")
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    _wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout_s=10,
                what="the workers exit after the supervisor")
    served = target.requests() - before
    time.sleep(0.3)
    assert target.requests() - before == served           # nothing loads nginx any more
    assert not (tmp_path / "r.json").exists()

    recovered = subprocess.run([*SURGE, "report", "--recover", str(journal), "--json", "rec.json"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert recovered.returncode == 0, recovered.stderr
    result = json.loads((tmp_path / "rec.json").read_text())
    assert result["recovered"] is True and result["interrupted"] is True
    counted = result["totals"]["requests"]
    assert counted == sum(p["requests"] for p in result["timeseries"]) == result["latency"]["count"]
    # at most the second being journaled when it was killed is missing (two: a tick can run late)
    assert 0 <= served - counted <= 2 * max(p["requests"] for p in result["timeseries"])
    made = subprocess.run([*SURGE, "report", "rec.json", "--html", "r.html", "--csv", "r.csv", "--hlog", "r.hlog"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    summary = subprocess.run([*SURGE, "report", "rec.json"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
    assert "RECOVERED" in summary.stdout
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]     # atomic writes leave no temporaries


def test_an_outage_is_counted_and_the_load_resumes(target, tmp_path):
    connections = 10
    proc = _start(target.url, tmp_path, "-d", "6s", "-c", str(connections), "-w", "1")
    _wait_until(lambda: _journal_seconds(tmp_path / "r.json.journal") >= 1, what="the first second")
    target.halt()
    halted_at = time.monotonic()
    time.sleep(2.0)
    outage_s = time.monotonic() - halted_at
    target.resume()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["totals"]["duration_s"] > 5.9
    connect_errors = result["totals"]["errors"]["connect"]
    assert connect_errors > 0
    # back-off from 50 ms: each connection tries at most ~1/50 ms; a busy loop would try thousands of times
    assert connect_errors <= connections * (outage_s / 0.05 + 2)
    counts = [p["requests"] for p in result["timeseries"]]
    quiet = [i for i, n in enumerate(counts) if n == 0]
    assert quiet, counts
    assert any(n > 0 for n in counts[max(quiet) + 1:]), counts       # it came back by itself


@pytest.mark.parametrize("text, fragment", [
    ("", "empty file"),
    ('{"surge_journal": 9, "header": {}}\n', "not a surge journal header"),
    ("[1, 2]\n", "expected a JSON object"),
    ("nonsense\n", "not a JSON line"),
])
def test_a_bad_journal_is_one_line_and_exit_2(tmp_path, text, fragment):
    path = tmp_path / "x.journal"
    path.write_text(text)
    run = subprocess.run([*SURGE, "report", "--recover", str(path), "--json", str(tmp_path / "o.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and str(path) in lines[0], run.stderr


def test_a_killed_plan_run_recovers_its_steps_and_scenarios(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""name: killed
target: {server.url}
load: {{model: closed, vus: 4, duration: 60s}}
scenarios:
  - name: browse
    steps:
      - name: search
        request: GET /search?q=x
      - name: item
        request: GET /items/7
""")
    proc = subprocess.Popen([*SURGE, "run", str(plan), "-q", "--json", "r.json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "r.json.journal"
    _wait_until(lambda: _journal_seconds(journal) >= 2, what="two journaled seconds")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    recovered = subprocess.run([*SURGE, "report", "--recover", str(journal), "--json", "rec.json"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert recovered.returncode == 0, recovered.stderr
    result = json.loads((tmp_path / "rec.json").read_text())
    steps = {s["step"]: s for s in result["steps"]}
    assert set(steps) == {"search", "item"}
    assert sum(s["requests"] for s in steps.values()) == result["totals"]["requests"] > 0
    for step in steps.values():             # each step's latency: one per response, added over the seconds
        assert step["latency"]["count"] == step["requests"]
    [scenario] = result["scenarios"]
    assert scenario["name"] == "browse" and scenario["requests"] == result["totals"]["requests"]
    made = subprocess.run([*SURGE, "report", "rec.json", "--html", "r.html"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
