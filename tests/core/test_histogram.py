"""The HDR histogram: layout, percentiles, merge, and V2 interop with the
hdrhistogram package (used as an oracle only)."""
import random

import pytest
from hdrh.histogram import HdrHistogram

from surge.core._histogram import Histogram, HistogramDecodeError

HIGHEST = 3_600_000_000
PERCENTILES = [0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]


def both(values):
    ours, oracle = Histogram(), HdrHistogram(1, HIGHEST, 3)
    for v in values:
        ours.record(v)
        oracle.record_value(v)
    return ours, oracle


def test_layout_covers_one_hour_at_three_digits():
    h = Histogram()
    assert h.highest_trackable == HIGHEST
    # 3 significant digits: 2048 sub-buckets; every value below 2048 is exact.
    for v in (0, 1, 2, 1000, 2047):
        assert h.value_from_index(_index_of(h, v)) == v


def _index_of(h, value):
    h2 = Histogram()
    h2.record(value)
    counts = h2.counts_array()
    return next(i for i, c in enumerate(counts) if c)


def test_index_round_trip_keeps_three_significant_digits():
    h = Histogram()
    rng = random.Random(1)
    for _ in range(2000):
        v = rng.randrange(1, HIGHEST)
        i = _index_of(h, v)
        low = h.value_from_index(i)
        assert low <= v
        assert (v - low) / v < 0.001          # within the bucket's resolution


def test_percentiles_against_sorted_list():
    rng = random.Random(2)
    values = [rng.randrange(1, 1000) for _ in range(10_000)]   # below 2048: exact buckets
    h, _ = both(values)
    ordered = sorted(values)
    for p in (1, 25, 50, 90, 99, 99.9):
        rank = max(int(p / 100 * len(values) + 0.5), 1)
        assert h.value_at_percentile(p) == ordered[rank - 1]
    assert h.min == ordered[0] and h.max == ordered[-1]
    assert h.mean == pytest.approx(sum(values) / len(values))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_percentiles_match_hdrhistogram_package(seed):
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(6, 2)) for _ in range(50_000)]
    ours, oracle = both(values)
    assert ours.total_count == oracle.get_total_count()
    assert ours.values_at_percentiles(PERCENTILES[:-1]) == [min(oracle.get_value_at_percentile(p), ours.max) for p in PERCENTILES[:-1]]
    assert ours.stdev == pytest.approx(oracle.get_stddev(), rel=0.01)


def test_merge_equals_recording_everything_in_one():
    rng = random.Random(6)
    parts = [[rng.randrange(1, 10_000_000) for _ in range(5000)] for _ in range(4)]
    merged = Histogram()
    for part in parts:
        h, _ = both(part)
        merged.add(h)
    single, _ = both([v for part in parts for v in part])
    assert merged.counts_array() == single.counts_array()
    assert (merged.total_count, merged.min, merged.max, merged.mean) == (single.total_count, single.min, single.max, single.mean)


def test_sparse_snapshot_round_trip():
    h, _ = both([5, 5, 700, 12_345, 9_999_999])
    copy = Histogram()
    copy.add_sparse(*h.to_sparse())
    assert copy.counts_array() == h.counts_array()
    assert copy.total_count == 5 and copy.max == 9_999_999


def test_sparse_form_is_little_endian_index_count_pairs():
    import struct
    h, _ = both([5, 5, 700])
    stats, packed = h.to_sparse()
    values = struct.unpack(f"<{len(packed) // 8}q", packed)
    assert [h.value_from_index(i) for i in values[0::2]] == [5, 700] and list(values[1::2]) == [2, 1]
    assert stats == (3, 5, 700, 710, h.counts_len)


def test_sparse_difference_is_what_was_recorded_between_two_reads():
    rng = random.Random(11)
    first = [int(rng.expovariate(1 / 500)) + 1 for _ in range(2_000)]
    second = [int(rng.expovariate(1 / 5_000)) + 1 for _ in range(3_000)] + [HIGHEST * 2]
    h = Histogram()
    for v in first:
        h.record(v)
    before = h.to_sparse()
    for v in second:
        h.record(v)
    diff = Histogram()
    diff.add_sparse_difference(h.to_sparse(), before)
    only_second, _ = both(second)
    assert diff.counts_array() == only_second.counts_array()
    assert diff.total_count == len(second) and diff.encode() == only_second.encode()
    since_empty = Histogram()                   # no earlier read: everything so far
    since_empty.add_sparse_difference(h.to_sparse())
    assert since_empty.counts_array() == h.counts_array() and since_empty.total_count == h.total_count
    diff.add_sparse_difference(before)          # differences add up like any snapshot
    assert diff.counts_array() == h.counts_array()


def test_sparse_forms_of_another_layout_are_refused():
    other = Histogram(1, 1_000_000, 2)
    other.record(3)
    with pytest.raises(ValueError, match="layout"):
        Histogram().add_sparse_difference(other.to_sparse())
    with pytest.raises(ValueError, match="layout"):
        Histogram().add_sparse(*other.to_sparse())


def test_encode_decodes_with_hdrhistogram_package():
    rng = random.Random(7)
    values = [int(rng.expovariate(1 / 800)) + 1 for _ in range(30_000)] + [HIGHEST // 2]
    ours, oracle = both(values)
    decoded = HdrHistogram.decode(ours.encode())
    assert decoded.get_total_count() == len(values)
    for p in PERCENTILES[:-1]:
        assert min(decoded.get_value_at_percentile(p), ours.max) == ours.value_at_percentile(p)


def test_decode_reads_hdrhistogram_package_output():
    rng = random.Random(8)
    _, oracle = both([rng.randrange(1, 5_000_000) for _ in range(20_000)])
    ours = Histogram.decode(oracle.encode())
    assert ours.total_count == oracle.get_total_count()
    assert ours.values_at_percentiles(PERCENTILES[:-1]) == [min(oracle.get_value_at_percentile(p), ours.max) for p in PERCENTILES[:-1]]


def test_our_encoding_round_trips():
    h, _ = both([1, 2, 3, 1000, 1001, 50_000, 50_000])
    back = Histogram.decode(h.encode())
    assert back.counts_array() == h.counts_array()


@pytest.mark.parametrize("text", ["", "not base64!!", "aGVsbG8=", Histogram().encode()[:12]])
def test_decode_rejects_garbage(text):
    with pytest.raises(HistogramDecodeError):
        Histogram.decode(text)


def test_values_beyond_range_are_clamped_not_lost():
    h = Histogram()
    h.record(HIGHEST * 10)
    assert h.total_count == 1
    assert h.max == HIGHEST * 10
    assert h.value_at_percentile(100) >= HIGHEST


def test_record_many_matches_record():
    import numpy as np

    values = np.random.default_rng(9).integers(1, 1_000_000, size=10_000, dtype=np.int64)
    a, b = Histogram(), Histogram()
    a.record_many(values)
    for v in values:
        b.record(int(v))
    assert a.counts_array() == b.counts_array()


def test_empty_histogram():
    h = Histogram()
    assert (h.total_count, h.min, h.max, h.mean, h.stdev) == (0, 0, 0, 0.0, 0.0)
    assert h.values_at_percentiles([50, 99]) == [0, 0]
    assert HdrHistogram.decode(h.encode()).get_total_count() == 0


def test_percentiles_never_read_above_the_largest_value_recorded():
    """69,361 us lies inside a bucket whose highest equivalent value is above it;
    HdrHistogram's convention would report that (p99 > max in a summary)."""
    h = Histogram()
    for value_us in (120, 69_361, 69_361):
        h.record(value_us)
    assert h.values_at_percentiles([50, 99, 100]) == [69_361, 69_361, 69_361]
    assert h.value_at_percentile(0) == 120
