"""Execution segments, the start options and the result line, as functions
(no server): shares add up, stripes cover every index exactly once, the
options parse or say what is allowed, the run id is shared by construction."""
import datetime as dt

import pytest

from surge.result.emit import ResultLineError, decode_result_line, encode_result_line
from surge.result.schema import RESULT, SchemaProblem
from surge.run.segment import Segment, SegmentError, parse_segment, share_problems
from surge.run.start import (LaunchOptionError, derive_run_id, parse_barrier, parse_run_id, parse_start_at)


@pytest.mark.parametrize("total", [0, 1, 2, 3, 7, 50, 30_000, 30_001])
@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shares_add_up_and_differ_by_at_most_one(total, count):
    shares = [Segment(i, count).share(total) for i in range(count)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


@pytest.mark.parametrize("workers_per_segment", [(1, 1, 1), (2, 2, 2), (1, 3, 2), (4, 1)])
def test_stripes_cover_the_global_schedule_exactly_once(workers_per_segment):
    """Segments may have different worker counts: each segment's stripe is its
    own residue class mod N, and its workers split that class between them."""
    count = len(workers_per_segment)
    limit = 997
    taken = []
    for index, workers in enumerate(workers_per_segment):
        for worker in range(workers):
            first, step = Segment(index, count).stripe(worker, workers)
            taken += range(first, limit, step)
    assert sorted(taken) == list(range(limit))


def test_one_segment_stripes_as_the_workers_always_did():
    assert [Segment().stripe(w, 4) for w in range(4)] == [(w, 4) for w in range(4)]


@pytest.mark.parametrize("text, expected", [("0/3", Segment(0, 3)), ("2/3", Segment(2, 3)), (" 1 / 2 ", Segment(1, 2)),
                                            ("0/1", Segment(0, 1))])
def test_parse_segment(text, expected):
    assert parse_segment(text) == expected


@pytest.mark.parametrize("text, fragment", [("3/3", "I must be 0 to 2"), ("0/0", "N must be 1"), ("1", "I/N"),
                                            ("-1/3", "I/N"), ("a/b", "I/N")])
def test_parse_segment_refuses(text, fragment):
    with pytest.raises(SegmentError, match=fragment):
        parse_segment(text)


def test_share_problems_name_the_flag():
    assert share_problems(Segment(0, 3), 2, None, "-c") == [
        "--segment 0/3: -c 2 cannot be spread over 3 segments (each needs at least 1): give at least 3"]
    assert "-n 2" in share_problems(Segment(1, 3), 3, 2, "-c")[0]
    assert share_problems(Segment(0, 1), 1, 1, "-c") == []


def test_parse_start_at_forms_agree():
    unix = 1_796_221_800
    expected = unix * 1_000_000_000
    iso = dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    assert parse_start_at(str(unix)) == expected
    assert parse_start_at(iso) == expected
    assert parse_start_at(iso.replace("Z", "+00:00")) == expected
    shifted = dt.datetime.fromtimestamp(unix, dt.timezone(dt.timedelta(hours=1))).isoformat()
    assert parse_start_at(shifted) == expected
    assert parse_start_at(f"{unix}.25") == expected + 250_000_000
    assert parse_start_at(iso.replace("Z", ".5Z")) == expected + 500_000_000


@pytest.mark.parametrize("text, fragment", [("2026-12-02T14:30:00", "time zone"), ("2026-12-02", "date alone"),
                                            ("soon", "RFC 3339"), ("", "RFC 3339")])
def test_parse_start_at_refuses(text, fragment):
    with pytest.raises(LaunchOptionError, match=fragment):
        parse_start_at(text)


def test_parse_barrier_and_run_id():
    assert parse_barrier("surge-0.surge:7000") == ("surge-0.surge", 7000)
    assert parse_barrier("[::1]:7000") == ("::1", 7000)
    for bad in ("7000", "host:", "host:0", "host:70000", ":7000"):
        with pytest.raises(LaunchOptionError, match="HOST:PORT"):
            parse_barrier(bad)
    assert parse_run_id("nightly-42") == "nightly-42"
    for bad in ("", "-x", "a b", "x" * 64, "a/b"):
        with pytest.raises(LaunchOptionError, match="allowed"):
            parse_run_id(bad)


def test_run_id_is_derived_from_the_instant_and_the_plan():
    instant = parse_start_at("2026-12-02T14:30:00Z")
    first = derive_run_id(instant, "ab" * 8)
    assert first == derive_run_id(instant, "ab" * 8)
    assert first.startswith("20261202T143000Z-")
    assert first != derive_run_id(instant + 1, "ab" * 8)
    assert first != derive_run_id(instant, "cd" * 8)
    parse_run_id(first)             # a derived id is also a valid --run-id


def _minimal_result(run):
    return {"surge_version": "0", "config": {"url": "http://x/", "workers": 1, "timeout_s": 5, "model": "closed",
                                             "connections": 1, "duration_s": 1.0, "method": "GET"},
            "totals": {"requests": 0, "duration_s": 1.0, "rps": 0, "bytes_in": 0, "bytes_out": 0,
                       "responses_by_status": {}, "errors": {}},
            "latency": {"percentiles": {"50": 0, "99": 0}, "count": 0, "min": 0, "mean": 0, "stdev": 0, "max": 0},
            "timeseries": [], "run": run}


def test_schema_types_the_run_section():
    good = {"id": "r1", "segment": {"index": 1, "count": 3}, "started_at_unix_ns": 1, "plan_hash": "ab"}
    RESULT.check(_minimal_result(good), "")
    RESULT.check(_minimal_result({**good, "segment": None, "started_at_unix_ns": None}), "")
    with pytest.raises(SchemaProblem, match="run.segment.count"):
        RESULT.check(_minimal_result({**good, "segment": {"index": 0, "count": 0}}), "")
    with pytest.raises(SchemaProblem, match="run.id"):
        RESULT.check(_minimal_result({**good, "id": 5}), "")


def test_result_line_round_trip_and_damage():
    result = _minimal_result({"id": "r1", "segment": None, "started_at_unix_ns": 5})
    line = encode_result_line(result)
    assert line.startswith("SURGE-RESULT ") and "\n" not in line
    assert decode_result_line(line + "\r\n") == result
    assert encode_result_line(result) == line           # no timestamp inside: the same result, the same line
    with pytest.raises(ResultLineError, match="truncated"):
        payload = line.removeprefix("SURGE-RESULT ")
        decode_result_line("SURGE-RESULT " + payload[:len(payload) // 2 // 4 * 4])
    with pytest.raises(ResultLineError, match="base64"):
        decode_result_line("SURGE-RESULT not*base64")
    with pytest.raises(ResultLineError, match="start with"):
        decode_result_line("hello")


def test_a_part_shows_failed_objectives_without_exit_3():
    """Ending.part_of: a segment's objectives are the merged result's to judge."""
    from surge.outcome import EXIT_GATE, EXIT_OK
    from tests.run.test_session import conclude_with, result, workload
    from surge.plan.objective import parse_objective

    objectives = (parse_objective("p99 < 1us"),)
    code, said = conclude_with(result(), workload(*objectives), part_of="segment 1/3")
    assert code == EXIT_OK
    assert said[-1] == ("surge run: segment 1/3: not met by this part alone: p99 < 1us (the run's verdict is "
                        "made on the merged result: surge merge)", True)
    assert conclude_with(result(), workload(*objectives))[0] == EXIT_GATE


def test_start_at_beyond_year_9999_is_refused_not_a_crash():
    """(was an internal OverflowError: exit 1 and 'please report it')"""
    for text in ("99999999999999999999", "253402300800"):
        with pytest.raises(LaunchOptionError, match="at most 253402300799"):
            parse_start_at(text)
    assert parse_start_at("253402300799") == 253_402_300_799 * 1_000_000_000


def test_a_start_that_arrives_late_through_the_barrier_records_its_own_instant():
    """A follower whose START comes after the announced instant starts at once;
    its started_at_unix_ns must say when (it said the announced, past instant)."""
    import time
    from surge.run.barrier import BarrierStart
    announced_ns = time.time_ns() - 2_000_000_000
    sync = BarrierStart(("127.0.0.1", 9), Segment(1, 2), "ab" * 8, None, 5.0)
    sync._decide(announced_ns, "r1")
    decision = sync.poll()
    assert decision.start_unix_ns > announced_ns + 1_000_000_000
    assert decision.start_ns > time.monotonic_ns() - 1_000_000_000 and decision.run_id == "r1"


def test_parts_with_their_own_bind_addresses_share_the_plan_hash():
    """--bind names this machine's addresses: instances on different machines
    (ssh, a CI matrix) give different ones and are still one run (the barrier
    refused them and --start-at derived different run ids)."""
    import dataclasses
    import socket
    from surge.plan.build import build_workload
    from surge.plan.options import RunOptions
    from surge.run.start import plan_fingerprint
    workload = build_workload("http://127.0.0.1:8080/", RunOptions(explicit={})).workload
    bound = dataclasses.replace(workload, source_addresses=((socket.AF_INET, b"", "127.0.0.2"),))
    assert plan_fingerprint(bound) == plan_fingerprint(workload)
