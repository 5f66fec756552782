"""The HdrHistogram interval log, read back by the hdrhistogram package's log reader."""
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from surge.core._histogram import Histogram
from surge.report.hlog import LEGEND, HlogError, write_hlog
from tests.report.synthetic import make_result


def read_intervals(path):
    """Every interval the standard reader decodes: (histogram, tag)."""
    reader = HistogramLogReader(str(path), HdrHistogram(1, 3_600_000_000, 3))
    intervals = []
    while True:
        hist = reader.get_next_interval_histogram()
        if hist is None:
            return reader, intervals
        intervals.append(hist)


def test_every_interval_decodes_and_counts_add_up(tmp_path):
    result = make_result(20, seed=4)
    path = tmp_path / "run.hlog"
    assert write_hlog(result, path) == 20
    reader, intervals = read_intervals(path)
    assert len(intervals) == 20
    for hist, point in zip(intervals, result["timeseries"]):
        assert hist.get_total_count() == point["requests"]
        assert hist.get_value_at_percentile(99) == point["p99"]
    assert sum(h.get_total_count() for h in intervals) == result["latency"]["count"] == result["totals"]["requests"]
    total = HdrHistogram(1, 3_600_000_000, 3)
    for hist in intervals:
        total.add(hist)
    assert total.get_value_at_percentile(99.9) == result["latency"]["percentiles"]["99.9"]
    # Timestamps: relative to the run's start, one second each.
    assert reader.get_start_time_sec() == pytest.approx(1767323045.0)        # 2026-01-02T03:04:05Z
    assert intervals[0].get_start_time_stamp() == pytest.approx(1767323045.0 * 1000)
    assert intervals[-1].get_end_time_stamp() - intervals[0].get_start_time_stamp() == pytest.approx(20_000)


def test_file_layout(tmp_path):
    path = tmp_path / "run.hlog"
    write_hlog(make_result(3, seed=1), path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#[") and any(line.startswith("#[StartTime: ") for line in lines)
    assert any(line.startswith("#[BaseTime: ") for line in lines)
    assert LEGEND in lines
    first = lines[lines.index(LEGEND) + 1].split(",")
    assert first[0] == "0.000" and first[1] == "1.000" and first[3].startswith("HISTF")


def test_uncorrected_intervals_are_tagged(tmp_path):
    result = make_result(5, seed=2)
    for point in result["timeseries"]:
        hist = Histogram()
        for v in range(100, 100 + point["requests"]):
            hist.record(v)
        point["hdr_uncorrected"] = hist.encode()
    path = tmp_path / "run.hlog"
    assert write_hlog(result, path) == 10
    _, intervals = read_intervals(path)
    corrected = [h for h in intervals if h.get_tag() is None]
    uncorrected = [h for h in intervals if h.get_tag() == "uncorrected"]
    assert len(corrected) == len(uncorrected) == 5
    assert sum(h.get_total_count() for h in corrected) == result["totals"]["requests"]
    assert sum(h.get_total_count() for h in uncorrected) == result["totals"]["requests"]


def test_without_interval_histograms_one_interval_of_the_total(tmp_path):
    result = make_result(4, seed=3, per_interval_hdr=False)
    path = tmp_path / "run.hlog"
    assert write_hlog(result, path) == 2        # corrected + uncorrected (open model)
    _, intervals = read_intervals(path)
    untagged = [h for h in intervals if h.get_tag() is None]
    assert [h.get_total_count() for h in untagged] == [result["totals"]["requests"]]


def test_real_run_result(surge_server, tmp_path):
    from tests.helpers import run_surge
    server = surge_server()
    run = run_surge("run", server.url, "-d", "1s", "-c", "4", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    path = tmp_path / "real.hlog"
    write_hlog(run.result, path)
    _, intervals = read_intervals(path)
    untagged = [h for h in intervals if h.get_tag() is None]
    assert len(untagged) == len(run.result["timeseries"])          # one per second: points carry `hdr`
    assert sum(h.get_total_count() for h in untagged) == run.result["latency"]["count"]
    # the 4 connections' connect times, in the second they were reported (the first)
    connect = [h for h in intervals if h.get_tag() == "connect"]
    assert sum(h.get_total_count() for h in connect) == run.result["connect"]["count"] == 4
    assert {h.get_tag() for h in intervals} == {None, "connect"}    # plain http: no handshake


def test_intervals_given_directly(tmp_path):
    hists = []
    for second in range(3):
        hist = Histogram()
        for v in range(1, 1001):
            hist.record(v * (second + 1))
        hists.append(hist)
    path = tmp_path / "direct.hlog"
    assert write_hlog([(float(i), 1.0, h) for i, h in enumerate(hists)], path, start_epoch_s=1000.0) == 3
    _, intervals = read_intervals(path)
    assert [h.get_total_count() for h in intervals] == [1000] * 3
    assert [h.get_value_at_percentile(50) for h in intervals] == [h.value_at_percentile(50) for h in hists]
    # Interval_Max is milliseconds (the values are µs); decoding gives the bucket's top, within 0.1%.
    for h, ours in zip(intervals, hists):
        assert abs(h.get_max_value() - ours.max) <= ours.max * 0.001


def test_no_histogram_at_all(tmp_path):
    result = make_result(2, seed=1, per_interval_hdr=False)
    del result["latency"]["hdr"]
    with pytest.raises(HlogError):
        write_hlog(result, tmp_path / "x.hlog")
