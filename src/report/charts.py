"""The report's charts as plotly figure dicts (data + layout), built from a result dict.

Plain dicts rather than plotly.graph_objects: the page hands them to
plotly.js as JSON, and this keeps building them cheap and the JSON small.
Latency is µs in the result and ms on the charts.
"""
from __future__ import annotations

import statistics

from surge.core._histogram import Histogram, HistogramDecodeError
from surge.report.numbers import interval_lengths_s, is_open_model
from surge.report.resample import is_latency_key, resample
from surge.result.failed import error_rate, errors_total, failed_count

# Ticks per halving of the distance to 100%, as HdrHistogram's percentile output walks.
SPECTRUM_TICKS_PER_HALF = 5
# Above this many workers, per-worker lines become min / median / max across workers.
MAX_WORKER_TRACES = 16

COLOR = {"p50": "#1f77b4", "p75": "#17becf", "p90": "#2ca02c", "p95": "#bcbd22", "p99": "#d62728",
         "p99.9": "#ff7f0e", "max": "#9467bd", "min": "#8c564b"}
TRACE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f"]


def _layout(y_title: str, x_title: str = "seconds since start", y_log: bool = False, **extra) -> dict:
    layout = {
        "height": 340,
        "margin": {"l": 70, "r": 30, "t": 20, "b": 50},
        "xaxis": {"title": {"text": x_title}, "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "type": "log" if y_log else "linear"},
        "legend": {"orientation": "h", "y": -0.22},
        "hovermode": "x unified",
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
    }
    if y_log:
        del layout["yaxis"]["rangemode"]
    layout.update(extra)
    return layout


def _line(name: str, x, y, color: str | None = None, dash: str | None = None, axis: str | None = None,
          unit: str = "") -> dict:
    trace = {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y,
             "line": {"width": 2}, "hovertemplate": f"%{{y:,.3~f}}{unit}"}
    if len(x) < 3:
        trace["mode"] = "lines+markers"
    if color:
        trace["line"]["color"] = color
    if dash:
        trace["line"]["dash"] = dash
    if axis:
        trace["yaxis"] = axis
    return trace


def _ms(value_us):
    return None if value_us is None else round(value_us / 1000, 3)


def _rate(count, length_s):
    return round(count / length_s, 2) if count is not None and length_s > 0 else None


def figure(fig_id: str, title: str, data: list[dict], layout: dict, note: str = "") -> dict:
    return {"id": fig_id, "title": title, "note": note, "data": data, "layout": layout}


def _second_axis(layout: dict, title: str) -> None:
    layout["yaxis2"] = {"title": {"text": title}, "overlaying": "y", "side": "right",
                        "rangemode": "tozero", "showgrid": False, "tickmode": "auto"}
    layout["margin"]["r"] = 70


# ---- requests per second -------------------------------------------------------------------
def throughput_figure(result: dict, points: list[dict], note: str) -> dict:
    xs = [p["t"] for p in points]
    lengths = interval_lengths_s(points)
    data = [_line("responses/s", xs, [_rate(p.get("requests", 0), n) for p, n in zip(points, lengths)],
                  color="#1f77b4", unit=" req/s")]
    rate = result.get("config", {}).get("rate")
    has_target = any(p.get("target") is not None for p in points)
    layout = _layout("requests / s")
    if is_open_model(result) and result.get("config", {}).get("plan"):
        # A plan's open model schedules scenario iterations (each one or more requests):
        # its target is iterations/s, on its own axis, never read as requests.
        targets = [p.get("target") for p in points] if has_target else ([rate] * len(xs) if rate else None)
        if targets:
            data.append(_line("target iterations/s", xs, targets, color="#444444", dash="dash", axis="y2",
                              unit=" iterations/s"))
            _second_axis(layout, "iterations / s (target)")
    elif is_open_model(result):
        # Open model: a point's target is the schedule's rate over that interval.
        if has_target:
            data.append(_line("target/s", xs, [p.get("target") for p in points], color="#444444", dash="dash",
                              unit=" req/s"))
        elif rate:
            data.append(_line("target/s", xs, [rate] * len(xs), color="#444444", dash="dash", unit=" req/s"))
    elif has_target:
        # Closed model with stages: the target is a number of connections, on its own axis.
        data.append(_line("target connections", xs, [p.get("target") for p in points], color="#444444",
                          dash="dash", axis="y2"))
        _second_axis(layout, "connections")
    if any("dropped" in p for p in points):
        data.append(_line("dropped/s", xs, [_rate(p.get("dropped", 0), n) for p, n in zip(points, lengths)],
                          color="#d62728", unit=" /s"))
    return figure("throughput", "Requests per second", data, layout, note)


# ---- latency over time ---------------------------------------------------------------------
def _latency_key_order(key: str):
    name = key.replace("_uncorrected", "")
    rank = float("inf") if name == "max" else (-1 if name == "min" else float(name[1:]))
    return (rank, key.endswith("_uncorrected"))


def latency_over_time_figure(result: dict, points: list[dict], note: str) -> dict:
    xs = [p["t"] for p in points]
    keys = sorted({k for p in points for k in p if is_latency_key(k) and k != "min"}, key=_latency_key_order)
    has_uncorrected = any(k.endswith("_uncorrected") for k in keys)
    data = []
    for key in keys:
        name = key.replace("_uncorrected", "")
        uncorrected = key.endswith("_uncorrected")
        label = f"{name} ({'uncorrected' if uncorrected else 'corrected'})" if has_uncorrected else name
        # A second without responses has no latency: a gap, not a zero (and log axes refuse 0).
        ys = [_ms(p.get(key)) if p.get("requests", 1) and p.get(key) else None for p in points]
        data.append(_line(label, xs, ys, color=COLOR.get(name), dash="dot" if uncorrected else None, unit=" ms"))
    if has_uncorrected:
        note = (note + " " if note else "") + ("Corrected latency is measured from when each request was due "
                                               "(the schedule); uncorrected from when it was actually sent.")
    return figure("latency-over-time", "Latency percentiles per second", data,
                  _layout("latency (ms, log scale)", y_log=True), note)


# ---- percentile spectrum -------------------------------------------------------------------
def spectrum_points(hist: Histogram) -> tuple[list[float], list[int]]:
    """(x = 1/(1-p), value µs) from the minimum to the maximum, HdrHistogram's walk."""
    count = hist.total_count
    if count == 0:
        return [], []
    percentiles, i = [], 0
    while True:
        remaining = 0.5 ** (i / SPECTRUM_TICKS_PER_HALF)        # 1 - p
        if 1 / remaining >= count:
            break
        percentiles.append(100.0 * (1.0 - remaining))
        i += 1
    values = hist.values_at_percentiles(percentiles) if percentiles else []
    xs = [1.0 / (1.0 - p / 100.0) for p in percentiles]
    # The maximum sits at the last rank: percentile (1 - 1/count), x = count.
    xs.append(float(max(count, xs[-1] * 1.01 if xs else 1.0)))
    values.append(hist.max)
    return xs, values


def spectrum_ticks(max_x: float) -> tuple[list[float], list[str]]:
    values, labels = [1.0, 2.0], ["0%", "50%"]
    k = 1
    while 10 ** k <= max_x * 1.0001:
        values.append(float(10 ** k))
        labels.append(f"{100 - 100 / 10 ** k:.{max(k - 2, 0)}f}%")
        k += 1
    return values, labels


def _decode(text) -> Histogram | None:
    if not isinstance(text, str):
        return None
    try:
        return Histogram.decode(text)
    except (HistogramDecodeError, ValueError):
        return None


def spectrum_figure(result: dict) -> dict | None:
    series = [("latency", "corrected", "#d62728"), ("latency_uncorrected", "uncorrected", "#1f77b4")]
    present = [(key, label, color) for key, label, color in series
               if isinstance(result.get(key), dict) and result[key].get("hdr")]
    data, max_x = [], 1.0
    for key, label, color in present:
        hist = _decode(result[key]["hdr"])
        if hist is None or hist.total_count == 0:
            continue
        xs, values = spectrum_points(hist)
        max_x = max(max_x, xs[-1])
        name = label if len(present) > 1 else "latency"
        trace = _line(name, [round(x, 4) for x in xs], [_ms(v) for v in values], color=color,
                      dash="dot" if label == "uncorrected" else None, unit=" ms")
        trace["customdata"] = [round(100 - 100 / x, 6) for x in xs]
        trace["hovertemplate"] = "%{customdata}%: %{y:,.3~f} ms"
        data.append(trace)
    if not data:
        return None
    tick_values, tick_labels = spectrum_ticks(max_x)
    layout = _layout("latency (ms)", x_title="percentile", hovermode="closest")
    layout["xaxis"].update({"type": "log", "tickvals": tick_values, "ticktext": tick_labels})
    note = ("Every request's latency by percentile, as HdrHistogram plots it: each step right is ten times "
            "rarer. The last point is the maximum.")
    return figure("spectrum", "Latency by percentile", data, layout, note)


# ---- responses and errors over time --------------------------------------------------------
def responses_errors_figure(result: dict, points: list[dict], note: str) -> dict:
    xs = [p["t"] for p in points]
    lengths = interval_lengths_s(points)
    data = []
    statuses = sorted({s for p in points if isinstance(p.get("statuses"), dict) for s in p["statuses"]})
    if statuses:
        for i, status in enumerate(statuses):
            ys = [_rate(p.get("statuses", {}).get(status, 0), n) for p, n in zip(points, lengths)]
            data.append(_line(f"HTTP {status}", xs, ys, color=TRACE_COLORS[i % len(TRACE_COLORS)], unit=" /s"))
    else:
        data.append(_line("responses (all statuses)", xs,
                          [_rate(p.get("requests", 0), n) for p, n in zip(points, lengths)], color="#1f77b4",
                          unit=" /s"))
    kinds = sorted({k for p in points if isinstance(p.get("errors"), dict) for k in p["errors"]})
    if kinds:
        for i, kind in enumerate(kinds):
            ys = [_rate(p.get("errors", {}).get(kind, 0), n) for p, n in zip(points, lengths)]
            data.append(_line(f"{kind} errors", xs, ys, color=TRACE_COLORS[(i + 3) % len(TRACE_COLORS)],
                              dash="dot", axis="y2", unit=" /s"))
    else:
        data.append(_line("transport errors", xs,
                          [_rate(errors_total(p.get("errors")), n) for p, n in zip(points, lengths)],
                          color="#d62728", axis="y2", unit=" /s"))
    # Failed requests (transport errors and failed statuses, surge.result.failed.failed_count) per
    # second, with their share of that second's attempts in the hover text.
    failed = _line("failed/s", xs, [_rate(failed_count(p), n) for p, n in zip(points, lengths)],
                   color="#8a1c15", axis="y2")
    failed["customdata"] = [round(error_rate(p) * 100, 2) for p in points]
    failed["hovertemplate"] = "%{y:,.3~f} /s (%{customdata:.2f}% failed)"
    data.append(failed)
    layout = _layout("responses / s")
    _second_axis(layout, "failed and errors / s")
    if not statuses:
        note = (note + " " if note else "") + ("Per-second responses by status are not in this result: "
                                               "the totals by status are in the summary above.")
    return figure("responses-errors", "Responses and errors per second", data, layout, note)


# ---- connections opened over time -----------------------------------------------------------
def connections_figure(result: dict, points: list[dict], note: str) -> dict | None:
    """Connections opened per second (with keep-alive off, one per request), and
    the connections open at each second's end; None for a result without them."""
    if not any("connections_opened" in p for p in points):
        return None
    xs = [p["t"] for p in points]
    lengths = interval_lengths_s(points)
    data = [_line("connections opened/s", xs, [_rate(p.get("connections_opened", 0), n) for p, n in zip(points, lengths)],
                  color="#2ca02c", unit=" /s")]
    layout = _layout("connections opened / s")
    if any("active_connections" in p for p in points):
        data.append(_line("open connections", xs, [p.get("active_connections") for p in points], color="#444444",
                          dash="dot", axis="y2"))
        _second_axis(layout, "open connections")
    return figure("connections", "Connections opened per second", data, layout, note)


# ---- per-step seconds (plans) ---------------------------------------------------------------
STEP_FIGURE_ID = "steps-over-time"
_STEP_LATENCY_KEYS = ("p50", "p99")


def _with_step_percentiles(point: dict) -> dict:
    """A step point with its p50 and p99 (and uncorrected ones): files written
    before per-step percentiles carry only the histogram(s)."""
    missing = [(key, suffix) for suffix, hdr_key in (("", "hdr"), ("_uncorrected", "hdr_uncorrected"))
               if isinstance(point.get(hdr_key), str) for key in _STEP_LATENCY_KEYS if key + suffix not in point]
    if not missing:
        return point
    point = dict(point)
    for suffix in {suffix for _, suffix in missing}:
        hist = _decode(point["hdr" + suffix])
        if hist is not None:
            for key in _STEP_LATENCY_KEYS:
                point.setdefault(key + suffix, hist.value_at_percentile(float(key[1:])))
    return point


def _chart_fields(point: dict) -> dict:
    """What the step chart draws from a point (no histograms: see steps_over_time_figure)."""
    return {key: value for key, value in point.items() if not key.startswith("hdr") and key != "statuses"}


def _step_traces(points: list[dict], visible: bool, has_uncorrected: bool) -> list[dict]:
    """One step's lines: p50/p99 (ms, log axis), then its requests and failed per second (right axis)."""
    xs = [p["t"] for p in points]
    lengths = interval_lengths_s(points)
    traces = []
    for suffix in ("", "_uncorrected") if has_uncorrected else ("",):
        for key in _STEP_LATENCY_KEYS:
            label = f"{key} ({'uncorrected' if suffix else 'corrected'})" if has_uncorrected else key
            ys = [_ms(p.get(key + suffix)) if p.get("requests", 1) and p.get(key + suffix) else None for p in points]
            traces.append(_line(label, xs, ys, color=COLOR[key], dash="dot" if suffix else None, unit=" ms"))
    traces.append(_line("requests/s", xs, [_rate(p.get("requests", 0), n) for p, n in zip(points, lengths)],
                        color="#7f7f7f", axis="y2", unit=" /s"))
    traces.append(_line("failed/s", xs, [_rate(failed_count(p), n) for p, n in zip(points, lengths)],
                        color="#8a1c15", axis="y2", unit=" /s"))
    for trace in traces:
        trace["visible"] = visible
    return traces


def steps_over_time_figure(result: dict, seconds_per_point: int) -> dict | None:
    """Each plan step's seconds (the result's `step_timeseries`): p50 and p99,
    requests and failed per second.  One chart whatever the number of steps:
    a menu picks the step shown (20 charts would bury the page), the first
    step is drawn.  None without per-step seconds (URL runs, older files)."""
    series = [s for s in result.get("step_timeseries") or ()
              if isinstance(s, dict) and isinstance(s.get("points"), list) and s["points"]]
    if not series:
        return None
    has_uncorrected = any("hdr_uncorrected" in p or "p99_uncorrected" in p for s in series for p in s["points"])
    data, owner, names = [], [], []
    for i, entry in enumerate(series):
        # Wide intervals show each one's worst second: merging every step's
        # histograms again on each of the page's size passes cost ~40 s for 20
        # steps over an hour; the step's exact figures are in the table above.
        points, _ = resample([_chart_fields(_with_step_percentiles(p)) for p in entry["points"]], seconds_per_point)
        traces = _step_traces(points, i == 0, has_uncorrected)
        data.extend(traces)
        owner.extend([i] * len(traces))
        names.append(f"{entry.get('scenario', '?')}/{entry.get('step', '?')}")
    layout = _layout("latency (ms, log scale)", y_log=True)
    _second_axis(layout, "requests and failed / s")
    layout["margin"]["t"] = 50
    buttons = [{"label": name, "method": "update", "args": [{"visible": [k == i for k in owner]}]}
               for i, name in enumerate(names)]
    layout["updatemenus"] = [{"type": "dropdown", "buttons": buttons, "active": 0, "showactive": True,
                              "x": 0, "xanchor": "left", "y": 1.18, "yanchor": "top"}]
    text = f"Pick the step in the menu ({len(names)} {'step' if len(names) == 1 else 'steps'})."
    if seconds_per_point > 1:
        text += f" Each point covers {seconds_per_point} seconds; latency shows the worst second of each."
    if has_uncorrected:
        text += (" Corrected latency runs from when the step was due: its iteration's arrival for a first step, "
                 "else its predecessor's intended completion (due time + that step's fastest response) plus "
                 "the think time, so a stall shows in every later step it delayed; uncorrected from the step's "
                 "own send.")
    return figure(STEP_FIGURE_ID, "Per step, per second", data, layout, text)


# ---- client resources ----------------------------------------------------------------------
def _worker_series(points: list[dict], field: str, scale: float) -> dict[int, list]:
    indexes = sorted({w.get("index", 0) for p in points for w in p.get("workers") or ()})
    series = {}
    for index in indexes:
        ys = []
        for p in points:
            sample = next((w for w in p.get("workers") or () if w.get("index", 0) == index), None)
            value = sample.get(field) if sample else None
            ys.append(None if value is None else round(value * scale, 2))
        series[index] = ys
    return series


def _worker_traces(xs, series: dict[int, list], unit: str) -> list[dict]:
    if len(series) <= MAX_WORKER_TRACES:
        return [_line(f"worker {index}", xs, ys, color=TRACE_COLORS[i % len(TRACE_COLORS)], unit=unit)
                for i, (index, ys) in enumerate(series.items())]
    columns = list(zip(*series.values()))
    stats = {"max": [], "median": [], "min": []}
    for column in columns:
        known = [v for v in column if v is not None]
        stats["max"].append(max(known) if known else None)
        stats["median"].append(round(statistics.median(known), 2) if known else None)
        stats["min"].append(min(known) if known else None)
    colors = {"max": "#d62728", "median": "#1f77b4", "min": "#2ca02c"}
    return [_line(f"{name} of {len(series)} workers", xs, ys, color=colors[name], unit=unit)
            for name, ys in stats.items()]


def resource_figures(result: dict, points: list[dict], note: str) -> list[dict]:
    if any(p.get("workers") for p in points):
        xs = [p["t"] for p in points]
        cpu = _worker_traces(xs, _worker_series(points, "cpu_percent", 1.0), " %")
        rss = _worker_traces(xs, _worker_series(points, "rss_kb", 1 / 1024), " MiB")
        cpu_note = "100% is one CPU core busy. A worker near 100% means the client, not the target, set the pace."
        return [figure("client-cpu", "Client CPU per worker", cpu, _layout("CPU % of one core"),
                       (note + " " if note else "") + cpu_note),
                figure("client-memory", "Client memory per worker (RSS)", rss, _layout("MiB"), note)]
    workers = (result.get("resources") or {}).get("workers") or []
    duration = result.get("totals", {}).get("duration_s") or 0
    if not workers or duration <= 0:
        return []
    names = [f"worker {w.get('index', i)}" for i, w in enumerate(workers)]
    cpu = [round(100 * (w.get("user_s", 0) + w.get("sys_s", 0)) / duration, 1) for w in workers]
    user = [round(100 * w.get("user_s", 0) / duration, 1) for w in workers]
    rss = [round(w.get("max_rss_kb", 0) / 1024, 1) for w in workers]
    cpu_data = [{"type": "bar", "name": "user", "x": names, "y": user, "marker": {"color": "#1f77b4"}},
                {"type": "bar", "name": "system", "x": names, "y": [round(c - u, 1) for c, u in zip(cpu, user)],
                 "marker": {"color": "#ff7f0e"}}]
    rss_data = [{"type": "bar", "name": "peak RSS", "x": names, "y": rss, "marker": {"color": "#2ca02c"}}]
    missing = "this result has no per-second samples of the workers"
    return [figure("client-cpu", "Client CPU per worker (whole run)", cpu_data,
                   _layout("CPU % of one core", x_title="", barmode="stack", hovermode="closest"),
                   f"Averages over the whole run ({missing}). 100% is one CPU core busy."),
            figure("client-memory", "Client memory per worker (peak RSS)", rss_data,
                   _layout("MiB", x_title="", hovermode="closest"), f"The peak of the run ({missing}).")]


def build_figures(result: dict, points: list[dict], seconds_per_point: int, exact: bool) -> list[dict]:
    """Every chart of the report, from `points` (the time series, maybe resampled)."""
    note = ""
    if seconds_per_point > 1:
        note = f"Each point covers {seconds_per_point} seconds" + (
            "." if exact else "; latency shows the worst second of each.")
    figures = []
    if points:
        figures.append(throughput_figure(result, points, note))
        figures.append(latency_over_time_figure(result, points, note))
    spectrum = spectrum_figure(result)
    if spectrum:
        figures.append(spectrum)
    if points:
        figures.append(responses_errors_figure(result, points, note))
        connections = connections_figure(result, points, note)
        if connections:
            figures.append(connections)
    steps = steps_over_time_figure(result, seconds_per_point)
    if steps:
        figures.append(steps)
    figures.extend(resource_figures(result, points, note))
    return figures

