"""What a run found, in sentences someone can hand on: what was tested, the
verdict, the headline numbers, and what limited the run, each limit with the
numbers it rests on.

Every rule is a pure function of the result dict returning a `Finding` (its
sentence and its evidence) or None when the data does not show it. No rule
guesses: a rule that needs samples the result lacks (per-second points,
`--watch-pid` samples) says nothing. `summary_sentences()` is the plain-text
form, for the HTML page and the terminal alike.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from surge.report.numbers import (
    SATURATED_CPU_FRACTION,
    client_cpu_by_worker,
    format_percent,
    format_rate,
    format_us,
    plural,
    saturated_workers,
    steady_points,
)
from surge.result.failed import attempts, error_rate, failed_count, failed_reasons

# Latency rule: throughput "flat" means every second within this share of the median...
PLATEAU_BAND = 0.15
# ...and latency "rose" means its median over LATENCY_WINDOW seconds grew by
# this factor and by at least this much (below it, a local target's jitter).
LATENCY_RISE_FACTOR = 2.0
LATENCY_RISE_MIN_US = 100
LATENCY_WINDOW = 3
# The rise is dated from the first window whose median is this many times "before".
LATENCY_RISING_FACTOR = 1.5
# Fewer steady seconds than this and the latency rule does not judge a trend.
MIN_TREND_SECONDS = 6
# Open model: a steady-second rate below this share of the target fell behind.
SCHEDULE_MET_FRACTION = 0.9
# The watched process's memory "grew" when its last sample is this many times its first.
RSS_GROWTH_FACTOR = 1.5
MIB_KB = 1024
REASONS_SHOWN = 3


@dataclass(frozen=True)
class Finding:
    rule: str               # which rule: "client-cpu", "latency-rise", ...
    sentence: str           # one plain sentence, numbers included
    evidence: dict = field(default_factory=dict)    # the numbers the sentence rests on
    limit: bool = True      # something that limited the run (else context, e.g. the target's CPU)


# ---- formatting shared with the other reports -----------------------------------------------
def format_measured(value, unit: str | None) -> str:
    """An objective's measured value in its unit: '2.75ms', '0.00%', '78.5 req/s', '12'."""
    if value is None:
        return "no data"
    if unit == "us":
        return format_us(value)
    if unit == "fraction":
        return format_percent(value)
    if unit == "req/s":
        return f"{format_rate(value)} req/s"
    if isinstance(value, float) and value == int(value):
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _mib(kb) -> str:
    return f"{kb / MIB_KB:.1f} MiB"


def _at(t) -> str:
    """A point's time (the end of its interval) as the charts' x axis shows it."""
    return f"{float(t):g} s"


def _reasons(part: dict) -> str:
    reasons = list(failed_reasons(part).items())
    shown = ", ".join(f"{reason}: {n:,}" for reason, n in reasons[:REASONS_SHOWN])
    return shown + (f", {len(reasons) - REASONS_SHOWN} more" if len(reasons) > REASONS_SHOWN else "")


def is_plan(result: dict) -> bool:
    return bool((result.get("config") or {}).get("plan"))


def has_responses(result: dict) -> bool:
    """Whether any response came back (else there is no latency to show)."""
    latency = result.get("latency") or {}
    if "count" in latency:
        return bool(latency["count"])
    return bool((result.get("totals") or {}).get("requests"))


# ---- what was tested, the verdict, the headline ---------------------------------------------
def _load_phrase(cfg: dict) -> str:
    plan = bool(cfg.get("plan"))
    if cfg.get("model") == "open":
        unit = "iterations/s" if plan else "req/s"
        users = "virtual user" if plan else "connection"
        shape = (f"{format_rate(cfg['rate'])} {unit}" if cfg.get("rate")
                 else f"stages peaking at {format_rate(cfg.get('peak_rate'))} {unit}")
        bound = f", up to {plural(int(cfg['max_connections']), users)}" if cfg.get("max_connections") else ""
        return f"open model, {shape}{bound}"
    users = "virtual user" if plan else "connection"
    if cfg.get("stages"):
        peak = max(float(s.get("target") or 0) for s in cfg["stages"])
        return f"closed model, stages peaking at {plural(int(peak), users)}"
    return f"closed model, {plural(int(cfg.get('connections') or 0), users)}"


def described_test(result: dict) -> str:
    """'Plan shop against http://...: open model, ..., for 6.00 s with 2 workers.'"""
    cfg, totals = result.get("config") or {}, result.get("totals") or {}
    target = cfg.get("url", "?")
    what = f"Plan {cfg['plan']} against {target}" if cfg.get("plan") else f"{cfg.get('method', 'GET')} {target}"
    if cfg.get("requests"):
        bound = f"{plural(int(cfg['requests']), 'request')} asked, done in {totals.get('duration_s', 0):.2f} s"
    else:
        bound = f"for {totals.get('duration_s', 0):.2f} s"
    workers = plural(int(cfg.get("workers") or 1), "worker")
    stopped = " (interrupted before the end)" if result.get("interrupted") else ""
    return f"{what}: {_load_phrase(cfg)}, {bound} with {workers}{stopped}."


def verdict(result: dict) -> str | None:
    """The objectives' and the baseline gate's verdicts (None when the run had neither)."""
    parts = []
    objectives = result.get("objectives")
    if isinstance(objectives, list) and objectives:
        failed = [o for o in objectives if not o.get("passed")]
        if failed:
            named = "; ".join(f"{o.get('name', '?')} (measured {format_measured(o.get('value'), o.get('unit'))})"
                              for o in failed)
            parts.append(f"Objectives FAIL: {len(failed)} of {len(objectives)} failed: {named}.")
        else:
            parts.append(f"Objectives PASS: all {len(objectives)} met.")
    if result.get("aborted_by"):
        parts.append(f"The run stopped early: {result['aborted_by']}.")
    gate = result.get("gate")
    if isinstance(gate, dict) and gate.get("verdict"):
        against = f" against {gate['baseline']}" if gate.get("baseline") else ""
        parts.append(f"Baseline gate{against}: {gate['verdict']}.")
    return " ".join(parts) or None


def headline(result: dict) -> str:
    """'471 requests at 78.5 req/s, 0.00% failed; p50 275us, p99 1.17ms.'"""
    totals = result.get("totals") or {}
    requests = int(totals.get("requests", 0) or 0)
    tried = attempts(totals)
    failed = failed_count(totals)
    if not has_responses(result):
        return f"No responses: all {plural(tried, 'request')} failed ({_reasons(totals) or 'no reason recorded'})."
    percentiles = (result.get("latency") or {}).get("percentiles") or {}
    corrected = " (corrected for the schedule)" if "latency_uncorrected" in result else ""
    return (f"{plural(requests, 'response')} at {format_rate(totals.get('rps'))} req/s, "
            f"{format_percent(error_rate(totals))} failed ({failed:,} of {tried:,}); "
            f"latency p50 {format_us(percentiles.get('50'))}, p99 {format_us(percentiles.get('99'))}{corrected}.")


# ---- what limited the run: one rule each ----------------------------------------------------
def client_cpu(result: dict) -> Finding | None:
    """A worker at >= 90% of a core in its steady seconds: the client set the pace."""
    busy = saturated_workers(result)
    if not busy:
        return None
    shown = ", ".join(f"worker {index} at {cpu * 100:.0f}%" for index, cpu in busy)
    seconds = len(steady_points(result.get("timeseries") or []))
    return Finding("client-cpu",
                   f"The client was the limit: {shown} of a CPU core (median of {plural(seconds, 'steady second')}; "
                   f"at {SATURATED_CPU_FRACTION * 100:.0f}% or more a worker sets the pace, not the target).",
                   {"workers_cpu_fraction": dict(busy), "threshold_fraction": SATURATED_CPU_FRACTION,
                    "steady_seconds": seconds})


def target_resources(result: dict) -> Finding | None:
    """The `--watch-pid` process's CPU and memory (context: surge cannot know its cores)."""
    watched = [p["watched"] for p in result.get("timeseries") or [] if isinstance(p.get("watched"), dict)]
    cpu = [w["cpu_percent"] for w in watched if isinstance(w.get("cpu_percent"), (int, float))]
    rss = [w["rss_kb"] for w in watched if isinstance(w.get("rss_kb"), (int, float))]
    if not cpu and not rss:
        return None
    pid = watched[0].get("pid", "?")
    parts, evidence = [], {"pid": pid, "samples": len(watched)}
    if cpu:
        median = statistics.median(cpu)
        parts.append(f"a median {median:.0f}% of a CPU core (peak {max(cpu):.0f}%)")
        evidence.update({"median_cpu_percent": median, "max_cpu_percent": max(cpu)})
    if rss:
        evidence.update({"first_rss_kb": rss[0], "max_rss_kb": max(rss), "last_rss_kb": rss[-1]})
        if rss[-1] >= RSS_GROWTH_FACTOR * rss[0]:
            parts.append(f"its memory grew from {_mib(rss[0])} to {_mib(rss[-1])}")
        else:
            parts.append(f"memory up to {_mib(max(rss))}")
    return Finding("target-resources", f"The watched target process (pid {pid}, --watch-pid) used {' and '.join(parts)}.",
                   evidence, limit=False)


def _window_median(values: list, start: int) -> float:
    return statistics.median(values[start:start + LATENCY_WINDOW])


def _span(rates: list[float]) -> str:
    low, high = format_rate(min(rates)), format_rate(max(rates))
    return low if low == high else f"{low}-{high}"


def _flat_from(rates: list[float]) -> int | None:
    """The start of the longest run of seconds up to the end whose throughput
    stays within PLATEAU_BAND of its own median (None when it is too short)."""
    for i in range(len(rates) - 2 * LATENCY_WINDOW + 1):
        middle = statistics.median(rates[i:])
        if all(abs(r - middle) <= PLATEAU_BAND * middle for r in rates[i:]):
            return i
    return None


def latency_rise(result: dict) -> Finding | None:
    """Throughput flat (each steady second within 15% of the median, to the end)
    while median latency rose (x2 and +100us, medians of 3 seconds): requests queued."""
    points = [p for p in steady_points(result.get("timeseries") or [])
              if p.get("requests") and isinstance(p.get("p50"), (int, float))]
    if len(points) < MIN_TREND_SECONDS:
        return None
    rates = [float(p["requests"]) for p in points]      # steady seconds are whole: count = rate
    flat_from = _flat_from(rates)
    if flat_from is None:
        return None
    p50 = [p["p50"] for p in points]
    # From the plateau's first seconds to its last ones.
    before, after = _window_median(p50, flat_from), statistics.median(p50[-LATENCY_WINDOW:])
    if after < LATENCY_RISE_FACTOR * before or after - before < LATENCY_RISE_MIN_US:
        return None
    rising_from = next((i for i in range(flat_from, len(points))
                        if _window_median(p50, i) >= LATENCY_RISING_FACTOR * before), len(points) - 1)
    plateau = rates[flat_from:]
    served = statistics.median(plateau)
    evidence = {"flat_from_s": points[flat_from]["t"], "rising_from_s": points[rising_from]["t"],
                "plateau_median_per_s": served, "plateau_min_per_s": min(plateau),
                "plateau_max_per_s": max(plateau), "p50_before_us": before, "p50_after_us": after}
    p99 = [p.get("p99") for p in points]
    if all(isinstance(v, (int, float)) for v in p99):
        evidence.update({"p99_before_us": _window_median(p99, flat_from),
                         "p99_after_us": statistics.median(p99[-LATENCY_WINDOW:])})
        tail = f", p99 {format_us(evidence['p99_before_us'])} to {format_us(evidence['p99_after_us'])}"
    else:
        tail = ""
    return Finding("latency-rise",
                   f"Throughput stayed flat at about {format_rate(served)} req/s ({_span(plateau)}) from "
                   f"{_at(evidence['flat_from_s'])} to the end while latency rose from "
                   f"{_at(evidence['rising_from_s'])}: "
                   f"p50 {format_us(before)} to {format_us(after)}{tail}. Requests were queueing: about "
                   f"{format_rate(served)} req/s is what this setup served.",
                   evidence)


def failures(result: dict) -> Finding | None:
    """Failed requests (transport errors, failed statuses), by reason, and from when."""
    totals = result.get("totals") or {}
    count = failed_count(totals)
    if not count:
        return None
    tried = attempts(totals)
    points = result.get("timeseries") or []
    failing = [p for p in points if failed_count(p) > 0]
    evidence = {"failed": count, "attempts": tried, "error_rate": error_rate(totals),
                "by_reason": failed_reasons(totals)}
    when = ""
    if failing:
        first = failing[0]
        later = [p for p in points if float(p["t"]) >= float(first["t"])]
        evidence.update({"first_failed_s": first["t"], "seconds_with_failures": len(failing),
                         "seconds_from_first": len(later)})
        when = (f"; the first in the second ending at {_at(first['t'])}, then in {len(failing)} of the "
                f"{len(later)} seconds from there")
    if count >= tried:
        sentence = f"Every request failed ({count:,}: {_reasons(totals)}){when}."
    else:
        sentence = (f"{count:,} of {tried:,} requests failed ({format_percent(error_rate(totals))}: "
                    f"{_reasons(totals)}){when}.")
    return Finding("failures", sentence, evidence)


def schedule_shortfall(result: dict) -> Finding | None:
    """Open model: requests dropped or still queued, or steady seconds well below the target rate."""
    if (result.get("config") or {}).get("model") != "open":
        return None
    totals = result.get("totals") or {}
    dropped, queued = int(totals.get("dropped", 0) or 0), int(totals.get("queued_at_stop", 0) or 0)
    evidence, parts = {}, []
    if dropped or queued:
        unit = "iteration" if is_plan(result) else "request"
        evidence.update({"dropped": dropped, "queued_at_stop": queued, "due": totals.get("due")})
        parts.append(f"{plural(dropped, unit)} dropped (no connection free within the timeout) and "
                     f"{queued:,} still queued at the stop, of {totals.get('due', 0):,} due")
    if not is_plan(result):         # a plan's target counts iterations, not requests: not comparable
        behind = [(p["t"], p["requests"], p["target"]) for p in steady_points(result.get("timeseries") or [])
                  if isinstance(p.get("target"), (int, float)) and p["target"] > 0
                  and p.get("requests", 0) < SCHEDULE_MET_FRACTION * p["target"]]
        if behind:
            t, sent, target = behind[0]
            evidence.update({"seconds_behind": len(behind), "first_behind_s": t})
            parts.append(f"{plural(len(behind), 'steady second')} sent under {SCHEDULE_MET_FRACTION * 100:.0f}% "
                         f"of the target rate, the first ending at {_at(t)} "
                         f"({sent:,} sent, target {format_rate(target)}/s)")
    if not parts:
        return None
    return Finding("schedule", "The schedule was not kept: " + "; ".join(parts) + ".", evidence)


RULES = (client_cpu, schedule_shortfall, latency_rise, failures, target_resources)


def findings(result: dict) -> list[Finding]:
    """Every rule's finding, in RULES' order (limits first, then context)."""
    found = [f for f in (rule(result) for rule in RULES) if f is not None]
    return [f for f in found if f.limit] + [f for f in found if not f.limit]


def no_limit_sentence(result: dict) -> str:
    """What the rules could check when none of them fired (only what the data allowed)."""
    checked = []
    cpu = client_cpu_by_worker(result)
    if cpu:
        checked.append(f"the busiest client worker used {max(cpu.values()) * 100:.0f}% of a core "
                       f"(median of its steady seconds)")
    checked.append("no request failed")
    trend_points = [p for p in steady_points(result.get("timeseries") or []) if p.get("requests")]
    if len(trend_points) >= MIN_TREND_SECONDS:
        checked.append("latency did not rise while throughput stayed flat")
    else:
        checked.append(f"too few steady seconds ({len(trend_points)}) to judge a latency trend")
    return "No limit showed in the data: " + ", ".join(checked[:-1]) + f" and {checked[-1]}."


def summary_sentences(result: dict) -> list[str]:
    """The hand-on paragraph as plain sentences: what was tested, the verdict,
    the headline, then each finding (or what the rules looked at)."""
    sentences = [described_test(result)]
    said = verdict(result)
    if said:
        sentences.append(said)
    sentences.append(headline(result))
    found = findings(result)
    if not any(f.limit for f in found):
        sentences.append(no_limit_sentence(result))
    sentences.extend(f.sentence for f in found)
    return sentences
