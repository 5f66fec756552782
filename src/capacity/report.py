"""What `surge capacity` prints and writes: the step table, the answer line,
the capacity result (`--json`) and a small self-contained page (`--html`)."""
from __future__ import annotations

import html
import json
import math

from surge import __version__
from surge.report.numbers import format_percent, format_us

CAPACITY_FORMAT = 1


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _slo_note(step) -> str:
    """Which SLO decided a step, with its measured interval."""
    if step.deciding_slo is None:
        return ""
    for judged in step.slos:
        if judged["slo"] == step.deciding_slo:
            low, high = judged["low"], judged["high"]
            if judged["unit"] == "us":
                shown = f"[{format_us(low) if low is not None else '-inf'}, {format_us(high) if high is not None else '+inf'}]"
            elif judged["unit"] == "fraction":
                shown = f"[{format_percent(low)}, {format_percent(high)}]"
            else:
                shown = f"{judged['value']}"
            return f"{step.deciding_slo} {shown}"
    return step.deciding_slo


def step_table(steps, model: str = "open") -> str:
    """One row per step: offered, achieved, p50/p95/p99 corrected, errors, verdict, what decided it."""
    first = "offered/s" if model == "open" else "users"
    header = (f"  {'step':>4}  {first:>10}  {'achieved/s':>10}  {'p50':>9}  {'p95':>9}  {'p99':>9}  "
              f"{'errors':>7}  {'verdict':<12}  decided by")
    lines = [header]
    for i, step in enumerate(steps, 1):
        p = step.percentiles_us
        verdict = step.verdict + ("*" if step.generator_limited else "")
        note = _slo_note(step) if model == "open" else ""
        if step.generator_limited:
            note = (note + "; " if note else "") + f"generator: {step.guard['problem']}"
        offered = _rate(step.rate) if model == "open" else f"{int(step.rate)}"
        lines.append(f"  {i:>4}  {offered:>10}  {_rate(step.achieved_rate):>10}  "
                     f"{format_us(p['p50']) if p['p50'] is not None else '-':>9}  "
                     f"{format_us(p['p95']) if p['p95'] is not None else '-':>9}  "
                     f"{format_us(p['p99']) if p['p99'] is not None else '-':>9}  "
                     f"{format_percent(step.error_rate):>7}  {verdict:<12}  {note}")
    if any(s.generator_limited for s in steps):
        lines.append("  * the generator guard failed at this step")
    return "\n".join(lines)


def answer_line(outcome, slos, confidence: float, settings) -> str:
    """The one-line answer."""
    slo_text = " and ".join(o.text for o in slos)
    lo, hi = outcome.bracket
    if outcome.limited_by == "generator":
        problem = next((s.guard["problem"] for s in reversed(outcome.steps) if s.generator_limited), "")
        return (f"capacity >= {_rate(lo)} req/s (the load generator is the limit here: add workers or machines; "
                f"{problem})")
    if outcome.max_rate is None:
        if outcome.steps and outcome.steps[-1].verdict != "pass":
            return (f"no sustainable rate found: {slo_text} fails already at --from "
                    f"{_rate(settings.start)} req/s ({outcome.steps[0].reason})")
        return "no sustainable rate found: the search had no time for a step"
    if outcome.limited_by == "range":
        return f"max sustainable rate: >= {_rate(outcome.max_rate)} req/s (every step up to --to passed) with {slo_text}"
    bracket = f"bracket {_rate(lo)}–{_rate(hi)}" if hi is not None else f"at least {_rate(lo)}"
    tail = ""
    if outcome.deciding_slo:
        metric = outcome.deciding_slo.split("<")[0].split(">")[0].strip()
        tail = f"; above it {metric} rises first"
    if outcome.limited_by == "time":
        tail += " (the search was stopped by --max-time before the precision was reached)"
    return (f"max sustainable rate: {_rate(outcome.max_rate)} req/s ({bracket}, {confidence * 100:g}% confidence) "
            f"with {slo_text}{tail}")


def usl_lines(fit, sentence: str) -> str:
    n_star = f"{fit.n_star:.1f}" if fit.n_star is not None else "none (kappa = 0)"
    x_max = f"{fit.x_max:,.0f} req/s" if math.isfinite(fit.x_max) else "unbounded"
    return (f"  USL fit: lambda={fit.lam:,.1f} req/s per user, sigma={fit.sigma:.4g}, kappa={fit.kappa:.4g}, "
            f"R²={fit.r2:.4f}\n  peak concurrency N*={n_star}, predicted X(N*)={x_max}, knee at N≈{fit.knee:.1f}\n"
            f"  {sentence}")


def capacity_document(outcome, slos, confidence: float, settings: dict, answer: str, model: str,
                      usl: dict | None = None) -> dict:
    """The --json file: {"capacity": {...}} with each step's full run result."""
    lo, hi = outcome.bracket if outcome is not None else (None, None)
    steps = outcome.steps if outcome is not None else []
    return {"surge_version": __version__, "capacity_format": CAPACITY_FORMAT, "capacity": {
        "model": model,
        "max_rate": outcome.max_rate if outcome is not None else None,
        "bracket": [lo, hi],
        "limited_by": outcome.limited_by if outcome is not None else None,
        "deciding_slo": outcome.deciding_slo if outcome is not None else None,
        "slos": [o.text for o in slos],
        "confidence": confidence,
        "settings": settings,
        "answer": answer,
        "steps": [step.as_dict() for step in steps],
        "usl": usl,
    }}


def closed_document(steps, slos, confidence: float, settings: dict, answer: str, usl: dict | None) -> dict:
    class _Sweep:
        max_rate = None
        bracket = (None, None)
        limited_by = None
        deciding_slo = None

    sweep = _Sweep()
    sweep.steps = steps
    return capacity_document(sweep, slos, confidence, settings, answer, "closed", usl)


# -- the page ----------------------------------------------------------------------

def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs().replace("</script", "<\\/script")


def _figures(document: dict) -> list[dict]:
    cap = document["capacity"]
    steps = sorted(cap["steps"], key=lambda s: s["rate"])
    xs = [s["rate"] for s in steps]
    figures = []
    if cap["model"] == "open" and steps:
        traces = []
        for name, dash in (("p50", "dot"), ("p95", "dash"), ("p99", "solid")):
            traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{name} (corrected)",
                           "x": xs, "y": [(s["percentiles_us"][name] or 0) / 1000 for s in steps],
                           "line": {"dash": dash}})
        shapes = []
        for text in cap["slos"]:
            for judged in steps[0]["slos"]:
                if judged["slo"] == text and judged["unit"] == "us":
                    threshold_ms = _threshold_ms(text, steps)
                    if threshold_ms is not None:
                        traces.append({"type": "scatter", "mode": "lines", "name": f"SLO {text}",
                                       "x": [xs[0], xs[-1]], "y": [threshold_ms, threshold_ms],
                                       "line": {"color": "red", "dash": "longdash"}})
        figures.append({"id": "latency", "title": "Latency percentiles vs offered rate", "data": traces,
                        "layout": {"xaxis": {"title": {"text": "offered rate (req/s)"}},
                                   "yaxis": {"title": {"text": "latency (ms)"}, "type": "log"},
                                   "shapes": shapes}})
        verdict_colors = {"pass": "green", "fail": "red", "inconclusive": "orange"}
        figures.append({"id": "throughput", "title": "Achieved vs offered throughput", "data": [
            {"type": "scatter", "mode": "markers", "name": "achieved", "x": xs,
             "y": [s["achieved_rate"] for s in steps],
             "marker": {"size": 10, "color": [verdict_colors.get(s["verdict"], "grey") for s in steps]},
             "text": [s["verdict"] for s in steps]},
            {"type": "scatter", "mode": "lines", "name": "offered = achieved", "x": [0, xs[-1]], "y": [0, xs[-1]],
             "line": {"dash": "dot", "color": "grey"}}],
            "layout": {"xaxis": {"title": {"text": "offered rate (req/s)"}},
                       "yaxis": {"title": {"text": "achieved (req/s)"}}}})
    usl = cap.get("usl")
    if usl:
        points = usl["points"]
        ns = [p["concurrency"] for p in points]
        top = max(ns) if ns else 1
        grid = sorted({1.0, *[top * i / 200 for i in range(1, 201)], *ns})
        fitted = [usl["lambda"] * n / (1 + usl["sigma"] * (n - 1) + usl["kappa"] * n * (n - 1)) for n in grid]
        figures.append({"id": "usl", "title": "Throughput vs concurrency, with the USL fit", "data": [
            {"type": "scatter", "mode": "markers", "name": "measured", "x": ns,
             "y": [p["throughput"] for p in points], "marker": {"size": 9}},
            {"type": "scatter", "mode": "lines", "name": "USL fit", "x": grid, "y": fitted}],
            "layout": {"xaxis": {"title": {"text": "concurrency N"}},
                       "yaxis": {"title": {"text": "throughput (req/s)"}}}})
    return figures


def _threshold_ms(text: str, steps) -> float | None:
    from surge.plan.objective import ObjectiveError, parse_objective
    try:
        objective = parse_objective(text)
    except ObjectiveError:
        return None
    return objective.value / 1000 if objective.unit == "us" else None


def html_page(document: dict) -> str:
    """A self-contained page: the answer at the top, the step table, the charts."""
    cap = document["capacity"]
    rows = []
    for i, s in enumerate(cap["steps"], 1):
        p = s["percentiles_us"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            i, _rate(s["rate"]), _rate(s["achieved_rate"]),
            *(format_us(p[k]) if p[k] is not None else "-" for k in ("p50", "p95", "p99")),
            format_percent(s["error_rate"]), s["verdict"], s.get("deciding_slo") or "",
            s["guard"].get("problem") or "")) + "</tr>")
    figures = _figures(document)
    blocks = "".join(f'<h2>{html.escape(f["title"])}</h2><div id="{f["id"]}" class="chart"></div>' for f in figures)
    data = json.dumps([{"id": f["id"], "data": f["data"], "layout": f["layout"]} for f in figures]).replace(
        "</", "<\\/")
    first = "offered/s" if cap["model"] == "open" else "users"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>surge capacity</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}.answer{{font-size:1.3em;padding:.8em;
background:#eef6ee;border-left:6px solid #3a3}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:.2em .6em;text-align:right}}.chart{{height:420px}}</style>
<script>{_plotly_js()}</script></head><body>
<h1>surge capacity</h1>
<p class="answer">{html.escape(cap["answer"])}</p>
<p>SLOs: {html.escape(", ".join(cap["slos"]) or "none")}; confidence {cap["confidence"] * 100:g}%;
limited by: {html.escape(str(cap["limited_by"]))}</p>
<table><tr><th>step</th><th>{first}</th><th>achieved/s</th><th>p50</th><th>p95</th><th>p99</th><th>errors</th>
<th>verdict</th><th>decided by</th><th>generator guard</th></tr>{"".join(rows)}</table>
{blocks}
<script>for (const f of {data}) {{ Plotly.newPlot(f.id, f.data, f.layout, {{responsive: true}}); }}</script>
</body></html>
"""


# -- re-reading a capacity result (surge report) ------------------------------------

def is_capacity_document(data) -> bool:
    return isinstance(data, dict) and "capacity_format" in data and "capacity" in data


def check_capacity(data: dict, where: str) -> dict:
    """`data` if it is a capacity result this surge can read, else ResultFileError (one line)."""
    from surge.result.load import ResultFileError, check_shape

    fmt = data.get("capacity_format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise ResultFileError(f"{where}: 'capacity_format' must be a whole number >= 1, got {fmt!r}")
    if fmt > CAPACITY_FORMAT:
        raise ResultFileError(f"{where}: written by surge {data.get('surge_version')} in capacity format {fmt}; "
                              f"this surge {__version__} reads format {CAPACITY_FORMAT} and older: upgrade surge")
    check_shape(data, where)
    cap = data["capacity"]
    if not isinstance(cap, dict) or not isinstance(cap.get("steps"), list):
        raise ResultFileError(f"{where}: capacity.steps: expected a list of steps")
    wanted = {"rate": (int, float), "achieved_rate": (int, float), "verdict": str, "percentiles_us": dict,
              "error_rate": (int, float), "guard": dict, "result": dict}
    for i, step in enumerate(cap["steps"], 1):
        if not isinstance(step, dict):
            raise ResultFileError(f"{where}: capacity.steps[{i}]: expected an object")
        for key, kind in wanted.items():
            if not isinstance(step.get(key), kind) or isinstance(step.get(key), bool):
                raise ResultFileError(f"{where}: capacity.steps[{i}].{key}: missing or of the wrong type")
    for key, kind in (("model", str), ("answer", str), ("slos", list), ("confidence", (int, float))):
        if not isinstance(cap.get(key), kind):
            raise ResultFileError(f"{where}: capacity.{key}: missing or of the wrong type")
    return data


class _SavedStep:
    """A step read back from a capacity result, shaped as step_table reads it."""

    def __init__(self, saved: dict):
        self.rate, self.achieved_rate = saved["rate"], saved["achieved_rate"]
        self.verdict, self.deciding_slo = saved["verdict"], saved.get("deciding_slo")
        self.slos, self.guard, self.error_rate = saved.get("slos") or [], saved["guard"], saved["error_rate"]
        self.percentiles_us = {k: saved["percentiles_us"].get(k) for k in ("p50", "p95", "p99")}

    @property
    def generator_limited(self) -> bool:
        return not self.guard.get("ok", True)


def saved_summary(document: dict) -> str:
    """The step table and the answer of a capacity result, as `surge capacity` printed them."""
    cap = document["capacity"]
    return step_table([_SavedStep(s) for s in cap["steps"]], model=cap["model"]) + "\n" + cap["answer"]
