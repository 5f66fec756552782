"""The parts of one distributed run (`surge run --segment I/N`) merged into one
result, exactly, as if one machine had run it: what `surge merge` writes.

Exact, as the workers are merged (surge.run.merge): histograms are added
(corrected and uncorrected latency, each step's, connect and TLS handshake),
never percentiles averaged; counters are summed; per-second points are put on
the common clock (a part that started late by up to a second is shifted by the
difference of its `run.started_at_unix_ns`) and added slot by slot.  Resources
stay per instance, under `merge.parts` with a row per part (requests, rate,
p99, CPU), so a slow or saturated generator shows.

The rule for the many counters a result holds: an integer is a count (summed),
a float is derived (recomputed here: rps, error_rate, the percentiles) or
describes the run (a scenario's weight and share: kept).  New counters a later
surge adds are summed without a change here.

Only plain dicts in, one dict out; nothing here loads the engine or the run
layer (tests/result/test_no_engine.py), so a laptop merges pods' logs.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

from surge import __version__
from surge.core._histogram import Histogram, HistogramDecodeError
from surge.result.failed import error_rate
from surge.result.format import RESULT_FORMAT
from surge.result.latency import latency_summary

# Latency summaries at the top level, each merged from its `hdr`.
TOP_HISTOGRAMS = ("latency", "latency_uncorrected", "connect", "tls_handshake")
# ... and in a step or scenario.
PART_HISTOGRAMS = ("latency", "latency_uncorrected")
SAMPLES_PER_S = 4           # `samples`: quarter-second points (surge.run.samples)


class CombineError(ValueError):
    """Parts that cannot be merged; `code` is the exit code (2: not parts of one
    run, or not mergeable; 1: a segment missing or given twice), the message one line."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Part:
    """One instance's result and where it was read from ('a.json', 'pod.log:17')."""
    result: dict
    source: str

    @property
    def run(self) -> dict:
        return self.result.get("run") or {}

    @property
    def segment(self) -> dict | None:
        return self.run.get("segment")


@dataclass
class Selection:
    """The parts to merge (one per segment, by index) and what is missing or left out."""
    count: int
    parts: list[Part]
    missing: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)     # 'segment 1: b.json (also a.json)'


def _names(parts: list[Part]) -> str:
    return ", ".join(p.source for p in parts)


def select(parts: list[Part], allow_partial: bool = False) -> Selection:
    """The parts of one run, checked: CombineError 2 when they are of different
    runs (run id, plan, segment count) or one is a whole run; 1 when a segment
    is missing or given twice, unless `allow_partial` (then the first copy of a
    duplicate is kept and the missing ones are listed)."""
    if not parts:
        raise CombineError(2, "no parts given: name result files (--json) or logs holding SURGE-RESULT lines")
    for part in parts:
        if "run" not in part.result:
            raise CombineError(2, f"{part.source}: the result has no 'run' section (made by a surge before "
                                  "--segment?): it cannot be told which run it is part of")
        if part.segment is None:
            raise CombineError(2, f"{part.source}: a whole run (run {part.run.get('id')}, no --segment), "
                                  "not a part of one: nothing to merge it with")
    by_run: dict[tuple, list[Part]] = {}
    for part in parts:
        key = (part.run.get("id"), part.run.get("plan_hash"), part.segment["count"])
        by_run.setdefault(key, []).append(part)
    if len(by_run) > 1:
        groups = "; ".join(f"{_names(group)}: run {run_id}, {count} segments"
                           + (f", plan {plan_hash}" if plan_hash else "")
                           for (run_id, plan_hash, count), group in by_run.items())
        raise CombineError(2, f"parts from different runs: {groups}")
    count = parts[0].segment["count"]
    chosen: dict[int, Part] = {}
    duplicates = []
    for part in parts:
        index = part.segment["index"]
        if index >= count:
            raise CombineError(2, f"{part.source}: segment {index}/{count} is out of range (0 to {count - 1})")
        if index in chosen:
            duplicates.append(f"segment {index}: {part.source} (also {chosen[index].source})")
            continue
        chosen[index] = part
    missing = [i for i in range(count) if i not in chosen]
    if not allow_partial:
        if duplicates:
            raise CombineError(1, f"segment given twice: {duplicates[0]}; give each segment once "
                                  "(or --allow-partial keeps the first)")
        if missing:
            raise CombineError(1, f"{_segments(missing)} of {count} missing (have {_segments(sorted(chosen))}); "
                                  "--allow-partial merges what is there")
    return Selection(count, [chosen[i] for i in sorted(chosen)], missing, duplicates)


def _segments(indices: list[int]) -> str:
    if not indices:
        return "none"
    return ("segment " if len(indices) == 1 else "segments ") + ", ".join(str(i) for i in indices)


# ---- histograms -----------------------------------------------------------------------------------
def _decoded(text, where: str) -> Histogram:
    if not isinstance(text, str):
        raise CombineError(2, f"{where}: no histogram (hdr): cannot merge it exactly")
    try:
        return Histogram.decode(text)
    except (HistogramDecodeError, ValueError):
        raise CombineError(2, f"{where}: its histogram (hdr) does not decode") from None


def _merged_summary(summaries: list[tuple[dict, str]]) -> dict:
    """One latency summary from several (each with where it is from, for
    messages).  The parts' min and max are exact (a decoded histogram knows
    them only to the bucket), so those are kept, and percentiles capped by them."""
    total = Histogram()
    for summary, where in summaries:
        total.add(_decoded(summary.get("hdr"), where))
    merged = latency_summary(total)
    counted = [s for s, _ in summaries if s.get("count")]
    if counted and all(isinstance(s.get("max"), (int, float)) for s in counted):
        merged["max"] = max(s["max"] for s in counted)
        merged["min"] = min(s.get("min", merged["min"]) for s in counted)
        merged["percentiles"] = {k: min(v, merged["max"]) for k, v in merged["percentiles"].items()}
    return merged


# ---- counters -------------------------------------------------------------------------------------
def _add_counts(into: dict, other: dict, skip: tuple = ()) -> dict:
    """Integers summed (recursively in dicts), anything else kept from the first."""
    for key, value in other.items():
        if key in skip:
            continue
        mine = into.get(key)
        if isinstance(value, bool) or key not in into:
            into.setdefault(key, _copy(value))
        elif isinstance(value, int) and isinstance(mine, int) and not isinstance(mine, bool):
            into[key] = mine + value
        elif isinstance(value, dict) and isinstance(mine, dict):
            _add_counts(mine, value)
    return into


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _summed(items: list[dict], skip: tuple = ()) -> dict:
    out: dict = {}
    for item in items:
        _add_counts(out, item, skip)
    return out


# ---- the common clock -----------------------------------------------------------------------------
def _offsets_s(parts: list[Part]) -> list[float]:
    """Each part's start after the earliest (s): 0 when they shared the instant."""
    starts = [p.run.get("started_at_unix_ns") for p in parts]
    known = [s for s in starts if isinstance(s, int)]
    first = min(known) if known else 0
    return [(s - first) / 1e9 if isinstance(s, int) else 0.0 for s in starts]


def _slot(t: float, offset_s: float, per_s: int) -> int:
    """The common slot of a point that ends at `t` of its part: the part's own
    slot (a whole second, or the partial last one) moved by its start offset,
    rounded to whole slots (a part starts up to a second late)."""
    own = math.ceil(t * per_s - 1e-6)
    return max(1, own + round(offset_s * per_s))


def _is_percentile(key: str) -> bool:
    base = key.removesuffix("_uncorrected")
    return base in ("max", "min") or (base[:1] == "p" and base[1:].replace(".", "", 1).isdigit())


def _merge_points(group: list[tuple[dict, int]], t: float, where: str) -> dict:
    """One point from the parts' points of one slot: histograms added and the
    percentiles read from them, counts summed, targets added, workers listed
    (each with its segment; index renumbered across instances)."""
    points = [p for p, _ in group]
    out: dict = {"t": t}
    hists = {}
    for key in sorted({k for p in points for k in p if k.startswith("hdr")}):
        total = Histogram()        # a point without hdr_connect opened no connection: nothing to add
        for p in points:
            if p.get(key) is not None:
                total.add(_decoded(p[key], f"{where} t={p['t']} {key}"))
        hists[key] = total
    skip = {"t", "target", "workers", "watched", *hists}
    counts = _summed([{k: v for k, v in p.items() if not _is_percentile(k)} for p in points], tuple(skip))
    out.update(counts)
    for key in sorted({k for p in points for k in p if _is_percentile(k)}):
        hist = hists.get("hdr_uncorrected" if key.endswith("_uncorrected") else "hdr")
        if hist is None:
            continue
        base = key.removesuffix("_uncorrected")
        exact = [p[key] for p in points if isinstance(p.get(key), (int, float)) and p.get("requests", 1)]
        if base == "max":           # the parts' own max and min are exact, the decoded ones bucket-rounded
            out[key] = max(exact, default=hist.max)
        elif base == "min":
            out[key] = min(exact, default=hist.min)
        else:
            out[key] = hist.value_at_percentile(float(base[1:]))
    for key in [k for k in out if _is_percentile(k) and k.removesuffix("_uncorrected") not in ("max", "min")]:
        cap = out.get("max_uncorrected" if key.endswith("_uncorrected") else "max")
        if isinstance(cap, (int, float)):
            out[key] = min(out[key], cap)
    for key, hist in hists.items():
        out[key] = hist.encode()
    targets = [p["target"] for p in points if p.get("target") is not None]
    if any("target" in p for p in points):          # the parts' shares of the schedule add up
        out["target"] = round(sum(targets), 3) if targets else None
    if any("workers" in p for p in points):
        out["workers"] = [{**w, "index": base + w.get("index", i), "segment": segment}
                          for p, (segment, base) in group
                          for i, w in enumerate(p.get("workers") or ()) if isinstance(w, dict)]
    return out


def _series(per_part: list[list[dict] | None], parts: list[Part], offsets: list[float], bases: list[int],
            duration_s: float, per_s: int, where: str) -> list[dict]:
    """Points of every part on the common clock, merged slot by slot."""
    slots: dict[int, list[tuple[dict, tuple[int, int]]]] = {}
    for points, part, offset, base in zip(per_part, parts, offsets, bases):
        for point in points or ():
            slots.setdefault(_slot(float(point["t"]), offset, per_s), []).append(
                (point, (part.segment["index"], base)))
    out = []
    for k in sorted(slots):
        t = k / per_s
        t = float(t) if t <= duration_s + 1e-9 else round(duration_s, 3)
        out.append(_merge_points(slots[k], t, where))
    return out


# ---- sections -------------------------------------------------------------------------------------
def _totals(parts: list[Part], duration_s: float) -> dict:
    totals = _summed([p.result["totals"] for p in parts], skip=("duration_s", "rps", "error_rate"))
    totals["duration_s"] = round(duration_s, 6)
    totals["rps"] = round(totals["requests"] / duration_s, 3) if duration_s > 0 else 0.0
    if "failed" in totals or any("error_rate" in p.result["totals"] for p in parts):
        totals["error_rate"] = error_rate(totals)
    return totals


def _keyed_rows(parts: list[Part], section: str, key) -> list[dict]:
    """Steps (by scenario and step) or scenarios (by name): counts summed,
    latencies merged, in the first part's order."""
    rows: dict = {}
    sources: dict = {}
    for part in parts:
        for row in part.result.get(section) or ():
            rows.setdefault(key(row), []).append(row)
            sources.setdefault(key(row), []).append(part.source)
    out = []
    for name, group in rows.items():
        merged = _summed(group, skip=PART_HISTOGRAMS + ("error_rate", "rps"))
        for hist_key in PART_HISTOGRAMS:
            if all(isinstance(r.get(hist_key), dict) for r in group):
                merged[hist_key] = _merged_summary([(r[hist_key], f"{src}: {section} {name} {hist_key}")
                                                    for r, src in zip(group, sources[name])])
        if any("error_rate" in r for r in group):
            merged["error_rate"] = error_rate(merged)
        out.append(merged)
    return out


def _step_timeseries(parts, offsets, bases, duration_s) -> list[dict]:
    series: dict = {}
    for i, part in enumerate(parts):
        for entry in part.result.get("step_timeseries") or ():
            key = (entry["scenario"], entry["step"])
            series.setdefault(key, [None] * len(parts))[i] = entry["points"]
    return [{"scenario": scn, "step": step,
             "points": _series(per_part, parts, offsets, bases, duration_s, 1, f"step {scn}/{step}")}
            for (scn, step), per_part in series.items()]


def _tls(parts: list[Part]) -> dict | None:
    sections = [p.result["tls"] for p in parts if isinstance(p.result.get("tls"), dict)]
    if not sections:
        return None
    merged = _summed(sections)
    for key in ("protocol", "cipher", "group"):       # the first completed handshake's, as in a run
        merged[key] = next((s[key] for s in sections if s.get(key)), sections[0].get(key))
    return merged


def _busiest_cpu_percent(result: dict) -> float | None:
    """The part's busiest worker, % of a core: the median over its steady
    seconds (the first and the last left out) of the highest worker's CPU."""
    points = result.get("timeseries") or []
    steady = points[1:-1] if len(points) > 2 else []
    highest = sorted(max(c) for p in steady
                     if (c := [w["cpu_percent"] for w in p.get("workers") or ()
                               if isinstance(w.get("cpu_percent"), (int, float))]))
    return round(highest[len(highest) // 2], 1) if highest else None


def _part_row(part: Part, offset_s: float) -> dict:
    """A row of the per-instance table, and what stays per instance."""
    result = part.result
    totals = result["totals"]
    latency = result["latency"]
    row = {"segment": part.segment["index"], "source": part.source,
           "start_offset_ms": round(offset_s * 1000, 3),
           "requests": totals["requests"], "duration_s": totals["duration_s"], "rps": totals["rps"],
           "p99_us": latency["percentiles"].get("99") if latency.get("count") else None,
           "cpu_percent": _busiest_cpu_percent(result),
           "workers": result["config"].get("workers"),
           "interrupted": bool(result.get("interrupted")),
           "machine": result.get("machine") or {},
           "resources": result.get("resources") or {}}
    if result.get("workers_failed"):
        row["workers_failed"] = result["workers_failed"]
    if result.get("aborted_by"):
        row["aborted_by"] = result["aborted_by"]
    failed = [o["name"] for o in result.get("objectives") or () if not o.get("passed")]
    if result.get("objectives"):
        row["objectives_failed"] = failed        # judged on the part alone: informative only
    return row


def _failed_worker(worker: dict, part: Part, base: int, offset_s: float) -> dict:
    """A part's dead worker in the merged numbering; when it went (at_s) and the
    end of its last reported second (last_report_s) moved to the common clock
    as that part's points are."""
    out = {"index": base + worker["index"], "cause": f"{worker['cause']}, segment {part.segment['index']}",
           "segment": part.segment["index"]}
    if isinstance(worker.get("at_s"), (int, float)):
        out["at_s"] = round(worker["at_s"] + offset_s, 3)
    elif "at_s" in worker:
        out["at_s"] = None
    if isinstance(worker.get("last_report_s"), int):
        out["last_report_s"] = worker["last_report_s"] + round(offset_s)
    elif "last_report_s" in worker:
        out["last_report_s"] = None
    return out


def combine(selection: Selection) -> dict:
    """The merged result (the result file's shape, plus `merge`), without
    objectives or gate: those are judged on it afterwards (surge merge)."""
    parts = selection.parts
    first = parts[0].result
    offsets = _offsets_s(parts)
    duration_s = max((off + p.result["totals"]["duration_s"] for off, p in zip(offsets, parts)), default=0.0)
    bases, base = [], 0
    for part in parts:                 # each instance's first worker index in the merged numbering
        bases.append(base)
        base += int(part.result["config"].get("workers") or 1)
    starts = [p.run["started_at_unix_ns"] for p in parts if isinstance(p.run.get("started_at_unix_ns"), int)]
    start_ns = min(starts) if starts else None
    started_at = (_dt.datetime.fromtimestamp(start_ns / 1e9, _dt.timezone.utc).isoformat(timespec="seconds")
                  if start_ns is not None else first.get("started_at"))
    config = _copy(first["config"])
    config["workers"] = base
    machines = [p.result.get("machine") or {} for p in parts]
    models = {m.get("cpu_model") for m in machines}
    machine = {"instances": len(parts), "cpus": sum(int(m.get("cpus") or 0) for m in machines),
               "cpu_model": models.pop() if len(models) == 1 else "mixed (see merge.parts)"}
    result = {
        "surge_version": __version__,
        "result_format": RESULT_FORMAT,
        "started_at": started_at,
        "run": {"id": parts[0].run["id"], "segment": None, "started_at_unix_ns": start_ns,
                "plan_hash": parts[0].run.get("plan_hash")},
        "config": config,
        "machine": machine,
        "interrupted": any(p.result.get("interrupted") for p in parts),
    }
    if any("redacted" in p.result for p in parts):         # false when any part ran with --no-redact
        result["redacted"] = all(p.result.get("redacted", True) for p in parts)
    aborted = [f"segment {p.segment['index']}: {p.result['aborted_by']}" for p in parts if p.result.get("aborted_by")]
    if aborted:
        result["aborted_by"] = "; ".join(aborted)
    result["totals"] = _totals(parts, duration_s)
    for key in TOP_HISTOGRAMS:
        have = [(p.result[key], f"{p.source}: {key}") for p in parts if isinstance(p.result.get(key), dict)]
        if have:
            result[key] = _merged_summary(have)
    tls = _tls(parts)
    if tls is not None:
        result["tls"] = tls
    result["timeseries"] = _series([p.result.get("timeseries") for p in parts], parts, offsets, bases,
                                   duration_s, 1, "timeseries")
    result["workers_failed"] = [_failed_worker(w, p, b, off) for p, b, off in zip(parts, bases, offsets)
                                for w in p.result.get("workers_failed") or ()]
    result["resources"] = {"workers": [{**w, "index": b + w.get("index", i), "segment": p.segment["index"]}
                                       for p, b in zip(parts, bases)
                                       for i, w in enumerate((p.result.get("resources") or {}).get("workers") or ())]}
    if any("steps" in p.result for p in parts):
        result["steps"] = _keyed_rows(parts, "steps", lambda r: (r.get("scenario"), r.get("step"), r.get("name")))
    if any("scenarios" in p.result for p in parts):
        result["scenarios"] = _keyed_rows(parts, "scenarios", lambda r: r["name"])
    if any("step_timeseries" in p.result for p in parts):
        result["step_timeseries"] = _step_timeseries(parts, offsets, bases, duration_s)
    if all(isinstance(p.result.get("samples"), list) for p in parts):
        result["samples"] = _series([p.result["samples"] for p in parts], parts, offsets, bases,
                                    duration_s, SAMPLES_PER_S, "samples")
    result["merge"] = {"segments": selection.count, "merged": [p.segment["index"] for p in parts],
                       "missing": list(selection.missing), "duplicates_left_out": list(selection.duplicates),
                       "parts": [_part_row(p, off) for p, off in zip(parts, offsets)]}
    return result
