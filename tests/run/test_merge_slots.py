"""Which second a worker's snapshot fills (surge.run.merge), on a synthetic record."""
from surge.core._histogram import Histogram
from surge.plan.build import url_workload
from surge.plan.options import RunOptions
from surge.run.merge import RunRecord, WorkerRecord
from surge.run.samples import sub_second_samples

S = 1_000_000_000
START_NS = 1_000 * S


def snapshot(completed: int, in_interval: int = 10, quarters=()) -> dict:
    """Cumulative counters, and the latency histogram of the interval alone."""
    hist = Histogram()
    for _ in range(in_interval):
        hist.record(1000)
    return {"completed": completed, "bytes_in": 0, "bytes_out": 0, "statuses": {200: completed},
            "errors": {"connect": 0}, "latency": hist.to_sparse(), "latency_uncorrected": hist.to_sparse(),
            "due": completed, "dropped": 0, "open_connections": 1, "quarters": list(quarters)}


def record(rate: float | None, end_after_ns: int) -> RunRecord:
    options = RunOptions(duration_ns=2 * S, rate=rate)
    worker = WorkerRecord(0)
    run = RunRecord(url_workload("http://127.0.0.1:9/", options).workload, [worker])
    run.start_ns = START_NS
    run.add_tick(worker, 1, snapshot(10))
    run.add_final(worker, snapshot(20), START_NS + end_after_ns)
    return run


def test_a_final_snapshot_30ms_after_the_deadline_stays_in_the_last_second():
    points = record(None, 2 * S + 30_000_000).timeseries()
    assert [p["t"] for p in points] == [1.0, 2.0]
    assert [p["requests"] for p in points] == [10, 10]


def test_open_model_target_of_the_last_second_is_its_rate():
    for point in record(100.0, 2 * S + 30_000_000).timeseries():
        assert point["target"] == 100.0


def test_a_stop_before_the_deadline_fills_the_second_it_falls_in():
    points = record(None, 1 * S + 400_000_000).timeseries()
    assert [p["t"] for p in points] == [1.0, 1.4]


def test_a_final_snapshot_150ms_late_adds_no_quarter_after_the_deadline():
    """Quarter-second samples end at the deadline too (surge.run.samples)."""
    quarters = sub_second_samples(record(None, 2 * S + 150_000_000))
    assert quarters[-1]["t"] == 2.0 and len(quarters) == 8
    assert sum(q["requests"] for q in quarters) == 20


def test_quarters_are_the_differences_of_the_cumulative_reads():
    """Each quarter holds exactly what was recorded in it (the reads are the second so far)."""
    hist, reads = Histogram(), []
    per_quarter = [(3, 1000), (5, 2000), (0, 0), (7, 40_000)]      # (values, each value µs)
    for q, (n, value) in enumerate(per_quarter, start=1):
        for _ in range(n):
            hist.record(value)
        reads.append((q, hist.to_sparse()))
    worker = WorkerRecord(0)
    run = RunRecord(url_workload("http://127.0.0.1:9/", RunOptions(duration_ns=2 * S)).workload, [worker])
    run.start_ns = START_NS
    run.add_tick(worker, 1, {**snapshot(15), "latency": reads[-1][1], "quarters": reads[:-1]})
    run.add_final(worker, {**snapshot(15, 0), "quarters": []}, START_NS + 2 * S)
    quarters = sub_second_samples(run)
    assert [q["requests"] for q in quarters[:4]] == [n for n, _ in per_quarter]
    fourth = Histogram.decode(quarters[3]["hdr"])          # only the 40-ms values were recorded in it
    assert fourth.total_count == 7 and abs(fourth.value_at_percentile(1) - 40_000) <= 40
