"""The run's journal: what was measured, one JSON line a second, flushed as the
run goes, so a run killed by anything (SIGKILL, OOM, power) loses at most
its last second; `surge report --recover JOURNAL --json OUT` makes a result
from it (`recover`).

Beside `--json FILE` as `FILE.journal` (no journal for `--json -`):

    {"surge_journal": 1, "header": {surge_version, result_format, started_at, run, config, machine, redacted}}
    {"t": 1, "point": {...}, "totals": {...}, "workers_failed": [...], "resources": {...},
     "samples": [...], "tls": {...}}
    {"t": 2, ...}

A line's `point` is the merged second exactly as the result's time series
holds it (its histograms encoded: hdr, hdr_uncorrected, hdr_connect, ...);
`totals` are the cumulative totals at the end of that second, `resources`
and (https) `tls` the result's sections so far, `samples` that second's
four quarter-second points (surge.run.samples); a plan's lines add `steps`
(each step's counters so far and that second's histograms, hdr and, open
model, hdr_intended; each scenario's iterations), from which `recover` makes
`steps`, `scenarios` and `step_timeseries` (each step's second: the
difference of two lines' counters, and the line's histograms).  The whole
run's latency is rebuilt by adding the points' histograms: the same exact
merge as the supervisor's.  So a recovered result has the keys a normal one
has (tests/run/test_recover_complete.py).  Every line is scrubbed of the run's secrets
(surge.plan.redact), as the result is.  The journal is removed once the
result file is written; it stays when that write failed or never came.
"""
from __future__ import annotations

import json
import os

from surge.plan import redact

JOURNAL_FORMAT = 1
SUFFIX = ".journal"
MAX_LINE_BYTES = 64 * 1024 * 1024      # a hostile journal's line costs bounded memory


class JournalError(ValueError):
    """A journal that cannot be recovered; the message is one line naming the file."""


def journal_path(json_path: str | None) -> str | None:
    """Where the journal of `--json json_path` goes (None for none or stdout)."""
    if not json_path or json_path == "-":
        return None
    return os.fspath(json_path) + SUFFIX


class Journal:
    """Appends one line per second; opened at the first second (the header needs the start)."""

    def __init__(self, path: str):
        self.path = path
        self.file = None
        self.failed: str | None = None      # why writing stopped (disk full): the run goes on

    def write(self, k: int, point: dict, record) -> None:
        """Second k: its merged point and the totals so far (record: surge.run.merge.RunRecord)."""
        if self.failed:
            return
        try:
            if self.file is None:
                self.file = open(self.path, "w", encoding="utf-8")
                self._line({"surge_journal": JOURNAL_FORMAT, "header": header(record)})
            line = {"t": k, "point": point, "totals": record.totals(), "workers_failed": record.workers_failed(),
                    "resources": record.resources(), **sections_so_far(record, k)}
            if record.shows_steps:
                line["steps"] = step_lines(record, k)
            self._line(line)
        except OSError as exc:
            self.failed = exc.strerror or str(exc)

    def _line(self, value: dict) -> None:
        self.file.write(json.dumps(redact.scrub_tree(value), separators=(",", ":")) + "\n")
        self.file.flush()                   # in the kernel now: a killed process loses nothing written

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def discard(self) -> None:
        """The result file is written: the journal is no longer needed."""
        self.close()
        try:
            os.remove(self.path)
        except OSError:
            pass


def step_lines(record, k: int) -> dict:
    """A plan's steps at second k: each step's counters so far, that second's
    histograms (hdr: from the write; hdr_intended: open model, from the
    intended instant) and each scenario's [started, completed, aborted]."""
    from surge.run.merge import live_step_histograms

    counters, iterations = record.step_counters()
    written, intended = live_step_histograms(record, k)
    for i, step in enumerate(counters):
        step["hdr"] = written[i].encode()
        if intended is not None:
            step["hdr_intended"] = intended[i].encode()
    return {"steps": counters, "iterations": iterations}


def sections_so_far(record, k: int) -> dict:
    """Second k's quarter-second samples, and (an https host) the tls section so far."""
    from surge.run import connection_costs
    from surge.run.samples import second_samples

    samples = second_samples(record, k)
    out = {"samples": samples} if samples else {}
    options = connection_costs.tls_options(record.workload)
    if options:                 # (no https host: no tls section to carry)
        # each worker's latest snapshot is enough: its counters are cumulative and it
        # keeps the first handshake's session once it has one; scanning every
        # snapshot (as the result's RunRecord.tls does) would cost more each second
        latest = [[snap] for snap in (w.latest() for w in record.workers) if snap]
        tls = connection_costs.tls_section(latest, options)
        if tls is not None:
            out["tls"] = tls
    return out


def header(record) -> dict:
    """What a recovered result takes from the run as it started."""
    from surge import __version__
    from surge.plan.describe import describe_config
    from surge.result.format import RESULT_FORMAT
    from surge.run.merge import machine_info

    return {"surge_version": __version__, "result_format": RESULT_FORMAT, "started_at": record.started_at,
            "run": record.run_section(), "config": describe_config(record.workload, record.addresses),
            "machine": machine_info(), "redacted": redact.enabled(),
            **({"scenarios": [{"name": n, "weight": w, "share": share} for n, w, share in record.scenario_weights()]}
               if record.shows_steps else {})}


def read_lines(path: str) -> tuple[dict, list[dict]]:
    """(header, second lines) of a journal; a last line cut short (the run was
    killed while writing it) is left out; anything else wrong is a JournalError."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise JournalError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JournalError(f"{path}: is a directory, expected a journal (FILE.journal beside --json FILE)") from None
    except OSError as exc:
        raise JournalError(f"{path}: cannot read: {exc.strerror or exc}") from None
    head, seconds = None, []
    with f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise JournalError(f"{path}:{number}: a line over {MAX_LINE_BYTES // 2**20} MiB: not a surge journal")
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                if not raw.endswith(b"\n") and number > 1:
                    break                   # the line being written when the run was killed
                raise JournalError(f"{path}:{number}: not a JSON line: not a surge journal "
                                   "(FILE.journal beside surge run --json FILE)") from None
            if not isinstance(line, dict):
                raise JournalError(f"{path}:{number}: expected a JSON object, got {type(line).__name__}")
            if number == 1:
                if line.get("surge_journal") != JOURNAL_FORMAT or not isinstance(line.get("header"), dict):
                    raise JournalError(f"{path}:1: not a surge journal header (expected surge_journal: "
                                       f"{JOURNAL_FORMAT} and a header)")
                head = line["header"]
            else:
                seconds.append(line)
    if head is None:
        raise JournalError(f"{path}: empty file: the run was stopped before its first second")
    return head, seconds


def recovered_flows(scenarios, seconds: list[dict]) -> dict:
    """A plan run's `steps` and `scenarios` (surge.run.merge.flow_rows): counters
    from the last line, each step's histograms added over every line."""
    from surge.core._histogram import Histogram
    from surge.run.merge import flow_rows

    if not scenarios or not seconds[-1].get("steps"):
        return {}
    last = seconds[-1]["steps"]
    steps = [{k: v for k, v in step.items() if not k.startswith("hdr")} for step in last["steps"]]
    open_model = any("hdr_intended" in step for step in last["steps"])
    written = [Histogram() for _ in steps]
    intended = [Histogram() for _ in steps] if open_model else None
    for line in seconds:
        for i, step in enumerate((line.get("steps") or {}).get("steps") or ()):
            written[i].add(Histogram.decode(step["hdr"]))
            if intended is not None:
                intended[i].add(Histogram.decode(step["hdr_intended"]))
    return flow_rows(steps, last["iterations"], written, intended,
                     [(s["name"], s["weight"], s["share"]) for s in scenarios])


def recovered_step_timeseries(seconds: list[dict], points: list[dict]) -> list[dict]:
    """A plan run's step_timeseries (surge.run.merge.step_timeseries) from the
    lines: each step's requests, errors and failed in a second are the
    difference of two lines' cumulative counters, its latency that line's
    histograms (open model: hdr from the intended instant, hdr_uncorrected
    from the write), at the t of the line's point; coarsened like the time series."""
    from surge.core._histogram import Histogram
    from surge.run.merge import _step_latency_fields

    lines = [(line["steps"]["steps"], point["t"]) for line, point in zip(seconds, points) if line.get("steps")]
    if not lines:
        return []
    series = [{"scenario": step["scenario"], "step": step["step"], "points": []} for step in lines[0][0]]
    before = [None] * len(series)
    for steps, t in lines:
        for i, (step, out) in enumerate(zip(steps, series)):
            errors, failed = sum(step["errors"].values()), step["failed"]["count"]
            was = before[i] or {"requests": 0, "errors": 0, "failed": 0}
            written = Histogram.decode(step["hdr"])
            intended = Histogram.decode(step["hdr_intended"]) if "hdr_intended" in step else None
            out["points"].append({"t": t, "requests": step["requests"] - was["requests"],
                                  "errors": errors - was["errors"], "failed": failed - was["failed"],
                                  **_step_latency_fields(intended if intended is not None else written),
                                  **(_step_latency_fields(written, "_uncorrected") if intended is not None else {})})
            before[i] = {"requests": step["requests"], "errors": errors, "failed": failed}
    for out in series:
        out["points"] = coarsened(out["points"])
    return series


def coarsened(points: list[dict]) -> list[dict]:
    """A long run's points as its result keeps them (surge.run.retention): the
    last FINE_S seconds one a second, older ones merged into BLOCK_S blocks
    (histograms added, counts summed: surge.report.resample.merge_points)."""
    import math

    from surge.report.resample import merge_points
    from surge.run.retention import BLOCK_S, FINE_S

    if len(points) <= FINE_S:
        return points
    old, recent = points[:-FINE_S], points[-FINE_S:]
    blocks: dict[int, list[dict]] = {}
    for point in old:
        blocks.setdefault(math.ceil(float(point["t"]) / BLOCK_S), []).append(point)
    out, previous_t = [], 0.0
    for _, group in sorted(blocks.items()):
        merged, _ = merge_points(group)
        if len(group) > 1:
            merged["interval_s"] = round(float(merged["t"]) - previous_t, 3)
        previous_t = float(merged["t"])
        out.append(merged)
    return out + recent


def recover(path: str) -> dict:
    """A result file's dict rebuilt from the journal at `path`, marked
    "recovered": true and "interrupted": true (the run did not end by itself,
    or its result file was never written).  Raises JournalError."""
    from surge.core._histogram import Histogram, HistogramDecodeError
    from surge.result.load import ResultFileError, check_result
    from surge.run.merge import latency_summary

    head, seconds = read_lines(path)
    head = dict(head)
    if not seconds:
        raise JournalError(f"{path}: no second was journaled: the run was stopped before its first second ended")
    histograms: dict[str, Histogram] = {}
    points = []
    try:
        for number, line in enumerate(seconds, start=2):
            point = line.get("point")
            if not isinstance(point, dict):
                raise JournalError(f"{path}:{number}: no point in this line")
            for key in ("hdr", "hdr_uncorrected", "hdr_connect", "hdr_tls_handshake"):
                if isinstance(point.get(key), str):
                    histograms.setdefault(key, Histogram()).add(Histogram.decode(point[key]))
            points.append(point)
    except HistogramDecodeError as exc:
        raise JournalError(f"{path}:{number}: a histogram that does not decode: {exc}") from None
    last = seconds[-1]
    try:
        flows = recovered_flows(head.pop("scenarios", None), seconds)
        if flows:
            flows["step_timeseries"] = recovered_step_timeseries(seconds, points)
    except (HistogramDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise JournalError(f"{path}: the steps' lines do not fit together ({type(exc).__name__}: {exc})") from None
    # the quarter-second samples of the last SAMPLE_S seconds, as a normal result keeps them
    from surge.run.retention import SAMPLE_S
    recent_s = float(last.get("t", 0)) - SAMPLE_S
    samples = [q for line in seconds if float(line.get("t", 0)) > recent_s for q in (line.get("samples") or ())]
    result = {**head, **flows, "recovered": True, "interrupted": True, "totals": last.get("totals"),
              "latency": latency_summary(histograms.get("hdr", Histogram())),
              **({"latency_uncorrected": latency_summary(histograms["hdr_uncorrected"])}
                 if "hdr_uncorrected" in histograms else {}),
              "connect": latency_summary(histograms.get("hdr_connect", Histogram())),
              **({"tls_handshake": latency_summary(histograms["hdr_tls_handshake"])}
                 if "hdr_tls_handshake" in histograms else {}),
              **({"tls": last["tls"]} if last.get("tls") else {}),
              "timeseries": coarsened(points), "workers_failed": last.get("workers_failed") or [],
              **({"resources": last["resources"]} if last.get("resources") else {}),
              **({"samples": samples} if samples else {})}
    try:
        return check_result(result, path)
    except ResultFileError as exc:
        raise JournalError(str(exc)) from None
