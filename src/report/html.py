"""The HTML report: one self-contained file (plotly.js inlined, no network),
executive summary first, then the charts and tables.

The file must stay under MAX_REPORT_BYTES: plotly.js alone is most of it, so
long runs are shown with wider intervals (see resample.py) until the page fits.
"""
from __future__ import annotations

import html
import json
import math
import os
import re

from surge.report.charts import STEP_FIGURE_ID, build_figures
from surge.report.findings import findings, format_measured, has_responses, summary_sentences
from surge.report.numbers import format_percent, format_rate, format_us, is_open_model, saturated_workers
from surge.report.resample import resample
from surge.report.steps import steps_of
from surge.report.summary import keepalive_off_note
from surge.result.failed import error_rate, errors_total, failed_count, failed_reasons

MAX_REPORT_BYTES = 5_000_000
RESOURCE_FIGURES = ("client-cpu", "client-memory")
HEADLINE_PERCENTILES = ("50", "99")

_CSS = """
body{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#222;margin:0;background:#f4f5f7}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:14px 0 4px}
.sub{color:#555;margin:0 0 12px;word-break:break-all}
.banner{padding:8px 12px;border-radius:4px;margin:6px 0;font-weight:600}
.bad{background:#fde2e1;color:#8a1c15}.warn{background:#fff3cd;color:#6b4e00}.good{background:#dff3e4;color:#14532d}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px}
.card .v{font-size:20px;font-weight:600}.card .k{color:#555;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:18px}.grid>div{flex:1 1 320px}
table{border-collapse:collapse;background:#fff;margin:4px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#eef0f4}td.l,th.l{text-align:left}
.pass{color:#14532d;font-weight:600}.fail{color:#8a1c15;font-weight:600}
.chart{background:#fff;border:1px solid #dde;border-radius:6px;min-height:340px}
.note{color:#555;margin:0 0 6px;font-size:13px}
.scroll{overflow-x:auto}
.handon{background:#fff;border:1px solid #dde;border-left:4px solid #1f77b4;border-radius:4px;padding:10px 14px;
 margin:8px 0;font-size:15px;max-width:960px}
.findings{margin:4px 0 0;padding-left:20px}.findings li{margin:3px 0}
details{margin:6px 0}details>summary{cursor:pointer;color:#1f4f8a}
.empty{color:#8a1c15;font-weight:600}
"""

# Records any script error on the status element, so a headless browser (and the
# test) can tell a page whose charts all rendered from one that broke.
_ERROR_HOOK = """
(function () {
  function record(message) {
    var s = document.getElementById("surge-render-status");
    s.setAttribute("data-errors", (s.getAttribute("data-errors") || "") + message + "\\n");
  }
  window.addEventListener("error", function (e) { record("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { record("rejection: " + e.reason); });
})();
"""

_RENDER = """
(function () {
  var status = document.getElementById("surge-render-status");
  var figures = JSON.parse(document.getElementById("surge-figures").textContent);
  function fail(message) {
    status.setAttribute("data-errors", (status.getAttribute("data-errors") || "") + message + "\\n");
  }
  if (typeof Plotly === "undefined") { fail("plotly.js did not load"); return; }
  var drawn = figures.map(function (f) {
    return Plotly.newPlot(f.id, f.data, f.layout, {displaylogo: false, responsive: true});
  });
  Promise.all(drawn).then(function () {
    var boxes = figures.map(function (f) {
      var r = document.getElementById(f.id).getBoundingClientRect();
      return {id: f.id, x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};
    });
    status.setAttribute("data-layout", JSON.stringify(boxes));
    status.setAttribute("data-page-height", String(document.documentElement.scrollHeight));
    status.setAttribute("data-rendered", String(figures.length));
  }, function (err) { fail("chart failed: " + err); });
})();
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value):
            return f"{int(value):,}"
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


# ---- generic tables (config, machine, scenarios, steps) -------------------------------------
def _flatten(row: dict, prefix: str = "") -> dict:
    """{"latency": {"percentiles": {"99": 5}}} -> {"latency p99": 5}, without histograms."""
    flat = {}
    for key, value in row.items():
        if key in ("hdr", "hdr_uncorrected", "unit"):
            continue
        if key.startswith("latency") and isinstance(value, dict) and value.get("count") == 0:
            value = {"count": 0}            # no responses: its zeros are not latencies
        name = f"{prefix} {key}".strip() if prefix else str(key)
        if key == "percentiles" and isinstance(value, dict):
            for pct, v in value.items():
                flat[f"{prefix} p{pct}".strip()] = v
        elif isinstance(value, dict):
            flat.update(_flatten(value, name))
        elif isinstance(value, list):
            # Scalars joined; small records (a plan's stages) as "k=v k=v; ...".
            flat[name] = "; ".join(" ".join(f"{k}={_number(v)}" for k, v in item.items()) if isinstance(item, dict)
                                   else str(item) for item in value)
        else:
            flat[name] = value
    return flat


_DURATION_WORD = re.compile(r"p\d+(\.\d+)?|max|min|mean|stdev")
_FRACTION_COLUMNS = ("share", "error_rate")


def _cell(column: str, value) -> str:
    """A flattened column's value in its unit: 'latency p99' a duration, 'latency count'
    a count, 'rps' a rate, 'share' / 'error_rate' a percentage."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _number(value)
    words = column.split()
    last = words[-1] if words else ""
    if column.endswith("rps"):
        return format_rate(value)
    if last in _FRACTION_COLUMNS:
        return format_percent(value)
    if last.endswith("_us") or (words[0].startswith("latency") and _DURATION_WORD.fullmatch(last)):
        return format_us(value)
    return _number(value)


def _table(rows: list[dict]) -> str:
    flat_rows = [_flatten(r) for r in rows]
    columns: list[str] = []
    for row in flat_rows:
        columns.extend(c for c in row if c not in columns)
    if not columns:
        return ""
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{_esc(c)}</th>' for i, c in enumerate(columns))
    body = []
    for row in flat_rows:
        cells = "".join(f'<td class="{"l" if i == 0 else ""}">{_esc(_cell(c, row.get(c)))}</td>'
                        for i, c in enumerate(columns))
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _key_values(mapping: dict) -> str:
    rows = "".join(f'<tr><th class="l">{_esc(k)}</th><td class="l">{_esc(_number(v))}</td></tr>'
                   for k, v in _flatten(mapping).items())
    return f"<table>{rows}</table>"


# ---- executive summary ----------------------------------------------------------------------
def _banners(result: dict) -> str:
    out = []
    if result.get("interrupted"):
        out.append('<div class="banner warn">Interrupted: the numbers below cover the run up to the stop.</div>')
    if result.get("recovered"):
        out.append('<div class="banner warn">Recovered from the run\'s journal (surge report --recover): '
                   "the seconds it journaled before it stopped.</div>")
    if result.get("redacted") is False:
        out.append('<div class="banner bad">Secrets not redacted (--no-redact): this report may show '
                   "credentials; do not share it.</div>")
    for failed in result.get("workers_failed") or ():
        when = f' at {_esc(failed["at_s"])}s' if isinstance(failed.get("at_s"), (int, float)) else ""
        out.append(f'<div class="banner bad">Worker {_esc(failed.get("index"))} died{when}: '
                   f'{_esc(failed.get("cause"))} (its results up to its last report are included).</div>')
    tls = result.get("tls") if isinstance(result.get("tls"), dict) else {}
    if tls.get("verify") is False:
        out.append('<div class="banner warn">TLS NOT VERIFIED (--insecure): the server\'s certificate was not '
                   "checked, so these numbers may come from a server other than the one named.</div>")
    if (result.get("config") or {}).get("keepalive") is False:
        open_model = (result.get("config") or {}).get("model") == "open"
        out.append(f'<div class="banner warn">{_esc(keepalive_off_note(open_model))} '
                   "(a new connection for every request).</div>")
    for index, cpu in saturated_workers(result):
        out.append(f'<div class="banner warn">Worker {_esc(index)} used {cpu * 100:.0f}% of a CPU core: the load '
                   "generator itself was probably the bottleneck (add workers or cores).</div>")
    return "".join(out)


def _objectives(result: dict) -> str:
    objectives = result.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        return ""
    failed = [o for o in objectives if not o.get("passed")]
    verdict = (f'<div class="banner bad">{len(failed)} of {len(objectives)} objectives failed</div>' if failed
               else f'<div class="banner good">All {len(objectives)} objectives passed</div>')
    extra_keys: list[str] = []
    for o in objectives:
        # The unit is in the value itself ("2.75ms", "0.00%").
        extra_keys.extend(k for k in o if k not in ("name", "passed", "value", "unit") and k not in extra_keys)
    head = '<tr><th class="l">objective</th><th>result</th><th>value</th>' + "".join(
        f"<th>{_esc(k)}</th>" for k in extra_keys) + "</tr>"
    rows = []
    for o in objectives:
        mark = '<td class="pass">PASS</td>' if o.get("passed") else '<td class="fail">FAIL</td>'
        extra = "".join(f"<td>{_esc(_number(o.get(k)))}</td>" for k in extra_keys)
        rows.append(f'<tr><td class="l">{_esc(o.get("name", "?"))}</td>{mark}'
                    f"<td>{_esc(format_measured(o.get('value'), o.get('unit')))}</td>{extra}</tr>")
    return f"<h2>Objectives</h2>{verdict}<table>{head}{''.join(rows)}</table>"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="v">{_esc(value)}</div><div class="k">{_esc(label)}</div></div>'


def _headline(result: dict) -> str:
    totals, latency = result["totals"], result["latency"]
    uncorrected = result.get("latency_uncorrected") if isinstance(result.get("latency_uncorrected"), dict) else None
    cards = [_card("requests", f"{totals.get('requests', 0):,}"),
             _card("requests / s", format_rate(totals.get("rps")))]
    cfg = result["config"]
    if is_open_model(result) and (cfg.get("rate") or cfg.get("peak_rate")):
        label, rate = ("target", cfg["rate"]) if cfg.get("rate") else ("peak target", cfg["peak_rate"])
        # A plan's schedule starts iterations (one or more requests each), not requests.
        cards.append(_card(f"{label} {'iterations' if cfg.get('plan') else 'requests'} / s", format_rate(rate)))
    cards.append(_card("failed", f"{format_percent(error_rate(totals))} ({failed_count(totals):,})"))
    percentiles = latency.get("percentiles", {})
    if not has_responses(result):
        cards.append(_card("latency", "no responses"))
    for key in HEADLINE_PERCENTILES if has_responses(result) else ():
        label = f"p{key} latency" + (" (corrected)" if uncorrected else "")
        cards.append(_card(label, format_us(percentiles.get(key))))
        if uncorrected:
            cards.append(_card(f"p{key} latency (uncorrected)",
                               format_us(uncorrected.get("percentiles", {}).get(key))))
    if "dropped" in totals:
        cards.append(_card("dropped (no connection free in time)", f"{totals['dropped']:,}"))
    # keep-alive off measures handshake capacity: connections per second and what each cost
    duration_s = totals.get("duration_s") or 0
    if cfg.get("keepalive") is False and isinstance(totals.get("connections_opened"), int) and duration_s:
        cards.append(_card("connections / s", format_rate(totals["connections_opened"] / duration_s)))
    handshake = result.get("tls_handshake") if isinstance(result.get("tls_handshake"), dict) else {}
    if handshake.get("count"):
        cards.append(_card("p50 TLS handshake", format_us((handshake.get("percentiles") or {}).get("50"))))
    cards.append(_card("duration", f"{totals.get('duration_s', 0):.2f} s"))
    return f'<div class="cards">{"".join(cards)}</div>'


def _latency_table(result: dict) -> str:
    if not has_responses(result):       # every request failed before a response: zeros are not latencies
        return '<p class="empty">no responses: every request failed, so there is no latency to show</p>'
    columns = [("latency", "latency" if "latency_uncorrected" not in result else "corrected")]
    if isinstance(result.get("latency_uncorrected"), dict):
        columns.append(("latency_uncorrected", "uncorrected"))
    stats = ["min", "mean", "stdev", "max"]
    keys: list[str] = []
    for source, _ in columns:
        keys.extend(k for k in result[source].get("percentiles", {}) if k not in keys)
    head = '<tr><th class="l"></th>' + "".join(f"<th>{_esc(label)}</th>" for _, label in columns) + "</tr>"
    rows = []
    for key in [*(f"p{k}" for k in keys), *stats]:
        cells = []
        for source, _ in columns:
            lat = result[source]
            value = lat.get("percentiles", {}).get(key[1:]) if key.startswith("p") else lat.get(key)
            cells.append(f"<td>{_esc(format_us(value))}</td>")
        rows.append(f'<tr><th class="l">{_esc(key)}</th>{"".join(cells)}</tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _connections_table(result: dict) -> str:
    """Connections opened, connect and TLS handshake percentiles, the negotiated
    TLS and its errors; "" for a result without them (older files)."""
    totals = result["totals"]
    tls = result.get("tls") if isinstance(result.get("tls"), dict) else None
    rows = []
    if isinstance(totals.get("connections_opened"), int):
        duration = totals.get("duration_s") or 0
        rate = f" ({format_rate(totals['connections_opened'] / duration)}/s)" if duration else ""
        rows.append(("connections opened", f"{totals['connections_opened']:,}{rate}"))
    for key, label in (("connect", "connect"), ("tls_handshake", "TLS handshake")):
        lat = result.get(key)
        if isinstance(lat, dict) and lat.get("count"):
            pcts = lat.get("percentiles") or {}
            rows.append((f"{label} p50 / p99 / max",
                         f"{format_us(pcts.get('50'))} / {format_us(pcts.get('99'))} / {format_us(lat.get('max'))}"))
    if tls:
        negotiated = " ".join(str(tls[k]) for k in ("protocol", "cipher", "group") if tls.get(k))
        rows.append(("TLS", negotiated or "no handshake completed"))
        rows.append(("certificate", "verified" if tls.get("verify") else "NOT VERIFIED (--insecure)"))
        directions = [d for d, key in (("send", "ktls_send"), ("receive", "ktls_recv")) if tls.get(key)]
        rows.append(("kTLS", ("on" + (f" ({', '.join(directions)})" if directions else "")) if tls.get("ktls") else "off"))
        rows.append(("session resumption", "on" if tls.get("resume", True) else "off"))
        shakes = tls.get("handshakes") or {}
        rows.append(("handshakes full / resumed", f"{shakes.get('full', 0):,} / {shakes.get('resumed', 0):,}"))
        errors = sorted((tls.get("errors") or {}).items(), key=lambda kv: -kv[1])
        rows += [(f"TLS error: {reason}", f"{n:,}") for reason, n in errors if n]
    if not rows:
        return ""
    body = "".join(f'<tr><th class="l">{_esc(k)}</th><td class="l">{_esc(v)}</td></tr>' for k, v in rows)
    return f'<div><h3>Connections{" and TLS" if tls else ""}</h3><table id="surge-connections">{body}</table></div>'


def _outcomes_table(result: dict) -> str:
    totals = result["totals"]
    rows = [f'<tr><th class="l">HTTP {_esc(status)}</th><td>{n:,}</td></tr>'
            for status, n in (totals.get("responses_by_status") or {}).items()]
    failed = failed_count(totals)
    rows.append(f'<tr><th class="l">failed (transport errors, failed statuses)</th>'
                f'<td>{failed:,} ({_esc(format_percent(error_rate(totals)))})</td></tr>')
    rows += [f'<tr><th class="l">&nbsp;&nbsp;{_esc(reason)}</th><td>{n:,}</td></tr>'
             for reason, n in failed_reasons(totals).items()]
    errors = totals.get("errors")
    if isinstance(errors, dict):
        rows += [f'<tr><th class="l">{_esc(kind)} errors</th><td>{n:,}</td></tr>' for kind, n in errors.items()]
    else:
        rows.append(f'<tr><th class="l">errors</th><td>{errors_total(errors):,}</td></tr>')
    labels = (("in_flight_at_stop", "in flight at the stop (not counted)"), ("due", "due (open model schedule)"),
              ("dropped", "dropped (no connection free in time)"), ("queued_at_stop", "queued at the stop"))
    for key, label in labels:
        if key in totals:
            rows.append(f'<tr><th class="l">{_esc(label)}</th><td>{totals[key]:,}</td></tr>')
    return f"<table>{''.join(rows)}</table>"


def _evidence_value(key: str, value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_evidence_value(key, v)}" for k, v in value.items())
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _number(value)
    # Evidence keys carry their unit, as the result file's do.
    if key.endswith("fraction") or key == "error_rate":
        return format_percent(value)
    if key.endswith("_us"):
        return format_us(value)
    if key.endswith("_kb"):
        return f"{value / 1024:.1f} MiB"
    if key.endswith("_per_s"):
        return f"{format_rate(value)}/s"
    if key.endswith("_s"):
        return f"{value:g} s"
    if key.endswith("_percent"):
        return f"{value:.0f}% of a core"
    return _number(value)


def _hand_on(result: dict) -> str:
    """The paragraph to hand on (findings.summary_sentences), then each finding's evidence."""
    paragraph = " ".join(summary_sentences(result))
    found = findings(result)
    items = []
    for f in found:
        rows = "".join(f'<tr><th class="l">{_esc(k)}</th><td>{_esc(_evidence_value(k, v))}</td></tr>'
                       for k, v in f.evidence.items())
        items.append(f'<li data-rule="{_esc(f.rule)}">{_esc(f.sentence)}<table>{rows}</table></li>')
    # The sentences are in the paragraph already: the list, folded, is for the numbers.
    listed = (f'<details class="evidence"><summary>the numbers behind each finding</summary>'
              f'<ul class="findings">{"".join(items)}</ul></details>' if items else "")
    return f'<h2>Summary</h2><p class="handon" id="surge-summary">{_esc(paragraph)}</p>{listed}'


def _summary(result: dict) -> str:
    cfg = result["config"]
    title = f"{cfg.get('method', '')} {cfg.get('url', '')}".strip() or "run"
    model = cfg.get("model", "closed")
    sub = (f"{_esc(title)} · {_esc(model)} model · started {_esc(result.get('started_at', '?'))} · "
           f"surge {_esc(result.get('surge_version', '?'))}")
    return (f"<h1>surge report</h1><p class=\"sub\">{sub}</p>{_banners(result)}{_hand_on(result)}"
            f"{_objectives(result)}"
            f"<h2>Headline</h2>{_headline(result)}"
            f'<div class="grid"><div><h3>Latency</h3>{_latency_table(result)}</div>'
            f"<div><h3>Responses and errors</h3>{_outcomes_table(result)}</div>"
            f"{_connections_table(result)}"
            f"<div><h3>Configuration</h3>{_key_values(cfg)}</div>"
            f"<div><h3>Machine</h3>{_key_values(result.get('machine') or {})}</div></div>")


BRIEF_PERCENTILES = ("50", "95", "99")
BRIEF_UNCORRECTED = ("50", "99")        # open model: beside the corrected ones


def _row_name(row: dict) -> str:
    if "scenario" in row and "step" in row:
        return f"{row['scenario']}/{row['step']}"
    return str(row.get("name", "?"))


def _row_rate(row: dict, duration_s: float) -> float | None:
    """The row's own rate, else its requests over its time range, else over the run."""
    if isinstance(row.get("rps"), (int, float)):
        return row["rps"]
    span = (row.get("end_s") or 0) - (row.get("start_s") or 0) if "end_s" in row else duration_s
    return row.get("requests", 0) / span if span and span > 0 else None


def _row_statuses(row: dict, steps: list[dict]) -> dict:
    if isinstance(row.get("responses_by_status"), dict):
        return row["responses_by_status"]
    # A scenario: the sum of its steps' statuses.
    statuses: dict[str, int] = {}
    for step in steps:
        if step.get("scenario") == row.get("name") and isinstance(step.get("responses_by_status"), dict):
            for status, n in step["responses_by_status"].items():
                statuses[status] = statuses.get(status, 0) + n
    return dict(sorted(statuses.items()))


def _brief_table(rows: list[dict], steps: list[dict], duration_s: float) -> str:
    """The columns people read: requests, rate, failed %, p50/p95/p99, statuses;
    in the open model the percentiles are corrected and p50/p99 uncorrected follow."""
    uncorrected = any(isinstance(row.get("latency_uncorrected"), dict) for row in rows)
    corrected = " (corrected)" if uncorrected else ""
    head = ('<tr><th class="l">name</th><th>requests</th><th>req/s</th><th>failed</th>'
            + "".join(f"<th>p{p}{corrected}</th>" for p in BRIEF_PERCENTILES)
            + "".join(f"<th>p{p} (uncorrected)</th>" for p in BRIEF_UNCORRECTED if uncorrected)
            + '<th class="l">statuses</th></tr>')
    body = []
    for row in rows:
        latency = row.get("latency") if isinstance(row.get("latency"), dict) else {}
        percentiles = latency.get("percentiles") or {}
        columns = len(BRIEF_PERCENTILES) + (len(BRIEF_UNCORRECTED) if uncorrected else 0)
        if latency.get("count", 1) == 0 or not latency:
            latency_cells = f'<td colspan="{columns}" class="empty">no responses</td>'
        else:
            latency_cells = "".join(f"<td>{_esc(format_us(percentiles.get(p)))}</td>" for p in BRIEF_PERCENTILES)
            if uncorrected:
                other = (row.get("latency_uncorrected") or {}).get("percentiles") or {}
                latency_cells += "".join(f"<td>{_esc(format_us(other.get(p)))}</td>" for p in BRIEF_UNCORRECTED)
        statuses = ", ".join(f"{code}: {n:,}" for code, n in _row_statuses(row, steps).items()) or "-"
        failed = f"{format_percent(error_rate(row))} ({failed_count(row):,})"
        body.append(f'<tr><td class="l">{_esc(_row_name(row))}</td><td>{int(row.get("requests", 0)):,}</td>'
                    f"<td>{_esc(format_rate(_row_rate(row, duration_s)))}</td><td>{_esc(failed)}</td>"
                    f'{latency_cells}<td class="l">{_esc(statuses)}</td></tr>')
    return f"<table>{head}{''.join(body)}</table>"


def _instances(result: dict) -> str:
    """A merged run's per-instance table (surge merge: merge.parts), to spot a
    slow or saturated generator; resources and machine per instance folded below."""
    merge = result.get("merge") if isinstance(result.get("merge"), dict) else {}
    rows = [r for r in merge.get("parts") or () if isinstance(r, dict)]
    if not rows:
        return ""
    brief = [{"segment": r.get("segment"), "requests": r.get("requests"), "rps": r.get("rps"),
              "p99_us": r.get("p99_us"), "busiest CPU %": r.get("cpu_percent"),
              "start offset ms": r.get("start_offset_ms"), "workers": r.get("workers"),
              "source": r.get("source"), "interrupted": r.get("interrupted")} for r in rows]
    missing = merge.get("missing") or []
    note = (f'<div class="banner warn">Partial: segment(s) {_esc(", ".join(map(str, missing)))} of '
            f'{_esc(merge.get("segments"))} missing from this merge.</div>' if missing else "")
    every = [{"segment": r.get("segment"), "machine": r.get("machine"), "resources": r.get("resources")}
             for r in rows]
    return (f"<h2>Per instance</h2>{note}{_table(brief)}"
            f"<details><summary>machine and resources per instance</summary>{_table(every)}</details>")


def _breakdowns(result: dict) -> str:
    out = [_instances(result)]
    steps = steps_of(result)
    duration_s = float((result.get("totals") or {}).get("duration_s") or 0)
    for title, rows in (("Per scenario", result.get("scenarios")), ("Per step", steps)):
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            out.append(f"<h2>{title}</h2>{_brief_table(rows, steps, duration_s)}"
                       f"<details><summary>every column</summary>{_table(rows)}</details>")
    return "".join(out)


# ---- the page -------------------------------------------------------------------------------
def _figure_block(fig: dict) -> str:
    note = f'<p class="note">{_esc(fig["note"])}</p>' if fig.get("note") else ""
    return f'<h2>{_esc(fig["title"])}</h2>{note}<div class="chart" id="{_esc(fig["id"])}"></div>'


def _script_json(value) -> str:
    # "</" inside a <script> element would end it early.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    js = get_plotlyjs()
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)


def _page(result: dict, figures: list[dict], plotly_js: str) -> str:
    main_figures = [f for f in figures if f["id"] not in RESOURCE_FIGURES and f["id"] != STEP_FIGURE_ID]
    step_figures = [f for f in figures if f["id"] == STEP_FIGURE_ID]         # under the per-step table
    resource_figures = [f for f in figures if f["id"] in RESOURCE_FIGURES]
    # Plotly figures carry their titles in the page headings, not in the plot.
    payload = [{k: f[k] for k in ("id", "data", "layout")} for f in figures]
    cfg = result["config"]
    title = f"surge report: {cfg.get('method', '')} {cfg.get('url', '')}".strip()
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f'<div id="surge-render-status" hidden data-charts="{len(figures)}" data-rendered="0" data-errors=""></div>',
        f"<script>{_ERROR_HOOK}</script>",
        f"<main>{_summary(result)}",
        "".join(_figure_block(f) for f in main_figures),
        _breakdowns(result),
        "".join(_figure_block(f) for f in step_figures),
        "".join(_figure_block(f) for f in resource_figures),
        "</main>",
        f"<script>{plotly_js}</script>",
        f'<script type="application/json" id="surge-figures">{_script_json(payload)}</script>',
        f"<script>{_RENDER}</script></body></html>",
    ])


def render_html(result: dict, max_bytes: int = MAX_REPORT_BYTES) -> str:
    """The report page for a result dict, at most `max_bytes` where the data allows."""
    plotly_js = _plotly_js()
    timeseries = result.get("timeseries") or []
    seconds_per_point = 1
    while True:
        points, exact = resample(timeseries, seconds_per_point)
        page = _page(result, build_figures(result, points, seconds_per_point, exact), plotly_js)
        size = len(page.encode("utf-8"))
        if size <= max_bytes or seconds_per_point >= max(len(timeseries), 1):
            return page
        # Scale the interval by the overshoot of the chart data, then re-check.
        data_bytes = max(size - len(plotly_js), 1)
        budget = max(max_bytes - len(plotly_js), 1)
        seconds_per_point = max(seconds_per_point * 2, math.ceil(seconds_per_point * data_bytes / budget))


def write_html(result: dict, path: str | os.PathLike) -> int:
    """Write the report page to `path`; returns its size in bytes."""
    from surge.report.outputs import atomically
    page = render_html(result).encode("utf-8")

    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            f.write(page)
    atomically(path, write)
    return len(page)
