"""Sub-second samples: the whole run's latency in quarter-second intervals,
for `surge compare`'s significance test (4x the per-second samples).

Workers read the second's histogram so far at each quarter without resetting
it (surge.run.worker.Worker.quarter), so a quarter is the difference of two
reads; the tick (or the final snapshot) closes the second.
"""
from __future__ import annotations

import numpy as np

from surge.core._histogram import Histogram
from surge.plan.units import NS_PER_S

SAMPLES_PER_S = 4       # the worker's reads per second (surge.run.worker.Worker.quarter)


def _dense(sparse) -> np.ndarray:
    """The counts of a `Histogram.to_sparse()` snapshot as one array over every bucket
    (numpy: the same work in Python dicts was most of the supervisor's CPU at the end
    of a run; bincount is exact for counts below 2**53)."""
    stats, packed = sparse
    pairs = np.frombuffer(packed, dtype="<i8").reshape(-1, 2)
    return np.bincount(pairs[:, 0], weights=pairs[:, 1], minlength=stats[4]).astype(np.int64)


def sub_second_samples(record) -> list[dict] | None:
    """The whole run's latency in quarter-second intervals, every worker added:
    points shaped like `timeseries` ones, [{"t": 0.25, "requests": n, "hdr": ...}, ...]
    (t the end of each), for `surge compare`'s significance test (4x the samples).

    Workers read the second's histogram so far at each quarter without resetting it
    (worker.Worker.quarter), so a quarter is the difference of two reads; the tick
    (or the final snapshot) closes the second. None when a snapshot lacks its
    quarters (a worker that died before sending them)."""
    if record.start_ns is None:
        return None
    slots: dict[int, np.ndarray] = {}       # quarter -> its counts per bucket, every worker added
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
            previous = 0
            for q, sparse in [*snap["quarters"], (end_q, snap["latency"])]:
                counts = _dense(sparse)         # the second so far: a quarter is the difference
                slots[q] = slots.get(q, 0) + (counts - previous)
                previous = counts
    if not slots:
        return None
    duration = record.duration_s()
    out = []
    for q in range(1, max(slots) + 1):
        hist = Histogram()
        counts = slots.get(q)
        indices = np.flatnonzero(counts) if counts is not None else ()
        if len(indices):
            packed = np.column_stack((indices, counts[indices])).astype("<i8").tobytes()
            hist.add_sparse((int(counts.sum()), 0, 0, 0, len(counts)), packed)
        out.append({"t": min(q / SAMPLES_PER_S, round(duration, 3)), "requests": hist.total_count,
                    "hdr": hist.encode()})
    return out
