"""How much of a long run the supervisor keeps, so a 24-hour run fits in memory
and its result on disk (issue 15 item 5).

Each worker's per-second snapshot (~12 KB: counters, the second's latency
histogram, per-step histograms, four sub-second reads) is kept as it came for
the most recent seconds only:

    the last SAMPLE_S (600 s)   whole, with the sub-second reads `compare` tests on
    the last FINE_S (3600 s)    per second, without the sub-second reads (~5 KB)
    older                       folded into BLOCK_S (60 s) blocks: one snapshot per
                                block, its cumulative counters the block's last and
                                its interval histograms the block's added (exact)

So a run of up to an hour has one point a second in its result, a longer one
a point a minute for what lies more than an hour before its end (marked
"interval_s": 60); totals and the whole run's histograms are exact either way
(histograms add).  Memory per worker: ~12-40 KB a second for the recent hour (more
in the open model and with steps: ~100 MB for two workers at 20,000/s) plus ~5-15 KB
per older minute (24 h: ~7-20 MB).  Folding is decided by the second alone,
the same for every worker, so the blocks of all workers line up.
"""
from __future__ import annotations

SAMPLE_S = 600          # seconds whose snapshots keep their sub-second reads
FINE_S = 3600           # seconds kept one snapshot a second
BLOCK_S = 60            # older seconds are folded into blocks of this many

# Interval histograms of a snapshot (the rest is cumulative): a block adds them.
INTERVAL_HISTOGRAMS = ("latency", "latency_uncorrected", "connect", "tls_handshake")


def retain(ticks: dict[int, dict], newest: int) -> None:
    """Trim one worker's ticks ({second: snapshot}, in place) once second
    `newest` has arrived: drop the sub-second reads older than SAMPLE_S and
    fold the block that has just become older than FINE_S."""
    old = newest - SAMPLE_S
    if old in ticks and ticks[old].get("quarters"):
        ticks[old] = {**ticks[old], "quarters": None}      # None: dropped (surge.run.samples skips it)
    if newest % BLOCK_S == 0 and newest - FINE_S >= BLOCK_S:
        end = newest - FINE_S
        seconds = [k for k in range(end - BLOCK_S + 1, end + 1) if k in ticks]
        if len(seconds) > 1 or (seconds and "block_start_s" not in ticks[seconds[0]]):
            folded = fold([ticks.pop(k) for k in seconds])
            folded["block_start_s"] = end - BLOCK_S
            ticks[end] = folded


def fold(snapshots: list[dict]) -> dict:
    """Consecutive snapshots of one worker as one: the last one's cumulative
    counters, every interval histogram added, no sub-second reads."""
    from surge.core._histogram import Histogram

    def added(sparses):
        sparses = [s for s in sparses if s is not None]
        if not sparses:
            return None
        total = Histogram()
        for sparse in sparses:
            total.add_sparse(*sparse)
        return total.to_sparse()

    last = snapshots[-1]
    out = {**last, "quarters": None}
    for key in INTERVAL_HISTOGRAMS:
        if key in last:
            out[key] = added(snap.get(key) for snap in snapshots)
    flows = last.get("flows")
    if flows:
        every = [snap["flows"] for snap in snapshots if snap.get("flows")]
        steps = [(*step[:5], added(f["steps"][i][5] for f in every)) for i, step in enumerate(flows["steps"])]
        corrected = flows.get("steps_corrected")
        if corrected is not None:
            corrected = [added((f.get("steps_corrected") or [None] * len(corrected))[i] for f in every)
                         for i in range(len(corrected))]
        out["flows"] = {**flows, "steps": steps, "steps_corrected": corrected}
    return out
