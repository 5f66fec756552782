"""A long run's seconds trimmed and folded (surge.run.retention): bounded
snapshots, exact totals and histograms, blocks that line up across workers."""
from __future__ import annotations

from array import array

from surge.core._histogram import Histogram
from surge.plan.build import build_workload
from surge.plan.options import RunOptions
from surge.run.merge import RunRecord, WorkerRecord
from surge.run.retention import BLOCK_S, FINE_S, SAMPLE_S, SEGMENT_S, fold

RATE = 7                 # responses a second per worker


def _snapshot(k: int, worker: int, latency_us: int) -> dict:
    """What a worker's tick k looks like to the merge: cumulative counters, the second's histogram."""
    hist = Histogram()
    hist.record_many(array("q", [latency_us] * RATE))
    sparse = hist.to_sparse()
    return {"completed": k * RATE, "bytes_in": k * RATE * 10, "bytes_out": k * RATE * 20,
            "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "parse": 0, "closed": 0, "tls": 0},
            "statuses": {200: k * RATE}, "open_connections": 1, "connects": 1, "in_flight": 0,
            "latency": sparse, "latency_uncorrected": None, "due": 0, "dropped": 0, "queued": 0,
            "flows": {"steps": [(k * RATE, 0, 0, [0] * 7, {200: k * RATE}, sparse)], "scenarios": [(k, k, 0)],
                      "vus_done": 0, "redirects": None, "steps_corrected": None},
            "connections_opened": 1, "connect": Histogram().to_sparse(), "tls_handshake": None,
            "handshakes": None, "tls_errors": {}, "tls_session": None,
            "usage": {"user_s": k * 0.01, "sys_s": 0.0, "max_rss_kb": 1000, "rss_kb": 1000},
            "worker": worker, "quarters": [(4 * k - 4 + j, _read(j, latency_us)) for j in (1, 2, 3)]}


def _read(count: int, latency_us: int) -> tuple:
    """A sub-second read: the second's histogram so far (`count` responses)."""
    hist = Histogram()
    hist.record_many(array("q", [latency_us] * count))
    return hist.to_sparse()


def _record(seconds: int, workers: int = 2, die_at: int | None = None) -> RunRecord:
    built = build_workload("http://127.0.0.1:9/", RunOptions(duration_ns=seconds * 10**9, connections=2,
                                                             workers=workers))
    record = RunRecord(built.workload, [WorkerRecord(i) for i in range(workers)])
    record.start_ns = 0
    for k in range(1, seconds):           # the last second comes with the Final, as from a worker
        for w in record.workers:
            if die_at is not None and w.index == 1 and k > die_at:
                continue
            record.add_tick(w, k, _snapshot(k, w.index, latency_us=100 + k % 50))
    for w in record.workers:
        if die_at is None or w.index != 1:
            record.add_final(w, _snapshot(seconds, w.index, latency_us=100), seconds * 10**9)
        else:
            w.lost_ns = die_at * 10**9 + 1
    return record


def test_fold_adds_histograms_and_keeps_the_last_counters():
    snaps = [_snapshot(k, 0, latency_us=10 * k) for k in range(1, 4)]
    folded = fold(snaps)
    hist = Histogram()
    hist.add_sparse(*folded["latency"])
    assert hist.total_count == 3 * RATE and hist.min >= 10 and hist.max <= 31
    assert folded["completed"] == 3 * RATE and folded["quarters"] is None
    step = Histogram()
    step.add_sparse(*folded["flows"]["steps"][0][5])
    assert step.total_count == 3 * RATE


def test_a_long_run_keeps_an_hour_per_second_and_minutes_before():
    seconds = FINE_S + 5 * BLOCK_S + 7
    record = _record(seconds)
    # bounded: a second or two of snapshots per worker, an hour of seconds and blocks before it,
    # the spill's files about an hour's
    assert all(len(w.ticks) <= 2 for w in record.workers)
    assert len(record.series) <= FINE_S + seconds // BLOCK_S + 1
    assert len(record.series.spill.generations()) <= FINE_S // SEGMENT_S + 3
    assert len(record.quarter_reads.reads) <= 2 * 4
    points = record.timeseries()
    assert sum(p["requests"] for p in points) == seconds * RATE * 2        # every response in one point
    assert record.totals()["requests"] == seconds * RATE * 2
    assert record.total_histogram().total_count == seconds * RATE * 2
    folded = [p for p in points if "interval_s" in p]
    assert folded and all(p["interval_s"] == BLOCK_S and p["t"] % BLOCK_S == 0 for p in folded)
    assert all(p["requests"] == BLOCK_S * RATE * 2 for p in folded)
    ts = [p["t"] for p in points]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    per_second = [p for p in points if "interval_s" not in p]
    assert all(p["requests"] == RATE * 2 for p in per_second[:-1])
    from surge.run.samples import sub_second_samples
    samples = sub_second_samples(record)
    assert samples and samples[0]["t"] > seconds - SAMPLE_S - 2          # the recent quarters only
    assert all(s["requests"] > 0 for s in samples)


def test_a_dead_workers_old_seconds_fold_with_the_others():
    seconds = FINE_S + 3 * BLOCK_S
    record = _record(seconds, die_at=100)
    points = record.timeseries()
    assert record.workers[1].last_second == 100            # its counts up to there stay in
    ts = [p["t"] for p in points]
    assert len(set(ts)) == len(ts)
    assert not [t for t in ts if t < 100 and t % BLOCK_S]          # no stray per-second points in a block
    assert sum(p["requests"] for p in points) == seconds * RATE + 100 * RATE


def test_a_short_run_is_untouched():
    record = _record(120)
    points = record.timeseries()
    assert len(points) == 120 and not any("interval_s" in p for p in points)


def test_a_long_journal_recovers_with_the_same_shape():
    from surge.run.journal import coarsened

    hist = Histogram()
    hist.record_many(array("q", [120] * RATE))
    points = [{"t": float(k), "requests": RATE, "errors": 0, "p50": 120, "p99": 120, "max": 120, "hdr": hist.encode()}
              for k in range(1, FINE_S + 181)]
    out = coarsened(points)
    assert len(out) == FINE_S + 3
    assert [p["t"] for p in out[:3]] == [60.0, 120.0, 180.0]
    assert all(p["interval_s"] == BLOCK_S and p["requests"] == BLOCK_S * RATE for p in out[:3])
    merged = Histogram.decode(out[0]["hdr"])
    assert merged.total_count == BLOCK_S * RATE
    assert sum(p["requests"] for p in out) == len(points) * RATE


def test_a_stalled_worker_holds_no_more_than_lag_s_and_its_late_seconds_still_count():
    from surge.run.retention import LAG_S

    built = build_workload("http://127.0.0.1:9/", RunOptions(duration_ns=60 * 10**9, connections=2, workers=2))
    record = RunRecord(built.workload, [WorkerRecord(0), WorkerRecord(1)])
    record.start_ns = 0
    fast, slow = record.workers
    for k in range(1, 41):
        record.add_tick(fast, k, _snapshot(k, 0, latency_us=100))
        if k <= 5:
            record.add_tick(slow, k, _snapshot(k, 1, latency_us=100))
    assert record.finished_through >= 40 - LAG_S - 1        # the stalled worker did not hold them
    assert len(fast.ticks) <= LAG_S + 1
    for k in range(6, 41):                                  # it wakes up: its seconds come late
        record.add_tick(slow, k, _snapshot(k, 1, latency_us=100))
    for w in record.workers:
        record.add_final(w, _snapshot(41, w.index, latency_us=100), 41 * 10**9)
    points = record.timeseries()
    assert sum(p["requests"] for p in points) == 2 * 41 * RATE == record.totals()["requests"]
    assert record.total_histogram().total_count == 2 * 41 * RATE


def test_the_seconds_stay_in_memory_when_no_temporary_file_can_be_made(monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    record = _record(30)
    assert record.series.spill.failed == "Read-only file system"
    points = record.timeseries()
    assert len(points) == 30 and sum(p["requests"] for p in points) == 30 * RATE * 2
