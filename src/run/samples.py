"""Sub-second samples: the whole run's latency in quarter-second intervals,
for `surge compare`'s significance test (4x the per-second samples).

Workers read the second's histogram so far at each quarter without resetting
it (surge.run.worker.Worker.quarter), so a quarter is the difference of two
reads; the tick (or the final snapshot) closes the second.
"""
from __future__ import annotations

from surge.core._histogram import Histogram
from surge.plan.units import NS_PER_S

SAMPLES_PER_S = 4       # the worker's reads per second (surge.run.worker.Worker.quarter)


def sub_second_samples(record) -> list[dict] | None:
    """The whole run's latency in quarter-second intervals, every worker added:
    points shaped like `timeseries` ones, [{"t": 0.25, "requests": n, "hdr": ...}, ...]
    (t the end of each), for `surge compare`'s significance test (4x the samples).

    Workers read the second's histogram so far at each quarter without resetting it
    (worker.Worker.quarter), so a quarter is the difference of two reads; the tick
    (or the final snapshot) closes the second. None when a snapshot lacks its
    quarters (a worker that died before sending them).

    The differences are taken in the compiled histogram on the packed reads
    (Histogram.add_sparse_difference): a Python dict per bucket and quarter cost
    the supervisor ~20 ms per worker of an 8-s run, numpy more in its import."""
    if record.start_ns is None:
        return None
    reads: dict[int, list[tuple]] = {}      # quarter -> [(read, the read before it in its second), ...]
    duration_ns = record.workload.load.duration_ns
    # A timed run's last quarter is the deadline's (as RunRecord.final_second caps the
    # last second): a worker that stopped 150 ms late must not add an empty quarter.
    last_q = -(-duration_ns * SAMPLES_PER_S // NS_PER_S) if duration_ns else None
    for w in record.workers:
        ordered = [(k * SAMPLES_PER_S, snap) for k, snap in sorted(w.ticks.items())]
        if w.final is not None and w.end_ns is not None:
            elapsed_q = (w.end_ns - record.start_ns) / NS_PER_S * SAMPLES_PER_S
            after = max([q for q, _ in w.final.get("quarters") or ()] + [ordered[-1][0] if ordered else 0])
            # the rest of the run goes to the quarter it mostly lies in (a stop
            # 20 ms late on a busy machine is still the last quarter's)
            end_q = round(elapsed_q) if last_q is None else min(round(elapsed_q), last_q)
            ordered.append((max(after + 1, end_q), w.final))
        for end_q, snap in ordered:
            if "quarters" not in snap:
                return None
            if snap["quarters"] is None:    # a long run's older seconds (surge.run.retention): none kept
                continue
            so_far = None           # each second's reads start from an empty histogram
            for q, sparse in [*snap["quarters"], (end_q, snap["latency"])]:
                reads.setdefault(q, []).append((sparse, so_far))
                so_far = sparse
    if not reads:
        return None
    duration = record.duration_s()
    hist = Histogram()          # one for every quarter (each ~190 KB of counts)
    out = []
    first = min(reads)                  # 1, or a long run's first second still kept (retention)
    first -= (first - 1) % SAMPLES_PER_S
    for q in range(first, max(reads) + 1):
        hist.reset_counts()
        for now, before in reads.get(q, ()):
            hist.add_sparse_difference(now, before)
        out.append({"t": min(q / SAMPLES_PER_S, round(duration, 3)), "requests": hist.total_count,
                    "hdr": hist.encode()})
    return out
