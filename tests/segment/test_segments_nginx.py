"""Three instances, --segment 0/3 .. 2/3, against one nginx: together they
send what one instance would have sent, counted on the server.

Synchronisation is checked on the server too: with `order: unique` data the
row of a request tells which segment sent it (rows are striped like the
schedule: row r belongs to segment r mod 3), and nginx logs when it served
each request.  Bounds on time are loose (a busy 2-core machine must not
break them); bench/segment_bars.py measures the tight bars."""
import json
import time

import pytest

from tests.helpers import run_surge_together
from tests.support.segment_nginx import LoggingNginx

SEGMENTS = 3
# When the instances start: far enough ahead that three Python start-ups on a
# busy machine are done (an instance more than 1 s late would exit 1 instead).
START_AHEAD_S = 6.0
# The instances' first requests, as nginx logged them: started together they are
# milliseconds apart (bench/segment_bars.py); a bound far below the 2 s that
# separates an unsynchronised start, and far above a busy machine's wake-up delays.
TOGETHER_S = 0.3


@pytest.fixture(scope="module")
def server():
    from bench.nginx import nginx_available
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with LoggingNginx() as running:
        yield running


def start_at() -> str:
    return f"{time.time() + START_AHEAD_S:.3f}"


def unique_rows_plan(tmp_path, url: str, rows: int, load: str) -> str:
    (tmp_path / "rows.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(rows)))
    plan = tmp_path / "rows.yaml"
    plan.write_text(f"""
name: rows
target: {url}
load: {load}
data:
  rows: {{file: rows.csv, order: unique, on_exhausted: stop}}
scenarios:
  - name: once
    steps: [{{name: row, request: "GET /row/${{rows.id}}"}}]
""")
    return str(plan)


def rows_served(server, at_least: int) -> list[tuple[float, int]]:
    """(served at, row) of each /row/N request nginx logged."""
    return [(at, int(uri.rsplit("/", 1)[1])) for at, uri in server.log(at_least) if uri.startswith("/row/")]


def assert_one_run(runs) -> None:
    """Every part says the same run id and start instant, and its own segment."""
    for i, run in enumerate(runs):
        assert run.code == 0, (i, run.stderr)
        segment = run.result["run"]["segment"]
        assert (segment["index"], segment["count"]) == (i, SEGMENTS)
    assert len({run.result["run"]["id"] for run in runs}) == 1
    assert len({run.result["run"]["plan_hash"] for run in runs}) == 1
    assert len({run.result["run"]["started_at_unix_ns"] for run in runs}) == 1


def first_request_spread_s(served: list[tuple[float, int]]) -> float:
    firsts = [min(at for at, row in served if row % SEGMENTS == s) for s in range(SEGMENTS)]
    return max(firsts) - min(firsts)


def test_requests_quota_is_split_exactly(server):
    before = server.requests()
    at = start_at()
    runs = run_surge_together(*[["run", server.url, "-n", "3000", "-c", "6", "-w", "1", "-q", "--segment", f"{i}/3",
                                 "--start-at", at] for i in range(SEGMENTS)], timeout_s=90)
    served = server.requests() - before
    assert_one_run(runs)
    assert [run.result["totals"]["requests"] for run in runs] == [1000, 1000, 1000]
    assert served == 3000
    assert [run.result["config"]["connections"] for run in runs] == [6, 6, 6]      # the whole run's, as configured


def test_open_model_schedule_and_unique_rows_over_segments(server, tmp_path):
    """One global schedule striped over the segments: the server serves what
    the parts report, each row at most once, each part its own rows."""
    rate, seconds = 1500, 2
    plan = unique_rows_plan(tmp_path, server.url, rate * seconds + 500,
                            f"{{model: open, rate: {rate}, duration: {seconds}s}}")
    server.clear_log()
    before = server.requests()
    at = start_at()
    runs = run_surge_together(*[["run", plan, "-w", "1", "-q", "--segment", f"{i}/3", "--start-at", at]
                                for i in range(SEGMENTS)], timeout_s=90)
    count = server.requests() - before
    assert_one_run(runs)
    reported = [run.result["totals"]["requests"] for run in runs]
    in_flight = [run.result["totals"]["in_flight_at_stop"] for run in runs]
    # requests in flight at the stop were served (or not) after the parts stopped counting
    assert 0 <= count - sum(reported) <= sum(in_flight)
    # never more than the one schedule holds; short of it only by what a stalled machine left queued at the
    # deadline (bench/segment_bars.py measures the ± 0.5% bar)
    due = sum(run.result["totals"]["due"] for run in runs)
    assert count <= due <= rate * seconds, (count, due)
    assert count >= rate * seconds * 0.8, (count, reported)
    served = rows_served(server, count)
    rows = [row for _, row in served]
    assert len(rows) == count and len(set(rows)) == len(rows), "a row was used twice"
    for s in range(SEGMENTS):
        mine = sum(1 for row in rows if row % SEGMENTS == s)
        assert reported[s] <= mine <= reported[s] + in_flight[s], (s, mine, reported, in_flight)
    assert first_request_spread_s(served) < TOGETHER_S


def test_start_at_past_by_more_than_a_second_is_one_line_exit_1(server):
    [run] = run_surge_together(["run", server.url, "-n", "10", "-c", "1", "-w", "1", "-q", "--start-at",
                                f"{time.time() - 30:.0f}"], timeout_s=60)
    assert run.code == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--start-at" in lines[0] and "later time" in lines[0], run.stderr
    assert "Traceback" not in run.stderr


def test_emit_result_prints_the_result_as_one_line(server):
    from surge.result.emit import decode_result_line
    [run] = run_surge_together(["run", server.url, "-n", "20", "-c", "2", "-w", "1", "-q", "--segment", "1/2",
                                "--run-id", "nightly-7", "--emit-result"], timeout_s=60)
    assert run.code == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("SURGE-RESULT ")]
    assert len(lines) == 1 and run.stdout.rstrip("\n").endswith(lines[0])
    emitted = decode_result_line(lines[0])
    assert emitted["run"]["id"] == "nightly-7" and emitted["run"]["segment"] == {"index": 1, "count": 2, "connections": 1, "requests": 10}
    assert emitted["totals"]["requests"] == 10
    assert json.loads(json.dumps(emitted))["totals"] == run.result["totals"]


def test_each_stage_is_shared_and_the_shares_add_up(server):
    """A closed ramp of 7 connections over three segments: 3 + 2 + 2 at every
    point, each part's target its share, the parts' targets adding up to 7."""
    at = start_at()
    runs = run_surge_together(*[["run", server.url, "-c", "7", "--stages", "2s:7", "-w", "1", "-q",
                                 "--segment", f"{i}/3", "--start-at", at] for i in range(SEGMENTS)], timeout_s=90)
    assert_one_run(runs)
    assert [run.result["run"]["segment"]["connections"] for run in runs] == [3, 2, 2]
    for run, share in zip(runs, (3, 2, 2)):
        points = run.result["timeseries"]
        assert points and all(point["target"] == share for point in points), points
        # (the last point comes from the final snapshot, taken once the connections are closed)
        assert all(point["active_connections"] == share for point in points[:-1]), points


def test_a_part_shows_its_objectives_but_the_verdict_is_the_whole_runs(server, tmp_path):
    """`requests >= 600` over three parts of 300 rows each: the part alone misses
    it, and still exits 0 (surge merge judges the whole); --baseline is refused."""
    plan = unique_rows_plan(tmp_path, server.url, 900, "{model: closed, vus: 3, duration: 60s}")
    with open(plan, "a") as f:
        f.write('objectives:\n  - "requests >= 600"\n  - {threshold: "requests >= 600", abort_on_fail: true}\n')
    [run] = run_surge_together(["run", plan, "-w", "1", "-q", "--segment", "1/3"], timeout_s=60)
    assert run.code == 0, run.stderr
    assert run.result["totals"]["requests"] == 300
    assert [o["passed"] for o in run.result["objectives"]] == [False, False]
    assert "aborted_by" not in run.result
    assert "not met by this part alone: requests >= 600" in run.stderr
    assert "alone: the run's verdict is `surge merge`'s" in run.stdout
    [refused] = run_surge_together(["run", plan, "-q", "--segment", "1/3", "--baseline", plan], timeout_s=60)
    assert refused.code == 2 and "--baseline with --segment" in refused.stderr, refused.stderr
