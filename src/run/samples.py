"""Sub-second samples: the run's latency in quarter-second intervals, for
`surge compare`'s significance test (4x the per-second samples).

Workers read the second's histogram so far at each quarter without resetting
it (surge.run.worker.Worker.quarter), so a quarter is the difference of two
reads; the tick (or the final snapshot) closes the second.  The supervisor
(surge.run.merge.RunRecord) hands each snapshot's reads to a `QuarterReads`
as the snapshot arrives at its second's end, and takes the quarters out as
encoded samples once no worker can add to them (its second finished), so no
read is held longer than a second or two.  The result keeps the last
SAMPLE_S seconds' (surge.run.retention).
"""
from __future__ import annotations

from surge.core._histogram import Histogram
from surge.plan.units import NS_PER_S

SAMPLES_PER_S = 4       # the worker's reads per second (surge.run.worker.Worker.quarter)


def final_end_quarter(record, end_ns: int, quarters, after_q: int) -> int:
    """The quarter a worker's final snapshot closes: the one the rest of the run
    mostly lies in (a stop 20 ms late on a busy machine is still the last
    quarter's), in a timed run at most the deadline's, and after any read it
    holds and `after_q` (its last tick's)."""
    duration_ns = record.workload.load.duration_ns
    # A timed run's last quarter is the deadline's (as RunRecord.final_second caps the
    # last second): a worker that stopped 150 ms late must not add an empty quarter.
    last_q = -(-duration_ns * SAMPLES_PER_S // NS_PER_S) if duration_ns else None
    elapsed_q = (end_ns - record.start_ns) / NS_PER_S * SAMPLES_PER_S
    end_q = round(elapsed_q) if last_q is None else min(round(elapsed_q), last_q)
    after = max([q for q, _ in quarters or ()] + [after_q])
    return max(after + 1, end_q)


class QuarterReads:
    """Reads not yet made into samples: quarter -> [(read, the read before it in its second)]."""

    def __init__(self):
        self.reads: dict[int, list[tuple]] = {}
        self.through: int | None = None     # the last quarter made into a sample
        self.missing = False                # a snapshot without reads: no samples at all
        self.hist: Histogram | None = None  # one for every quarter (each ~190 KB of counts)

    def copy(self) -> "QuarterReads":
        other = QuarterReads()
        other.reads = {q: list(pairs) for q, pairs in self.reads.items()}
        other.through, other.missing, other.hist = self.through, self.missing, self.hist
        return other

    def add(self, snap: dict, end_q: int) -> None:
        """One snapshot's reads, the snapshot itself closing quarter end_q."""
        if "quarters" not in snap:
            self.missing = True
            return
        if snap["quarters"] is None:        # folded (surge.run.retention.fold): none kept
            return
        so_far = None           # each second's reads start from an empty histogram
        for q, sparse in [*snap["quarters"], (end_q, snap["latency"])]:
            if self.through is None or q > self.through:     # a late worker's: that quarter is out
                self.reads.setdefault(q, []).append((sparse, so_far))
            so_far = sparse

    def take(self, through_q: int | None = None) -> list[tuple[int, int, str]]:
        """The quarters up to through_q (all held without it) as (q, requests, hdr);
        every quarter from the first one's second on, empty ones too."""
        if self.missing:
            return []
        last = max(self.reads, default=None) if through_q is None else through_q
        if last is None:
            return []
        if self.through is not None:
            first = self.through + 1
        elif self.reads:
            first = min(self.reads)         # 1, or the first second a worker reported
            first -= (first - 1) % SAMPLES_PER_S
        else:
            return []
        if self.hist is None:
            self.hist = Histogram()
        out = []
        for q in range(first, last + 1):
            self.hist.reset_counts()
            for now, before in self.reads.pop(q, ()):
                self.hist.add_sparse_difference(now, before)
            out.append((q, self.hist.total_count, self.hist.encode()))
        if last >= first:
            self.through = last
        return out


def sub_second_samples(record) -> list[dict] | None:
    """The result's `samples`: the last SAMPLE_S seconds' latency in quarter-second
    intervals, every worker added: points shaped like `timeseries` ones,
    [{"t": 0.25, "requests": n, "hdr": ...}, ...] (t the end of each).  None when
    a snapshot lacks its quarters (a worker that died before sending them)."""
    return record.series_output()[2]


def second_samples(record, k: int) -> list[dict] | None:
    """Second k's four quarter-second samples from each worker's tick k (the
    journal's line of that second), shaped as the result's `samples`."""
    reads = QuarterReads()
    for w in record.workers:
        if k in w.ticks:
            reads.add(w.ticks[k], k * SAMPLES_PER_S)
    quarters = reads.take(k * SAMPLES_PER_S)
    if not quarters:
        return None
    return [{"t": min(q / SAMPLES_PER_S, float(k)), "requests": n, "hdr": hdr} for q, n, hdr in quarters]
