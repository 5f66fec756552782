"""The terminal summary: wrk's layout, fuller."""
from __future__ import annotations

from surge.report.numbers import format_bytes, format_percent, format_rate, format_us, plural, saturated_workers
from surge.result.failed import error_rate, errors_total, failed_count, failed_reasons
from surge.report.redirects import redirect_lines


def _us(value: float) -> str:
    """Microseconds in the summary's fixed columns: '412.00us' / '1.25ms' / '2.10s'."""
    return format_us(value, us_digits=2)


def _latency_block(title: str, lat: dict) -> list[str]:
    if not lat.get("count"):            # every request failed before a response: no zeros as numbers
        return [f"  {title}", "    no responses", ""]
    lines = [f"  {title}",
             "               min       mean      stdev       max",
             f"           {_us(lat['min']):>9} {_us(lat['mean']):>9} {_us(lat['stdev']):>9} {_us(lat['max']):>9}",
             "    " + "  ".join(f"p{key} {_us(value)}" for key, value in lat["percentiles"].items()),
             ""]
    return lines


def _pcts(lat: dict) -> tuple[str, str]:
    """p50 and p99 of a step or scenario ('-' when it had no response)."""
    if not lat.get("count", 1):
        return "-", "-"
    return _us(lat["percentiles"]["50"]), _us(lat["percentiles"]["99"])


def _failed_cell(part: dict) -> str:
    return f"{failed_count(part)} {error_rate(part) * 100:5.1f}%"


def _flow_lines(result: dict) -> list[str]:
    """Per scenario and per step (test plans), then each objective."""
    lines = []
    scenarios = [s for s in result.get("scenarios") or [] if "share" in s and "latency" in s]
    if scenarios:
        lines += ["", "  Scenarios     share  iterations  aborted  requests        failed  errors  checks failed"
                      "       p50       p99"]
        for s in scenarios:
            p50, p99 = _pcts(s["latency"])
            lines.append(f"  {s['name'][:12]:<12} {s['share'] * 100:5.1f}%  {s['iterations']:>10}  {s['aborted']:>7}  "
                         f"{s['requests']:>8}  {_failed_cell(s):>12}  {errors_total(s['errors']):>6}  {s['check_failures']:>13}  "
                         f"{p50:>8}  {p99:>8}")
    steps = [st for st in result.get("steps") or [] if "check_failures" in st and "latency" in st]
    if steps:
        # open model: a step's p50/p99 are corrected (from when it was due), its uncorrected p99 beside them
        uncorrected = all("latency_uncorrected" in st for st in steps)
        lines += ["", "  Steps                           requests        failed  errors  checks failed       p50"
                      "       p99" + (" p99 uncorr" if uncorrected else "") + "  statuses"]
        for st in steps:
            p50, p99 = _pcts(st["latency"])
            extra = f" {_pcts(st['latency_uncorrected'])[1]:>10}" if uncorrected else ""
            statuses = ",".join(f"{k}:{v}" for k, v in st["responses_by_status"].items())
            name = f"{st['scenario']}/{st['step']}"
            lines.append(f"  {name[:30]:<30} {st['requests']:>9}  {_failed_cell(st):>12}  "
                         f"{errors_total(st['errors']):>6}  {st['check_failures']:>13}  {p50:>8}  {p99:>8}{extra}"
                         f"  {statuses}")
    if result.get("objectives"):
        part = (result.get("run") or {}).get("segment")
        lines += ["", "  Objectives" + (f" (segment {part['index']}/{part['count']} alone: the run's verdict is "
                                        f"`surge merge`'s)" if part else "")]
        for o in result["objectives"]:
            value = o["value"]
            if value is None:
                shown = "no data"
            elif o["unit"] == "us":
                shown = _us(value)
            elif o["unit"] == "fraction":
                shown = format_percent(value)
            elif o["unit"] == "req/s":
                shown = f"{format_rate(value)}/s"
            else:
                shown = f"{value:g}"
            lines.append(f"    {'PASS' if o['passed'] else 'FAIL'}  {o['name']:<36} measured {shown}")
    return lines


def _head_lines(result: dict) -> list[str]:
    """What ran: the command, the target's address, the load."""
    cfg = result["config"]
    lines = []
    bound = plural(cfg["requests"], "request") if cfg.get("requests") else f"{cfg['duration_s']:g}s"
    if cfg.get("plan"):
        lines.append(f"surge {result['surge_version']}  plan {cfg['plan']} ({cfg.get('plan_file', '')}) -> {cfg['url']}")
    elif cfg.get("targets_file"):
        lines.append(f"surge {result['surge_version']}  targets {cfg['targets_file']} "
                     f"({plural(cfg.get('targets', 0), 'target')}, {cfg.get('order', '')}) -> {cfg['url']}")
    else:
        lines.append(f"surge {result['surge_version']}  {cfg['method']} {cfg['url']}")
    if cfg.get("address"):              # the address the name resolved to and was reached at
        lines.append(f"  Target: {cfg['url']} ({cfg['address']})")
    workers = plural(cfg["workers"], "worker")
    if cfg.get("model") == "open":
        # A plan's open model starts scenario iterations, each of one or more requests.
        rate_unit, users = ("iterations/s", "virtual user") if cfg.get("plan") else ("req/s", "connection")
        shape = (f"{cfg['rate']:g} {rate_unit}" if cfg.get("rate")
                 else f"stages peaking at {cfg['peak_rate']:g} {rate_unit}")
        lines.append(f"  open model: {shape} for {bound}, up to {plural(cfg['max_connections'], users)}, "
                     f"{workers}, timeout {cfg['timeout_s']:g}s")
    else:
        staged = f" (stages, peak {max(s['target'] for s in cfg['stages']):g})" if cfg.get("stages") else ""
        unit = "virtual user" if cfg.get("plan") else "connection"
        pipeline = f", pipeline {cfg['pipeline']}" if "pipeline" in cfg else ""
        if cfg.get("pipeline_timing") == "batch":
            pipeline += " (timed per batch)"
        lines.append(f"  {bound}, {plural(cfg['connections'], unit)}{staged}, {workers}"
                     f"{pipeline}, timeout {cfg['timeout_s']:g}s")
    merge = result.get("merge")
    if merge:
        missing = f", MISSING {', '.join(map(str, merge['missing']))}" if merge.get("missing") else ""
        lines.append(f"  merged: {len(merge['merged'])} of {plural(merge['segments'], 'segment')} of run "
                     f"{(result.get('run') or {}).get('id', '?')}{missing} (surge merge; per instance below)")
    segment = (result.get("run") or {}).get("segment")
    if segment:
        lines.append(f"  {_segment_line(segment, cfg, result['run'].get('id'))}")
    return lines


def _segment_line(segment: dict, cfg: dict, run_id: str | None) -> str:
    """'segment 1/3 of run ID: this part runs 1,000 requests, 2 connections' (the
    lines above describe the whole run, as configured)."""
    unit = "virtual user" if cfg.get("plan") else "connection"
    share = []
    if segment.get("requests"):
        share.append(plural(segment["requests"], "request"))
    if segment.get("connections") is not None:
        share.append(f"up to {plural(segment['connections'], unit)}" if cfg.get("model") == "open"
                     else plural(segment["connections"], unit))
    if cfg.get("model") == "open":
        share.append(f"1/{segment['count']} of the schedule")
    part = f": this part runs {', '.join(share)}" if share else ""
    return f"segment {segment['index']}/{segment['count']} of run {run_id or '?'}{part}"


def instance_lines(result: dict) -> list[str]:
    """A merged run's per-instance table: each part's requests, rate, p99, its
    busiest worker's CPU and its start after the first, to spot a slow or
    saturated generator (surge.result.combine: merge.parts)."""
    rows = (result.get("merge") or {}).get("parts") or []
    if not rows:
        return []
    lines = ["", "  Instances  requests       req/s        p99  busiest CPU    start  source"]
    for row in rows:
        p99 = _us(row["p99_us"]) if row.get("p99_us") is not None else "-"
        cpu = f"{row['cpu_percent']:.0f}%" if row.get("cpu_percent") is not None else "-"
        flags = "".join(f"  {flag}" for flag, on in (("INTERRUPTED", row.get("interrupted")),
                                                     ("WORKER DIED", row.get("workers_failed"))) if on)
        lines.append(f"  {row['segment']:>9} {row['requests']:>9,} {row['rps']:>11,.1f} {p99:>10} {cpu:>12} "
                     f"{'+' + format(row['start_offset_ms'], '.0f') + 'ms':>8}  {row['source']}{flags}")
    return lines


# The TLS error reasons the summary names; the rest are counted together.
TOP_TLS_ERRORS = 5


def _cost(lat: dict | None) -> str | None:
    """'p50 120.00us  p99 410.00us  max 1.20ms' of a connect or handshake summary, None without one."""
    if not isinstance(lat, dict) or not lat.get("count"):
        return None
    pcts = lat["percentiles"]
    return f"p50 {_us(pcts['50'])}  p99 {_us(pcts['99'])}  max {_us(lat['max'])}"


def _tls_line(tls: dict, asked: dict) -> str:
    """`TLS  TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, verified` (or NOT VERIFIED);
    `asked`: the config's TLS options (--ktls asked but not in effect is said)."""
    negotiated = " ".join(str(tls[k]) for k in ("protocol", "cipher", "group") if tls.get(k))
    verified = "verified" if tls["verify"] else "NOT VERIFIED (--insecure): the server's certificate was not checked"
    extras = []
    if tls.get("ktls"):
        one_way = {(True, False): " (send only)", (False, True): " (receive only)"}
        extras.append("kTLS" + one_way.get((tls.get("ktls_send"), tls.get("ktls_recv")), ""))
    elif asked.get("ktls") is True:
        extras.append("kTLS asked for but not in effect (kernel or OpenSSL without it)")
    if tls.get("resume") is False:
        extras.append("resumption off")
    return f"  TLS  {negotiated or 'no handshake completed'}, {verified}" + "".join(f", {e}" for e in extras)


def _connection_lines(result: dict) -> list[str]:
    """Connections opened and what they cost (connect, TLS handshake), the
    negotiated TLS, its handshakes and its errors; absent keys (older files,
    plain http) leave their lines out."""
    totals, lines = result["totals"], []
    opened = totals.get("connections_opened")
    connect = _cost(result.get("connect"))
    if opened is not None or connect:
        parts = []
        if opened is not None:
            duration = totals["duration_s"]
            # a rate says something when connections come and go (keep-alive off), not for a pool opened once
            churn = result["config"].get("keepalive") is False
            rate = f" ({format_rate(opened / duration)}/s)" if duration and churn else ""
            parts.append(f"{plural(opened, 'opened', 'opened')}{rate}")
        if connect:
            parts.append(f"connect {connect}")
        lines.append("  Connections: " + ", ".join(parts))
    tls = result.get("tls")
    if isinstance(tls, dict):
        asked = result["config"].get("tls") if isinstance(result["config"].get("tls"), dict) else {}
        lines.append(_tls_line(tls, asked))
        handshake = _cost(result.get("tls_handshake"))
        shakes = tls["handshakes"]
        counted = f"handshakes {shakes['full']:,} full, {shakes['resumed']:,} resumed"
        lines.append(f"    {'handshake ' + handshake + '; ' if handshake else ''}{counted}")
        reasons = sorted(((str(k), int(v)) for k, v in tls["errors"].items() if v), key=lambda kv: (-kv[1], kv[0]))
        if reasons:
            shown = ", ".join(f"{reason}: {n}" for reason, n in reasons[:TOP_TLS_ERRORS])
            rest = sum(n for _, n in reasons[TOP_TLS_ERRORS:])
            more = f", {len(reasons) - TOP_TLS_ERRORS} more reasons: {rest}" if rest else ""
            lines.append(f"    TLS errors: {shown}{more}")
    return lines


def _failed_line(totals: dict) -> str:
    """`Failed: 100 (100.00%) — status 500: 98, timeout: 2` (the rule: README, "Failed requests")."""
    count = failed_count(totals)
    if not count:
        return "  Failed: none"
    reasons = ", ".join(f"{reason}: {n}" for reason, n in failed_reasons(totals).items())
    return f"  Failed: {count} ({error_rate(totals) * 100:.2f}%) — {reasons}"


def _open_model_lines(totals: dict) -> list[str]:
    lines = [f"  Intended (due): {totals['due']}   dropped after waiting --timeout: {totals['dropped']}"
             f"   queued at the stop: {totals.get('queued_at_stop', 0)}"]
    if totals["dropped"]:
        lines.append(f"  WARNING: {plural(totals['dropped'], 'request was', 'requests were')} DROPPED: no connection "
                     f"was free within the timeout (raise --max-connections, or the target is saturated)")
    queued = totals.get("queued_at_stop", 0)
    if queued:
        lines.append(f"  WARNING: {plural(queued, 'request was', 'requests were')} due but still QUEUED at the stop "
                     f"(never sent): the target or the client could not keep up with the rate asked")
    return lines


def render_summary(result: dict) -> str:
    """The human summary of a result dict."""
    cfg, totals, lat = result["config"], result["totals"], result["latency"]
    lines = _head_lines(result)
    if result.get("interrupted"):
        lines.append("  INTERRUPTED: partial results below")
    if result.get("recovered"):
        lines.append("  RECOVERED from the run's journal: every second it journaled (surge report --recover)")
    if result.get("redacted") is False:
        lines.append("  SECRETS NOT REDACTED (--no-redact): do not share this output")
    lines.append("")
    open_model = cfg.get("model") == "open"
    if open_model:
        lines += _latency_block("Latency, corrected (from each request's intended send time)", lat)
        if "latency_uncorrected" in result:
            lines += _latency_block("Latency, uncorrected (from the actual write)", result["latency_uncorrected"])
    else:
        lines += _latency_block("Latency", lat)
    if cfg.get("keepalive") is False:
        lines += [f"  {keepalive_off_note(open_model)}", ""]
    duration = totals["duration_s"]
    lines.append(f"  {plural(totals['requests'], 'request')} in {duration:.2f}s, {format_bytes(totals['bytes_in'])} "
                 f"read, {format_bytes(totals['bytes_out'])} written")
    lines.append(f"  Requests/sec: {totals['rps']:>12,.2f}")
    rate_in = totals["bytes_in"] / duration if duration else 0
    lines.append(f"  Transfer/sec: {format_bytes(rate_in):>12}")
    statuses = ", ".join(f"{code}: {n}" for code, n in totals["responses_by_status"].items()) or "none"
    lines.append(f"  Responses by status: {statuses}")
    lines.append(_failed_line(totals))
    errors = {k: v for k, v in totals["errors"].items() if v}
    if errors:
        lines.append("  Errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    else:
        lines.append("  Errors: none")
    lines += redirect_lines(result)
    lines += _connection_lines(result)
    if "due" in totals:
        lines += _open_model_lines(totals)
    if totals.get("in_flight_at_stop"):
        lines.append(f"  In flight at the stop (not counted): {totals['in_flight_at_stop']}")
    saturated = saturated_workers(result)
    if saturated:
        busy = ", ".join(f"worker {index} at {cpu * 100:.0f}%" for index, cpu in saturated)
        lines.append(f"  WARNING: the load generator was the bottleneck ({busy} of a core, median of the "
                     f"steady seconds): add workers (-w) or machines before trusting these numbers as the target's")
    watched = [p["watched"] for p in result.get("timeseries", []) if p.get("watched")]
    cpu = sorted(w["cpu_percent"] for w in watched if w.get("cpu_percent") is not None)
    if cpu:
        lines.append(f"  Watched process {watched[0]['pid']}: median CPU {cpu[len(cpu) // 2]:.0f}% of a core, "
                     f"RSS up to {max(w['rss_kb'] for w in watched) / 1024:.1f} MiB")
    lines += _flow_lines(result)
    lines += instance_lines(result)
    for failed in result.get("workers_failed", []):
        when = f" at {failed['at_s']:g}s" if isinstance(failed.get("at_s"), (int, float)) else ""
        lines.append(f"  WORKER {failed['index']} DIED{when}: {failed['cause']} "
                     "(its results up to its last report are included)")
    return "\n".join(lines)


def keepalive_off_note(open_model: bool) -> str:
    """What --disable-keepalive means for the latency shown.  The open model
    opens each request's connection as soon as the last one closed, ahead of
    its due time, so the connect and handshake are not in its latency."""
    if open_model:
        return ("keep-alive off: a new connection per request, opened ahead of its due time: "
                "latency excludes connect and handshake (see Connections)")
    return "keep-alive off: latency includes connect and handshake"
