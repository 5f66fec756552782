"""How much of a run the supervisor keeps, so its memory stays flat and a
24-hour run fits in memory and its result on disk (issue 15 item 5).

A worker's per-second snapshot is 12-40 KB (cumulative counters, the second's
latency histograms, per-step histograms, four sub-second reads).  The
supervisor keeps none of them for long (surge.run.merge.RunRecord):

- A second is *finished* once every worker has sent a later one, or has
  ended (its Final placed) or died; or LAG_S after the newest second, so a
  stalled worker cannot hold the others' seconds (its late snapshot joins the
  first unfinished second: fold).  A finished second becomes at once
    - its result point, its per-step points and the quarter-second samples it
      completed (RunRecord._point, merge.step_points, surge.run.samples), one
      blob in a Series (below);
    - its interval histograms added into the run's running histograms (latency,
      latency_uncorrected, connect, tls_handshake, each step's): the whole-run
      figures and `live_result` never walk the seconds again;
  and of each worker only its last cumulative snapshot is kept (the deltas of
  its next second; a dead worker's counts up to its last report: item 1).
- Series: a finished second's blob goes to an unlinked temporary file
  (surge.run.spill: ~7-12 KB a second at 20,000 requests/s, nearly all encoded
  histograms); memory holds its second, offset and length (24 bytes).  The
  last FINE_S (3600 s) stay one a second; older ones are folded (fold_entry:
  counts summed, histograms decoded and added, exact) into BLOCK_S (60 s)
  blocks, one point a minute with `"interval_s": 60`, and their spill
  generations (SEGMENT_S of seconds each, a file each) are dropped, so the
  disk holds one to two hours of seconds plus a blob a minute (24 h at
  20,000/s: ~45-90 MB + ~11 MB) in at most three open files.
- The result's `samples` (`compare`'s quarter-second reads) are those of the
  last SAMPLE_S (600 s): a long run's comparison is of its last ten minutes.

So the supervisor's memory does not grow with the run but for 24 bytes a
second (~2 MB a day) and the blocks' index; a 24-hour result holds 3,600
per-second points and 1,380 per-minute ones.  Totals and whole-run histograms
are exact at any length.  Which seconds fold depends on the second alone, so
the blocks are the same whatever the workers did.
"""
from __future__ import annotations

from array import array

from surge.run.spill import Spill

SAMPLE_S = 600          # the last seconds whose quarter-second samples the result keeps
FINE_S = 3600           # the last seconds kept one point a second
BLOCK_S = 60            # older seconds are folded into blocks of this many
# Seconds per spill generation, one file each (freed once all its seconds are folded): an
# hour, so at most two are open with the blocks' (descriptors flat, disk at most ~2 h of seconds).
SEGMENT_S = FINE_S
LAG_S = 10              # a second is finished at most this long after the newest, stalled worker or not
BLOCKS_GENERATION = -1  # the spill generation of the folded blocks (never dropped)

# Interval histograms of a snapshot (the rest is cumulative): a fold adds them.
INTERVAL_HISTOGRAMS = ("latency", "latency_uncorrected", "connect", "tls_handshake")
# A point's latency figures, each read from the folded histogram ("hdr" + suffix).
_FROM_HISTOGRAM = {"p50": ("hdr", 50.0), "p99": ("hdr", 99.0), "max": ("hdr", None),
                   "p50_uncorrected": ("hdr_uncorrected", 50.0), "p99_uncorrected": ("hdr_uncorrected", 99.0)}
_LAST = {"active_connections", "watched"}       # levels at the block's end


def block_end(k: int) -> int:
    """The last second of the block second k folds into."""
    return -(-k // BLOCK_S) * BLOCK_S


class Series:
    """A run's finished seconds in order: blocks (older than FINE_S), then seconds.

    Each entry is one blob {"point": ..., "steps": [step point, ...] | None,
    "samples": [(q, requests, hdr), ...]} in the spill."""

    def __init__(self):
        self.spill = Spill()
        self.blocks = (array("q"), array("q"), array("q"))      # second, offset, length
        self.seconds = (array("q"), array("q"), array("q"))

    def __len__(self) -> int:
        return len(self.blocks[0]) + len(self.seconds[0])

    def add(self, k: int, entry: dict) -> None:
        """Second k finished; seconds that left the last FINE_S are folded into their block."""
        offset, length = self.spill.put(k // SEGMENT_S, entry)
        for column, value in zip(self.seconds, (k, offset, length)):
            column.append(value)
        ks = self.seconds[0]
        while ks and block_end(ks[0]) <= k - FINE_S:
            end = block_end(ks[0])
            n = 0
            while n < len(ks) and ks[n] <= end:
                n += 1
            folded = fold_entries([self._get(ks[i], self.seconds[1][i], self.seconds[2][i]) for i in range(n)], end)
            offset, length = self.spill.put(BLOCKS_GENERATION, folded)
            for column, value in zip(self.blocks, (end, offset, length)):
                column.append(value)
            for column in self.seconds:
                del column[:n]
            oldest = ks[0] // SEGMENT_S if ks else k // SEGMENT_S
            for generation in self.spill.generations():
                if 0 <= generation < oldest:
                    self.spill.drop(generation)

    def _get(self, k: int, offset: int, length: int) -> dict:
        return self.spill.get(k // SEGMENT_S, offset, length)

    def entries(self):
        """(second, entry) of every block, then every second, in order."""
        for k, offset, length in zip(*self.blocks):
            yield k, self.spill.get(BLOCKS_GENERATION, offset, length)
        for k, offset, length in zip(*self.seconds):
            yield k, self._get(k, offset, length)

    def close(self) -> None:
        self.spill.close()


def fold_entries(entries: list[dict], end: int) -> dict:
    """Consecutive finished seconds as one block ending at second `end`: its
    point and each step's folded, no samples (they are the last SAMPLE_S')."""
    point = fold_points([e["point"] for e in entries], float(end))
    point["interval_s"] = float(BLOCK_S)
    steps = None
    if entries[-1].get("steps") is not None:
        steps = [fold_points([e["steps"][i] for e in entries if e.get("steps")], float(end))
                 for i in range(len(entries[-1]["steps"]))]
    return {"point": point, "steps": steps, "samples": []}


def fold_points(points: list[dict], t: float) -> dict:
    """Consecutive points (a time series' or a step's) as one at `t`: counts
    summed, histograms (hdr*) added and their percentiles read again, levels
    (connections, --watch-pid) the last, CPU the mean, a target the mean."""
    from surge.core._histogram import Histogram

    keys = dict.fromkeys(key for point in points for key in point)
    hists: dict[str, Histogram] = {}
    for key in keys:
        if key.startswith("hdr"):
            hist = hists[key] = Histogram()
            for point in points:
                if isinstance(point.get(key), str):
                    hist.add(Histogram.decode(point[key]))
    out: dict = {}
    for key in keys:
        values = [point[key] for point in points if key in point]
        if key == "t":
            out[key] = t
        elif key in hists:
            out[key] = hists[key].encode()
        elif key in _FROM_HISTOGRAM and _FROM_HISTOGRAM[key][0] in hists:
            name, percentile = _FROM_HISTOGRAM[key]
            hist = hists[name]
            out[key] = hist.max if percentile is None else hist.values_at_percentiles((percentile,))[0]
        elif key in _LAST:
            out[key] = values[-1]
        elif key == "interval_s":
            continue
        elif key == "target":
            numbers = [v for v in values if isinstance(v, (int, float))]
            out[key] = round(sum(numbers) / len(numbers), 3) if numbers else None
        elif key == "workers":
            out[key] = _fold_workers(values)
        elif key == "statuses":
            summed: dict[str, int] = {}
            for statuses in values:
                for status, n in statuses.items():
                    summed[status] = summed.get(status, 0) + n
            out[key] = summed
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = sum(values)
        else:
            out[key] = values[-1]
    return out


def _fold_workers(samples: list[list[dict]]) -> list[dict]:
    """Each worker's CPU over the block (the mean of its seconds), its last RSS."""
    by_index: dict[int, list[dict]] = {}
    for workers in samples:
        for sample in workers:
            by_index.setdefault(sample.get("index", 0), []).append(sample)
    out = []
    for index in sorted(by_index):
        cpu = [s["cpu_percent"] for s in by_index[index] if s.get("cpu_percent") is not None]
        out.append({"index": index, "cpu_percent": round(sum(cpu) / len(cpu), 1) if cpu else None,
                    "rss_kb": by_index[index][-1].get("rss_kb")})
    return out


def fold(snapshots: list[dict]) -> dict:
    """Consecutive snapshots of one worker as one: the last one's cumulative
    counters, every interval histogram added, no sub-second reads (a late
    snapshot joining an unfinished second; a Final in its last tick's second)."""
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
