"""The result file's schema: the keys and types every report reads, checked
once on load so a report never meets "many" where it expects a count.

A small declarative checker (no dependency): each spec checks one value and
raises SchemaProblem naming the JSON path, what was expected and what was
found.  Objects allow keys the schema does not know (a newer surge may add
optional ones within a result format); a known key is typed whenever present.
Add a key the reports read here, next to the code that writes it
(surge.run.merge, surge.plan.describe.describe_config).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaProblem(ValueError):
    """One thing wrong, at `path` (e.g. "totals.requests")."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def _shown(value) -> str:
    """How a found value is quoted in a message: JSON for scalars, a kind for the rest."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + '..."'


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


class Spec:
    """Checks a value; `what` says what is allowed ("an integer")."""
    what = "a value"

    def check(self, value, path: str) -> None:
        raise NotImplementedError

    def fail(self, value, path: str):
        raise SchemaProblem(path, f"expected {self.what}, got {_shown(value)}")


class Count(Spec):
    """A whole number >= `minimum` (JSON booleans are not numbers here)."""
    what = "an integer"

    def __init__(self, minimum: int = 0):
        self.minimum = minimum

    def check(self, value, path):
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(value, path)
        if value < self.minimum:
            raise SchemaProblem(path, f"must be >= {self.minimum}, got {value}")


class Number(Spec):
    """A finite number >= 0 (every number surge writes is a count, a rate, a duration or a latency)."""
    what = "a number"

    def check(self, value, path):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.fail(value, path)
        if not math.isfinite(value):
            raise SchemaProblem(path, f"must be a finite number, got {_shown(value)}")
        if value < 0:
            raise SchemaProblem(path, f"must be >= 0, got {value:g}")


class Text(Spec):
    what = "a string"

    def check(self, value, path):
        if not isinstance(value, str):
            self.fail(value, path)


class Flag(Spec):
    what = "true or false"

    def check(self, value, path):
        if not isinstance(value, bool):
            self.fail(value, path)


class Choice(Spec):
    def __init__(self, *allowed):
        self.allowed = allowed
        self.what = " or ".join(json.dumps(a) for a in allowed)

    def check(self, value, path):
        if value not in self.allowed or isinstance(value, bool):
            self.fail(value, path)


class Histogram(Spec):
    """A histogram in HdrHistogram's V2 compressed base64 text, which must decode."""
    what = "an HdrHistogram (V2 compressed, base64)"

    def check(self, value, path):
        from surge.core._histogram import Histogram as Hist, HistogramDecodeError
        if not isinstance(value, str):
            self.fail(value, path)
        try:
            Hist.decode(value)
        except (HistogramDecodeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
            why = f" ({exc})" if isinstance(exc, HistogramDecodeError) else ""
            raise SchemaProblem(path, f"expected {self.what}, got a string that does not decode{why}") from None


class AnyOf(Spec):
    """The first spec whose type matches decides (so its own message is shown)."""

    def __init__(self, *specs: Spec):
        self.specs = specs
        self.what = " or ".join(s.what for s in specs)

    def check(self, value, path):
        for spec in self.specs:
            try:
                spec.check(value, path)
                return
            except SchemaProblem as problem:
                if problem.path != path or not problem.message.startswith("expected "):
                    raise               # the type matched, the value (or a part of it) did not: say why
        self.fail(value, path)


def Nullable(spec: Spec) -> Spec:
    return AnyOf(_Null(), spec)


class _Null(Spec):
    what = "null"

    def check(self, value, path):
        if value is not None:
            self.fail(value, path)


class ListOf(Spec):
    what = "an array"

    def __init__(self, item: Spec):
        self.item = item

    def check(self, value, path):
        if not isinstance(value, list):
            self.fail(value, path)
        for i, item in enumerate(value):
            self.item.check(item, _join(path, i))


class MapOf(Spec):
    """An object of any keys (matching `keys` when given), each value one spec."""
    what = "an object"

    def __init__(self, value: Spec, keys: str | None = None, needs: tuple[str, ...] = ()):
        self.value, self.needs = value, needs
        self.keys = re.compile(keys) if keys else None

    def check(self, value, path):
        if not isinstance(value, dict):
            self.fail(value, path)
        for key, item in value.items():
            if self.keys and not self.keys.match(key):
                raise SchemaProblem(_join(path, key), f"not an allowed key here (expected {self.keys.pattern})")
            self.value.check(item, _join(path, key))
        for key in self.needs:
            if key not in value:
                raise SchemaProblem(_join(path, key), "missing")


@dataclass(frozen=True)
class When:
    """When `key` is present (and, with `equals`, has that value; with `absent`,
    when it is missing), each of `needs` must be present and not null: what a
    report reads for that kind of run (an open model's peak rate)."""
    key: str
    needs: tuple[str, ...]
    equals: object = field(default=...)
    absent: bool = False

    def applies(self, obj: dict) -> bool:
        if self.absent:
            return self.key not in obj
        return self.key in obj and (self.equals is ... or obj[self.key] == self.equals)

    def reason(self, obj: dict) -> str:
        if self.absent:
            return f"without {self.key!r}"
        return f"with {self.key!r}" + ("" if self.equals is ... else f" {json.dumps(self.equals)}")


class Obj(Spec):
    """An object with required and optional keys (unknown keys allowed),
    `patterns` typing keys by a regex, and `rules` (When) tying keys together."""
    what = "an object"

    def __init__(self, required: dict | None = None, optional: dict | None = None,
                 patterns: dict | None = None, rules: tuple[When, ...] = ()):
        self.required, self.optional = required or {}, optional or {}
        self.patterns = [(re.compile(p), s) for p, s in (patterns or {}).items()]
        self.rules = rules

    def check(self, value, path):
        if not isinstance(value, dict):
            self.fail(value, path)
        for key in self.required:
            if key not in value:
                raise SchemaProblem(_join(path, key), "missing")
        for key, item in value.items():
            spec = self.required.get(key) or self.optional.get(key)
            if spec is None:
                spec = next((s for pattern, s in self.patterns if pattern.match(key)), None)
            if spec is not None:
                spec.check(item, _join(path, key))
        for rule in self.rules:
            if rule.applies(value):
                for key in rule.needs:
                    if value.get(key) is None:
                        raise SchemaProblem(_join(path, key), f"missing ({rule.reason(value)})")


# ---- the surge result file (format 1) ---------------------------------------------------------
COUNT, NUMBER, TEXT, FLAG, HDR = Count(), Number(), Text(), Flag(), Histogram()
COUNTS = MapOf(COUNT)                                   # {"200": 5}, {"timeout": 2}
PERCENTILE_KEY = r"^\d+(\.\d+)?$"
FAILED = Obj(required={"count": COUNT, "by_reason": COUNTS})

# A whole latency summary (surge.run.merge.latency_summary); in steps and
# scenarios only the percentiles are required (derived stage rows carry no more).
_LATENCY_FIELDS = {"unit": TEXT, "count": COUNT, "min": NUMBER, "mean": NUMBER, "stdev": NUMBER,
                   "max": NUMBER, "hdr": HDR}
PERCENTILES = MapOf(NUMBER, keys=PERCENTILE_KEY, needs=("50", "99"))
LATENCY = Obj(required={"percentiles": PERCENTILES,
                        **{k: _LATENCY_FIELDS[k] for k in ("count", "min", "mean", "stdev", "max")}},
              optional=_LATENCY_FIELDS)
PART_LATENCY = Obj(required={"percentiles": PERCENTILES}, optional=_LATENCY_FIELDS)

CONFIG = Obj(
    required={"url": TEXT, "workers": Count(1), "timeout_s": NUMBER, "model": Choice("closed", "open"),
              "connections": COUNT, "duration_s": Nullable(NUMBER)},
    optional={"method": TEXT, "headers": ListOf(TEXT), "body_bytes": COUNT, "requests": Nullable(Count(1)),
              "pipeline": Count(1), "pipeline_timing": Choice("batch", "each"),
              "stages": ListOf(Obj(required={"duration_s": NUMBER, "target": NUMBER})),
              "start": NUMBER, "rate": Nullable(NUMBER), "max_connections": COUNT,
              "schedule_grid_s": AnyOf(NUMBER, Choice("auto")), "peak_rate": NUMBER,
              "plan": TEXT, "plan_file": Nullable(TEXT), "scenarios": MapOf(NUMBER),
              # surge run --targets FILE
              "targets_file": TEXT, "order": Choice("round-robin", "random"), "targets": Count(1),
              # --disable-keepalive: written (false) only when keep-alive was off
              "keepalive": FLAG,
              "bind": ListOf(TEXT),         # --bind's source addresses
              # an https target's TLS options as asked (surge.plan.describe); what was negotiated is the top-level "tls"
              "tls": Obj(optional={"verify": FLAG, "server_name": TEXT, "resume": FLAG, "ktls": FLAG,
                                   "keylog": FLAG})},
    rules=(When("plan", ("method",), absent=True),             # a URL run names its request
           When("duration_s", ("requests",), equals=None),     # a run is bounded by time or a count
           When("model", ("max_connections", "peak_rate"), equals="open")),
)

TOTALS = Obj(
    required={"requests": COUNT, "duration_s": NUMBER, "rps": NUMBER, "bytes_in": COUNT, "bytes_out": COUNT,
              "responses_by_status": COUNTS, "errors": COUNTS},
    optional={"failed": FAILED, "error_rate": NUMBER, "in_flight_at_stop": COUNT, "due": COUNT,
              "dropped": COUNT, "queued_at_stop": COUNT, "active_connections": COUNT,
              "connections_opened": COUNT,
              # connects that failed for want of a source port / a descriptor (surge.run.limits)
              "connect_exhausted": Obj(optional={"ports": COUNT, "fds": COUNT})},
    rules=(When("due", ("dropped",)),),
)

WORKER_SAMPLE = Obj(optional={"index": COUNT, "cpu_percent": Nullable(NUMBER), "rss_kb": Nullable(COUNT)})
POINT = Obj(
    required={"t": NUMBER, "requests": COUNT},
    optional={"errors": COUNT, "failed": AnyOf(COUNT, FAILED),
              "statuses": COUNTS, "active_connections": COUNT, "workers": ListOf(WORKER_SAMPLE),
              "hdr": HDR, "hdr_uncorrected": HDR, "target": Nullable(NUMBER), "due": COUNT, "dropped": COUNT,
              # connections established in the interval, and (when any were) their
              # connect and TLS handshake times (µs), for the hlog's tagged intervals
              "connections_opened": COUNT, "hdr_connect": HDR, "hdr_tls_handshake": HDR,
              "watched": Obj(required={"pid": COUNT, "cpu_percent": Nullable(NUMBER), "rss_kb": COUNT})},
    # per-interval latency figures: p50, p99.9, max, p99_uncorrected ... (µs)
    patterns={r"^(p\d+(\.\d+)?|max|min)(_uncorrected)?$": NUMBER},
)

# A plan step (surge.run.merge.flow_results) or a stage row (name, start_s, end_s).
STEP = Obj(
    optional={"scenario": TEXT, "step": TEXT, "name": TEXT, "start_s": NUMBER, "end_s": NUMBER,
              "requests": COUNT, "rps": Nullable(NUMBER), "responses_by_status": COUNTS,
              "errors": AnyOf(COUNT, COUNTS), "failed": FAILED, "error_rate": NUMBER, "checks": COUNT,
              "check_failures": COUNT, "dropped": COUNT, "latency": PART_LATENCY,
              # open model: `latency` is corrected (from each step's intended instant), this from its write
              # (files before per-step correction lack it; their open-model step latency was from the write)
              "latency_uncorrected": PART_LATENCY},
    rules=(When("check_failures", ("scenario", "step", "requests", "responses_by_status", "errors", "latency")),),
)
SCENARIO = Obj(
    required={"name": TEXT},
    optional={"weight": NUMBER, "share": NUMBER, "iterations": COUNT, "completed": COUNT, "aborted": COUNT,
              "requests": COUNT, "errors": COUNT, "failed": FAILED, "error_rate": NUMBER, "checks": COUNT,
              "check_failures": COUNT, "latency": PART_LATENCY, "latency_uncorrected": PART_LATENCY},
    rules=(When("share", ("iterations", "aborted", "requests", "errors", "check_failures", "latency")),),
)
OBJECTIVE = Obj(required={"name": TEXT, "passed": FLAG, "value": Nullable(NUMBER), "unit": TEXT},
                optional={"abort_on_fail": FLAG})
# The TLS section (surge.run.connection_costs.tls_section), only in runs with an https host.
# protocol, cipher and group are those of the first completed handshake: null when none completed.
TLS = Obj(required={"verify": FLAG, "handshakes": Obj(required={"full": COUNT, "resumed": COUNT}),
                    "errors": COUNTS},
          optional={"protocol": Nullable(TEXT), "cipher": Nullable(TEXT), "group": Nullable(TEXT),
                    "ktls": FLAG, "ktls_send": FLAG, "ktls_recv": FLAG, "resume": FLAG})
USAGE = Obj(optional={"index": COUNT, "user_s": NUMBER, "sys_s": NUMBER, "max_rss_kb": COUNT,
                      "rss_kb": Nullable(COUNT)})

# Which run this result is part of (surge.run.merge.RunRecord.run_section; the
# contract `surge merge` reads, docs/ARCHITECTURE.md "Execution segments"):
# parts of one run share `id`; `segment` is {"index", "count"} or null for a
# whole run; `started_at_unix_ns` is the wall clock of this instance's start
# instant (null when it never started), from which every point's `t` counts;
# `plan_hash` fingerprints the plan and load options every part must share.
# A segment also carries this part's share: "connections" and "requests" (-n, or null).
SEGMENT = Obj(required={"index": COUNT, "count": Count(1)},
              optional={"connections": COUNT, "requests": Nullable(COUNT)})
RUN = Obj(required={"id": TEXT, "segment": Nullable(SEGMENT),
                    "started_at_unix_ns": Nullable(COUNT)},
          optional={"plan_hash": Nullable(TEXT)})

# `surge merge` (surge.result.combine): which segments were merged and a row per instance
# (its resources and machine stay there, per instance).
MERGE_PART = Obj(required={"segment": COUNT, "source": TEXT, "requests": COUNT, "rps": NUMBER,
                           "start_offset_ms": NUMBER},
                 optional={"duration_s": NUMBER, "p99_us": Nullable(NUMBER), "cpu_percent": Nullable(NUMBER),
                           "workers": Nullable(COUNT), "interrupted": FLAG, "machine": Obj(), "resources": Obj(),
                           "aborted_by": TEXT, "objectives_failed": ListOf(TEXT)})
MERGE = Obj(required={"segments": Count(1), "merged": ListOf(COUNT), "missing": ListOf(COUNT),
                      "parts": ListOf(MERGE_PART)},
            optional={"duplicates_left_out": ListOf(TEXT)})

RESULT = Obj(
    required={"surge_version": TEXT, "config": CONFIG, "totals": TOTALS, "latency": LATENCY,
              "timeseries": ListOf(POINT)},
    optional={"started_at": TEXT, "run": RUN, "machine": Obj(), "interrupted": FLAG,
              # false: `surge run --no-redact` (secrets are shown as they were sent)
              "redacted": FLAG,
              # rebuilt from a run's journal by `surge report --recover` (surge.run.journal)
              "recovered": FLAG,
              "aborted_by": TEXT, "latency_uncorrected": LATENCY,
              # per new connection (µs): TCP connect time, and the TLS handshake's with an https host
              "connect": LATENCY, "tls_handshake": LATENCY, "tls": TLS,
              # at_s: when the supervisor saw it go, last_report_s: the end of its last reported second
              "workers_failed": ListOf(Obj(required={"index": COUNT, "cause": TEXT},
                                           optional={"at_s": Nullable(NUMBER), "last_report_s": Nullable(COUNT)})),
              "resources": Obj(optional={"workers": ListOf(USAGE), "supervisor": USAGE}),
              "objectives": ListOf(OBJECTIVE), "merge": MERGE, "steps": ListOf(STEP), "scenarios": ListOf(SCENARIO),
              # `surge run --baseline`: the gate's last line, the baseline's file name, pass or not
              "gate": Obj(required={"verdict": TEXT}, optional={"baseline": TEXT, "passed": FLAG}),
              # quarter-second points (surge.run.merge.sub_second_samples): what compare tests on
              "samples": ListOf(POINT),
              # a plan step's own seconds (surge.run.merge.step_timeseries): requests, errors, failed,
              # p50, p99, hdr (open model: corrected, plus p50/p99/hdr_uncorrected); p50/p99 since
              # per-step correction (older files: only hdr, which reports read percentiles from)
              "step_timeseries": ListOf(Obj(required={"scenario": TEXT, "step": TEXT, "points": ListOf(POINT)}))},
)


def _has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False


def _first_non_finite(value, path: str = "") -> str | None:
    """The path of a NaN or Infinity anywhere (JSON has neither; Python's json
    reads and writes them), also under keys the schema does not type."""
    if not _has_non_finite(value):          # the common case, without building paths
        return None
    if isinstance(value, float):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        found = _first_non_finite(item, _join(path, key))
        if found is not None:
            return found
    return None


def check_schema(data: dict) -> None:
    """SchemaProblem for the first thing in `data` a report could not read."""
    RESULT.check(data, "")
    where = _first_non_finite(data)
    if where is not None:
        raise SchemaProblem(where, "must be a finite number (JSON has no NaN or Infinity)")
