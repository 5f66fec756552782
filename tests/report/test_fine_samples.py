"""Quarter-second samples (`samples` in the result): exact against the
per-second time series, and what lets a 5-second run's regression be shown."""
import copy
import json

from surge.core._histogram import Histogram
from surge.report.compare import compare
from tests.helpers import run_surge, run_surge_together


def test_five_second_runs_far_slower_are_a_regression(surge_server, tmp_path):
    # 2 ms against 20 ms per response: a change no load on a shared machine can hide
    # or fake (noise adds the same few ms to both), so the verdict is certain.
    # The two runs go at once: the slow side is bound by its 20-ms delay (~500/s over
    # 10 connections, little CPU), so sharing the machine cannot close a 10x gap.
    fast, slow = surge_server(delay="2ms", workers=1), surge_server(delay="20ms", workers=1)
    results = {}
    runs = run_surge_together(*[["run", server.url, "-c", "10", "-w", "2", "-d", "5s", "-q"]
                                for server in (fast, slow)])
    for name, run in zip(("fast", "slow"), runs):
        assert run.code == 0 and run.result is not None, run.stderr
        results[name] = run.result
        (tmp_path / f"{name}.json").write_text(json.dumps(run.result))

    # Every second is exactly the sum of its quarters; nothing else in the time series changed.
    for result in results.values():
        samples, points = result["samples"], result["timeseries"]
        assert [s["t"] for s in samples[:4]] == [0.25, 0.5, 0.75, 1.0]
        assert sum(s["requests"] for s in samples) == result["totals"]["requests"]
        total = Histogram()
        for sample in samples:
            total.add(Histogram.decode(sample["hdr"]))
        assert total.encode() == result["latency"]["hdr"]
        # (the last second or two hold a worker's final snapshot, placed by its end instant)
        for k, point in enumerate(points[:-2]):
            second = Histogram()
            for sample in samples[4 * k:4 * k + 4]:
                second.add(Histogram.decode(sample["hdr"]))
            assert second.encode() == point["hdr"], k

    compared = run_surge("compare", str(tmp_path / "fast.json"), str(tmp_path / "slow.json"), json_result=False)
    assert compared.code == 3, compared.stdout + compared.stderr
    last = compared.stdout.splitlines()[-1]
    # The slow side's latency is its 20-ms delay whatever the machine does, so p50
    # is always a regression.  requests/s usually is too, but under heavy load the
    # fast side's throughput drifts in long stretches: its quarter seconds are then
    # so correlated with their neighbours that 20 of them cannot make even a 7x
    # drop significant (the test says "cannot test", as it should).
    assert last.startswith("  REGRESSION beyond 5%") and "p50 +" in last, compared.stdout
    assert "250 ms samples" in compared.stdout

    rps = next(m for m in compare(results["fast"], results["slow"]).metrics if m.name == "requests/s")
    assert rps.interval_s == 0.25 and min(rps.samples) >= 18

    # Only one side with quarter samples: both are compared on one-second samples.
    older = copy.deepcopy(results["slow"])
    del older["samples"]
    rps = next(m for m in compare(results["fast"], older).metrics if m.name == "requests/s")
    assert rps.interval_s == 1.0 and max(rps.samples) <= 6
