"""The exact merge of what new connections cost (surge.run.connection_costs), on
synthetic worker snapshots shaped as the TLS contract says the engine sends them:
histograms per interval are added, cumulative counters are the last report
summed, a second's count is the difference of consecutive reports."""
from dataclasses import dataclass

import numpy as np

from surge.core._histogram import Histogram
from surge.run import connection_costs as costs


@dataclass(frozen=True)
class Options:
    """The two TlsOptions fields the section reads (surge.plan.tls.TlsOptions has them)."""
    insecure: bool = False
    resume: bool = True


def _sparse(values) -> tuple:
    hist = Histogram()
    hist.record_many(np.asarray(values, dtype=np.int64))
    return hist.to_sparse()


def _worker(seed: int, seconds: int, tls: bool = True) -> tuple[list[dict], list[int], list[int]]:
    """A worker's snapshots, and every connect and handshake value it recorded."""
    rng = np.random.default_rng(seed)
    snaps, connects, handshakes = [], [], []
    opened = full = resumed = 0
    errors: dict[str, int] = {}
    for k in range(seconds):
        n = int(rng.integers(0, 40))
        connect = rng.integers(20, 5000, n).tolist()
        handshake = rng.integers(300, 90_000, n).tolist()
        connects += connect
        opened += n
        snap = {"connections_opened": opened, "connect": _sparse(connect) if n else None,
                "tls_handshake": None, "handshakes": None, "tls_errors": {}, "tls_session": None}
        if tls:
            handshakes += handshake
            first = k == 0 and n
            full, resumed = full + (n if k == 0 else 1), resumed + (0 if k == 0 else n - 1)
            errors["certificate verify failed"] = errors.get("certificate verify failed", 0) + k
            if k == 2:
                errors[f"alert {seed}"] = 1
            snap.update(tls_handshake=_sparse(handshake) if n else None,
                        handshakes={"full": full, "resumed": resumed}, tls_errors=dict(errors),
                        tls_session=({"protocol": "TLSv1.3", "cipher": f"CIPHER_{seed}", "group": "X25519",
                                      "ktls": False} if first or k > 0 else None))
        snaps.append(snap)
    return snaps, connects, handshakes


def test_histograms_add_every_interval_of_every_worker():
    workers = [_worker(seed, 6) for seed in (1, 2, 3)]
    every = [snap for snaps, _, _ in workers for snap in snaps]
    for key, index in (("connect", 1), ("tls_handshake", 2)):
        merged = costs.histogram_of(every, key)
        expected = Histogram()
        expected.record_many(np.asarray([v for w in workers for v in w[index]], dtype=np.int64))
        assert merged.total_count == expected.total_count > 0
        assert merged.encode() == expected.encode()


def test_a_seconds_count_is_the_difference_of_consecutive_reports():
    workers = [_worker(seed, 5)[0] for seed in (4, 5)]
    total = 0
    for k in range(5):
        snaps = [(w[k], w[k - 1] if k else None) for w in workers]
        fields = costs.point_fields(snaps)
        assert fields["connections_opened"] == sum(
            w[k]["connections_opened"] - (w[k - 1]["connections_opened"] if k else 0) for w in workers)
        total += fields["connections_opened"]
        recorded = Histogram.decode(fields["hdr_connect"]).total_count if "hdr_connect" in fields else 0
        assert recorded == fields["connections_opened"]        # every connection opened was timed once
    assert total == sum(w[-1]["connections_opened"] for w in workers)


def test_the_tls_section_sums_the_last_reports_and_keeps_the_first_session():
    workers = [_worker(seed, 4)[0] for seed in (7, 8)]
    section = costs.tls_section(workers, [Options()])
    assert section["handshakes"] == {
        "full": sum(w[-1]["handshakes"]["full"] for w in workers),
        "resumed": sum(w[-1]["handshakes"]["resumed"] for w in workers)}
    assert section["errors"] == {"certificate verify failed": 2 * (0 + 1 + 2 + 3), "alert 7": 1, "alert 8": 1}
    assert list(section["errors"])[0] == "certificate verify failed"     # most frequent first
    assert (section["protocol"], section["cipher"], section["group"]) == ("TLSv1.3", "CIPHER_7", "X25519")
    assert section["verify"] is True and section["resume"] is True and section["ktls"] is False
    assert "ktls_send" not in section           # these snapshots do not say the directions


def test_verify_is_false_when_any_https_host_was_insecure():
    workers = [_worker(1, 2)[0]]
    assert costs.tls_section(workers, [Options(), Options(insecure=True)])["verify"] is False
    assert costs.tls_section(workers, [Options(resume=False)])["resume"] is False


def test_no_tls_host_no_section():
    workers = [_worker(seed, 3, tls=False)[0] for seed in (1, 2)]
    assert costs.tls_section(workers, []) is None
    fields = costs.point_fields([(w[1], w[0]) for w in workers])
    assert "hdr_tls_handshake" not in fields
    assert costs.histogram_of([s for w in workers for s in w], "tls_handshake").total_count == 0


def test_snapshots_before_the_keys_existed_count_nothing():
    old = {"completed": 3, "latency": _sparse([100])}
    assert costs.point_fields([(old, None)]) == {"connections_opened": 0}
    assert costs.tls_section([[old]], []) is None
    # an https host whose workers died before any snapshot: a section of zeros
    section = costs.tls_section([[]], [Options()])
    assert section["handshakes"] == {"full": 0, "resumed": 0} and section["protocol"] is None


def test_more_reasons_than_the_cap_fold_into_other():
    snaps = [{"handshakes": {"full": 0, "resumed": 0},
              "tls_errors": {f"reason {w}-{i}": 1 + i for i in range(12)}} for w in range(2)]
    errors = costs.tls_section([[s] for s in snaps], [Options()])["errors"]
    assert len(errors) == costs.MAX_TLS_ERROR_REASONS
    assert sum(errors.values()) == 2 * sum(1 + i for i in range(12))
    assert errors["other"] == sum(sorted([1 + i for i in range(12)] * 2)[:24 - 15])


# ---- the result file a RunRecord makes (surge.run.merge wires the above in) -------------------
S = 1_000_000_000
START_NS = 1_000 * S


def _record(url: str, workers: list[list[dict]], **options):
    from surge.plan.build import url_workload
    from surge.plan.options import RunOptions
    from surge.run.merge import RunRecord, WorkerRecord

    built = url_workload(url, RunOptions(duration_ns=len(workers[0]) * S, **options))
    assert not built.problems, built.problems
    run = RunRecord(built.workload, [WorkerRecord(index) for index in range(len(workers))])
    run.start_ns = START_NS
    for k in range(1, len(workers[0])):         # the ticks as they come: each second from every worker
        for worker, snaps in zip(run.workers, workers):
            run.add_tick(worker, k, snaps[k - 1])
    for worker, snaps in zip(run.workers, workers):
        run.add_final(worker, snaps[-1], START_NS + len(snaps) * S)
    return run


def _engine_like(snaps: list[dict]) -> list[dict]:
    """The counters every snapshot also carries, made consistent with its connection keys."""
    done = 0
    out = []
    for snap in snaps:
        done += 5
        out.append({"completed": done, "bytes_in": 0, "bytes_out": 0, "statuses": {200: done},
                    "errors": {"connect": 0}, "latency": _sparse([100] * 5), "open_connections": 3, **snap})
    return out


def test_the_result_file_carries_every_connection_cost_merged_exactly():
    workers = [_worker(seed, 4) for seed in (21, 22)]
    run = _record("https://127.0.0.1:9/", [_engine_like(w[0]) for w in workers], insecure=True,
                  disable_keepalive=True)
    result = run.to_result()
    from surge.result.load import check_result
    check_result(result, "result.json")
    assert result["totals"]["connections_opened"] == sum(w[0][-1]["connections_opened"] for w in workers)
    assert [p["connections_opened"] for p in result["timeseries"]] == [
        sum(w[0][k]["connections_opened"] - (w[0][k - 1]["connections_opened"] if k else 0) for w in workers)
        for k in range(4)]
    connects = Histogram()
    connects.record_many(np.asarray([v for w in workers for v in w[1]], dtype=np.int64))
    assert result["connect"]["hdr"] == connects.encode()
    assert result["connect"]["count"] == sum(p["connections_opened"] for p in result["timeseries"])
    assert result["tls_handshake"]["count"] == sum(len(w[2]) for w in workers)
    assert result["tls"]["verify"] is False and result["tls"]["handshakes"]["full"] > 0
    assert result["config"]["keepalive"] is False


def test_a_plain_http_result_has_connect_but_no_tls():
    workers = [_worker(seed, 3, tls=False) for seed in (1, 2)]
    result = _record("http://127.0.0.1:9/", [_engine_like(w[0]) for w in workers]).to_result()
    assert result["connect"]["count"] == sum(len(w[1]) for w in workers)
    assert "tls" not in result and "tls_handshake" not in result
    assert all("hdr_tls_handshake" not in p for p in result["timeseries"])
