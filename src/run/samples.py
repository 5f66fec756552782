"""Sub-second samples: the whole run's latency in quarter-second intervals,
for `surge compare`'s significance test (4x the per-second samples).

Workers read the second's histogram so far at each quarter without resetting
it (surge.run.worker.Worker.quarter), so a quarter is the difference of two
reads; the tick (or the final snapshot) closes the second.
"""
from __future__ import annotations

import struct

from surge.core._histogram import Histogram
from surge.plan.units import NS_PER_S

SAMPLES_PER_S = 4       # the worker's reads per second (surge.run.worker.Worker.quarter)


def _sparse_counts(sparse) -> dict[int, int]:
    """{bucket index: count} of a `Histogram.to_sparse()` snapshot."""
    _, packed = sparse
    values = struct.unpack(f"<{len(packed) // 8}q", packed)
    return dict(zip(values[0::2], values[1::2]))


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
    slots: dict[int, dict[int, int]] = {}
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
            so_far: dict[int, int] = {}
            for q, sparse in [*snap["quarters"], (end_q, snap["latency"])]:
                counts = _sparse_counts(sparse)
                slot = slots.setdefault(q, {})
                for index, count in counts.items():
                    if count != so_far.get(index, 0):
                        slot[index] = slot.get(index, 0) + count - so_far.get(index, 0)
                so_far = counts
    if not slots:
        return None
    duration = record.duration_s()
    out = []
    for q in range(1, max(slots) + 1):
        counts = slots.get(q, {})
        hist = Histogram()
        pairs = [v for index, count in sorted(counts.items()) if count for v in (index, count)]
        if pairs:
            total = sum(pairs[1::2])
            hist.add_sparse((total, 0, 0, 0, hist.to_sparse()[0][4]), struct.pack(f"<{len(pairs)}q", *pairs))
        out.append({"t": min(q / SAMPLES_PER_S, round(duration, 3)), "requests": hist.total_count,
                    "hdr": hist.encode()})
    return out
