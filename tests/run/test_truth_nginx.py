"""Counts against nginx's own stub_status counter: the ground truth."""
import pytest
from hdrh.histogram import HdrHistogram

from tests.helpers import run_surge


@pytest.mark.parametrize("workers, connections, pipeline, timing",
                         [(1, 1, 1, "batch"), (2, 20, 1, "batch"), (2, 8, 16, "batch"), (2, 8, 16, "each")])
def test_exact_request_count(nginx, workers, connections, pipeline, timing):
    before = nginx.requests()
    run = run_surge("run", nginx.url, "-n", "3001", "-c", str(connections), "-w", str(workers),
                    "--pipeline", str(pipeline), "--pipeline-timing", timing, "-q")
    assert run.code == 0, run.stderr
    # The summary says when a pipelined batch's responses are all timed at its end.
    assert ("(timed per batch)" in run.stdout) == (pipeline > 1 and timing == "batch"), run.stdout
    assert nginx.requests() - before == 3001
    totals = run.result["totals"]
    assert totals["requests"] == 3001
    assert totals["responses_by_status"] == {"200": 3001}
    assert sum(totals["errors"].values()) == 0


def test_timed_run_count_matches_server_minus_in_flight(nginx):
    before = nginx.requests()
    run = run_surge("run", nginx.url, "-d", "2s", "-c", "30", "-w", "2", "-q")
    served = nginx.requests() - before
    totals = run.result["totals"]
    assert run.code == 0, run.stderr
    assert totals["requests"] > 1000
    # Requests in flight at the stop were served (or not) after surge stopped counting.
    assert 0 <= served - totals["requests"] <= totals["in_flight_at_stop"]
    # Never (much) short of the deadline; a busy machine may wake the workers late.
    assert 1.99 <= totals["duration_s"] <= 2.5, totals["duration_s"]


def test_result_file_contract(nginx):
    run = run_surge("run", nginx.url, "-d", "2s", "-c", "10", "-w", "2", "-q")
    r = run.result
    for key in ("surge_version", "started_at", "config", "machine", "interrupted", "totals", "latency", "timeseries"):
        assert key in r
    assert set(r["machine"]) >= {"cpu_model", "cpus", "kernel", "python"}
    assert set(r["totals"]["errors"]) == {"connect", "read", "write", "timeout", "parse", "closed", "tls"}
    lat = r["latency"]
    assert lat["unit"] == "us"
    assert list(lat["percentiles"]) == ["50", "75", "90", "95", "99", "99.9", "99.99"]
    assert lat["min"] <= lat["percentiles"]["50"] <= lat["percentiles"]["99"] <= lat["max"] * 1.001 + 1
    decoded = HdrHistogram.decode(lat["hdr"])
    assert decoded.get_total_count() == r["totals"]["requests"]
    for key, value in lat["percentiles"].items():
        assert decoded.get_value_at_percentile(float(key)) == value
    # Per-second points: the whole seconds, then nothing (2s run: points at t=1 and t=2 or a partial).
    series = r["timeseries"]
    assert [p["t"] for p in series][:1] == [1.0]
    assert sum(p["requests"] for p in series) == r["totals"]["requests"]
    assert r["interrupted"] is False
