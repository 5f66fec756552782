"""Open-model runs: the schedule holds, stages are followed, latency is corrected."""
import pytest

from tests.helpers import run_surge


def test_constant_rate_against_nginx(nginx):
    """Bar: --rate 20000 for 10 s intends exactly 200,000 requests, every one is
    accounted for, and nginx's own counter agrees with surge's.

    What is exact is asserted exactly (the schedule, the accounting).  Whether a
    shared 2-core machine lets the client keep up with 20k/s is not a property of
    surge, so the achieved rate gets a 10% margin: a scheduling or counting bug
    shows in the exact identities, not in that margin."""
    before = nginx.requests()
    run = run_surge("run", nginx.url, "--rate", "20000", "-d", "10s", "-w", "1", "-q", timeout_s=60)
    served = nginx.requests() - before
    assert run.code == 0, run.stderr
    r = run.result
    totals = r["totals"]
    # N(10 s) of the absolute schedule, less at most the grid batch whose instant is
    # the deadline itself (32 requests at 20k/s: those are due as the run ends).
    assert 200_000 - 32 <= totals["due"] <= 200_000, totals["due"]
    # Everything intended is accounted for: answered, failed, dropped, or still open at the stop.
    assert totals["due"] == (totals["requests"] + sum(totals["errors"].values()) + totals["dropped"]
                             + totals["in_flight_at_stop"] + totals["queued_at_stop"])
    # nginx served every answered request, plus some of those in flight at the stop.
    assert 0 <= served - totals["requests"] <= totals["in_flight_at_stop"] + sum(totals["errors"].values())
    assert served >= 0.9 * 200_000
    assert r["config"]["model"] == "open"
    points = r["timeseries"]
    assert len(points) == 10
    assert sum(p["due"] for p in points) == totals["due"]
    for p in points:
        assert p["target"] == pytest.approx(20_000)
    steady = sorted(p["requests"] for p in points[1:])
    assert steady[len(steady) // 2] == pytest.approx(20_000, rel=0.10), steady
    assert totals["dropped"] == 0
    assert "latency_uncorrected" in r
    # Corrected latency counts from the intended instant, so it is never below the uncorrected one.
    assert r["latency"]["percentiles"]["50"] >= r["latency_uncorrected"]["percentiles"]["50"]


def _expected_counts(start, stages, seconds):
    """Requests intended in each whole second, integrating the stage function independently."""
    def rate(t):
        t0, previous = 0.0, start
        for duration, target in stages:
            if t < t0 + duration:
                return previous + (target - previous) * (t - t0) / duration
            t0, previous = t0 + duration, target
        return previous
    steps = 1000
    return [sum(rate(k + (i + 0.5) / steps) for i in range(steps)) / steps for k in range(seconds)]


# How late a per-second tick may run on a loaded 2-core machine (see test_stages_are_followed).
TICK_LATE_S = 0.1


def test_stages_are_followed(nginx):
    """Bar: the requests made due follow the stage function: by the end of each
    second, the cumulative number due is its integral within 1% (+ one batch).

    Cumulative counts are compared because a timer woken late on a busy machine
    moves a batch across a second boundary (the per-second count wobbles) but
    never changes how many were due by the end; what was sent gets a 10% margin
    for the same reason as the constant-rate test.  Second k's count is read
    when the worker's tick runs, and on a loaded 2-core machine that tick can be
    late (65 requests at 4,700/s, 14 ms, was seen): each cumulative count may
    run ahead by up to TICK_LATE_S of the current rate.  A schedule bug is
    off by whole stages, far outside that."""
    stages = [(3, 2000), (3, 6000), (3, 6000), (2, 1000)]
    spec = ",".join(f"{d}s:{t}" for d, t in stages)
    run = run_surge("run", nginx.url, "--rate", "2000", "--stages", spec, "-w", "1", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    points = run.result["timeseries"]
    expected = _expected_counts(2000, stages, 11)
    assert len(points) == 11
    due_by = want_by = sent_by = 0
    batch = 6000 * 0.002                      # the most one 2-ms grid batch holds at the peak rate
    for k, (point, want) in enumerate(zip(points, expected)):
        due_by += point["due"]
        want_by += want
        sent_by += point["requests"]
        late = TICK_LATE_S * max(want, expected[k + 1] if k + 1 < len(expected) else 0)
        assert abs(due_by - want_by) <= 0.01 * want_by + batch + late + 1, (k, due_by, want_by)
    # (less at most the last grid batch, due at the deadline itself)
    assert 0 <= round(sum(expected)) - run.result["totals"]["due"] <= batch + 1
    assert sent_by >= 0.9 * want_by


def test_closed_model_stages_ramp_connections(surge_server):
    server = surge_server(delay="20ms")
    # 2 s at 4 connections, then a ramp to 12: ~200/s, then ~600/s with 20 ms per request.
    run = run_surge("run", server.url, "-c", "4", "--stages", "2s:4,2s:12,2s:12", "-w", "2", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    points = run.result["timeseries"]
    assert run.result["config"]["connections"] == 12
    assert points[1]["target"] == 4 and points[5]["target"] == 12
    # What the stages set is the number of connections: exact at the plateaus
    # (every connection of a 20-ms target is open at a tick), between them mid-ramp.
    assert points[1]["active_connections"] == 4
    assert 4 < points[2]["active_connections"] < 12        # t = 3 s, half-way up the ramp
    assert points[4]["active_connections"] == 12   # (the last point is the final snapshot, after the stop)
    # Throughput follows connections / latency.  Not asserted as "3x within 15%":
    # on a loaded 2-core machine a second's count moves by more than that without
    # a bug; twice the rate is far outside any such wobble when the ramp is missing.
    assert points[5]["requests"] > 2 * points[1]["requests"]


def test_queue_waits_count_and_drops_are_reported(surge_server):
    """One connection, 100 ms per response, 50 requests/s: the queue grows, waits
    show in the corrected latency, and requests older than the timeout are dropped."""
    server = surge_server(delay="100ms")
    run = run_surge("run", server.url, "--rate", "50", "--max-connections", "1", "-w", "1", "-d", "3s",
                    "--timeout", "500ms", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    totals = run.result["totals"]
    assert totals["requests"] <= 31
    assert totals["dropped"] > 50
    assert "DROPPED" in run.stdout
    corrected = run.result["latency"]["percentiles"]
    uncorrected = run.result["latency_uncorrected"]["percentiles"]
    assert uncorrected["50"] < 150_000
    assert corrected["99"] > 300_000           # waited in the queue up to the timeout


def test_fixed_delay_is_measured_exactly(surge_server):
    """Bar: against `surge serve --delay 10ms`, no latency below 10 ms and the
    fastest within 0.5 ms of it, corrected and uncorrected.

    The minimum needs just one promptly scheduled response, so a loaded machine
    (which only ever adds latency) cannot break it; a timer that rounds to whole
    milliseconds (the bug this guards against: 9 to 11 ms) can."""
    server = surge_server(delay="10ms")
    run = run_surge("run", server.url, "--rate", "300", "-d", "3s", "-w", "1", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    for key in ("latency", "latency_uncorrected"):
        fastest_us = run.result[key]["min"]
        assert 10_000 <= fastest_us <= 10_500, (key, fastest_us)
        assert run.result[key]["percentiles"]["50"] >= 10_000
    assert run.result["latency"]["percentiles"]["50"] >= run.result["latency_uncorrected"]["percentiles"]["50"]


def test_stalls_are_corrected(surge_server):
    """Bar: a target that stalls 1 s every 5 s, at 500/s with --max-connections 10:
    20% of intended requests fall in a stall, their waits spread evenly over
    0..1 s, so corrected p90/p95/p99 follow from the stall parameters (± 10%)
    while the uncorrected p90 stays under 50 ms."""
    import time

    stall_s, every_s, run_s = 1.0, 5.0, 10.0
    server = surge_server(stall="1s", stall_every="5s")
    started_ns = server.status()["started_at_monotonic_ns"]
    # Launch so that the run starts ~2 s after a stall ends: both stalls of the
    # 10-s run then lie wholly inside it (the run's start-up takes ~0.3 s).
    phase_s = ((time.monotonic_ns() - started_ns) / 1e9) % every_s
    time.sleep((stall_s + 1.7 - phase_s) % every_s)
    run = run_surge("run", server.url, "--rate", "500", "--max-connections", "10", "-w", "1",
                    "-d", f"{run_s:g}s", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    fraction = stall_s / every_s                      # share of intended requests inside a stall
    corrected = run.result["latency"]["percentiles"]
    for q in ("90", "95", "99"):
        # Inside a stall a request waits uniformly 0..stall_s: the q-th percentile
        # lies (q - (1 - fraction)) / fraction of the way through the stall.
        expected_us = stall_s * 1e6 * (float(q) / 100 - (1 - fraction)) / fraction
        assert corrected[q] == pytest.approx(expected_us, rel=0.10), (q, corrected)
    assert run.result["latency_uncorrected"]["percentiles"]["90"] < 50_000
    assert run.result["totals"]["dropped"] == 0
    assert run.result["totals"]["requests"] == pytest.approx(500 * run_s, rel=0.01)
