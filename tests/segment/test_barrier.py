"""The start barrier (--barrier HOST:PORT) with real instances on loopback:
instances started seconds apart still start together; a missing, mismatched
or unreachable segment ends the run with one line naming it (exit 1); clashing
options are usage errors (exit 2)."""
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from bench.nginx import free_port
from tests.helpers import SurgeRun, assert_one_line_error, run_surge, run_surge_together
from tests.segment.test_segments_nginx import (SEGMENTS, TOGETHER_S, assert_one_run, first_request_spread_s,
                                               rows_served, server, unique_rows_plan)  # noqa: F401 (fixture)

STAGGER_S = 2.0         # the bar: instances started 2 s apart


def run_staggered(runs: list[list[str]], stagger_s: float, order: list[int], timeout_s: float = 90) -> list[SurgeRun]:
    """Each `surge ARGS --json FILE` started `stagger_s` after the one before,
    in `order`; their SurgeRuns in the order of `runs`."""
    with tempfile.TemporaryDirectory(prefix="surge-barrier-") as tmp:
        started = {}
        for n, i in enumerate(order):
            if n:
                time.sleep(stagger_s)
            path = os.path.join(tmp, f"part-{i}.json")
            started[i] = (path, subprocess.Popen([sys.executable, "-m", "surge", *runs[i], "--json", path],
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        started = [started[i] for i in range(len(runs))]
        out = []
        try:
            for path, proc in started:
                stdout, stderr = proc.communicate(timeout=timeout_s)
                result = json.load(open(path)) if os.path.exists(path) else None
                out.append(SurgeRun(proc.returncode, stdout, stderr, result))
        finally:
            for _, proc in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return out


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0]], ids=["segment-0-first", "segment-0-last"])
def test_instances_started_apart_start_together(server, tmp_path, order):
    """Started 2 s apart (segment 0 first, or last: the others retry until it
    listens): the barrier holds the early ones, all start on one instant, each
    row is used once, by its segment."""
    rows = 900
    plan = unique_rows_plan(tmp_path, server.url, rows, "{model: closed, vus: 3, duration: 60s}")
    barrier = f"127.0.0.1:{free_port()}"
    server.clear_log()
    before = server.requests()
    runs = run_staggered([["run", plan, "-w", "1", "-q", "--segment", f"{i}/3", "--barrier", barrier]
                          for i in range(SEGMENTS)], STAGGER_S, order)
    count = server.requests() - before
    assert_one_run(runs)
    assert count == rows                  # the data ran out (on_exhausted: stop): every row once, then the end
    assert [run.result["totals"]["requests"] for run in runs] == [rows // SEGMENTS] * SEGMENTS
    served = rows_served(server, count)
    assert sorted(row for _, row in served) == list(range(rows))
    assert first_request_spread_s(served) < TOGETHER_S


def test_a_segment_that_never_arrives_is_named(server):
    run = run_surge("run", server.url, "-n", "10", "-c", "3", "-w", "1", "-q", "--segment", "0/3",
                    "--barrier", f"127.0.0.1:{free_port()}", "--barrier-timeout", "1s", json_result=False)
    assert_one_line_error(run, 1, "segments 1, 2 of 3 did not arrive within 1s")


def test_follower_alone_reports_segment_0_unreachable(server):
    run = run_surge("run", server.url, "-n", "10", "-c", "2", "-w", "1", "-q", "--segment", "1/2",
                    "--barrier", f"127.0.0.1:{free_port()}", "--barrier-timeout", "1s", json_result=False)
    assert_one_line_error(run, 1, "segment 0 not reachable within 1s", "connection refused")


def test_a_segment_of_another_plan_is_refused(server):
    barrier = f"127.0.0.1:{free_port()}"
    leader, follower = run_surge_together(
        ["run", server.url, "-n", "10", "-c", "2", "-w", "1", "-q", "--segment", "0/2", "--barrier", barrier,
         "--barrier-timeout", "4s"],
        ["run", server.url, "-n", "20", "-c", "2", "-w", "1", "-q", "--segment", "1/2", "--barrier", barrier,
         "--barrier-timeout", "4s"], timeout_s=60)
    assert_one_line_error(follower, 1, "plan or load options differ from segment 0's")
    assert_one_line_error(leader, 1, "segment 1 of 2 did not arrive within 4s")


@pytest.mark.parametrize("args, fragment", [
    (["--barrier", "127.0.0.1:7000"], "--barrier needs --segment"),
    (["--segment", "0/2", "--barrier", "127.0.0.1:7000", "--start-at", "1796221800"], "exclude each other"),
    (["--segment", "0/2", "--barrier-timeout", "5s"], "--barrier-timeout applies with --barrier"),
    (["--segment", "0/3", "-c", "2"], "-c 2 cannot be spread over 3 segments"),
    (["--segment", "3/3"], "I must be 0 to 2"),
    (["--start-at", "tomorrow"], "RFC 3339"),
    (["--emit-result", "--json", "-"], "--emit-result and --json - exclude each other"),
])
def test_launch_option_mistakes_are_usage_errors(args, fragment):
    run = run_surge("run", "http://127.0.0.1:9/", "-n", "10", *args, json_result=False)
    assert_one_line_error(run, 2, fragment)


def test_segment_from_the_environment():
    env = {**os.environ, "SURGE_SEGMENT": "5/3"}
    proc = subprocess.run([sys.executable, "-m", "surge", "run", "http://127.0.0.1:9/", "-n", "10"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "SURGE_SEGMENT" in proc.stderr or "--segment" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
