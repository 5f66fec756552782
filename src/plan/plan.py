"""A test plan: weighted scenarios of multi-step flows, data, checks and
objectives (immutable; built only by surge.plan.validate, which checks every
field first).

Units: durations in ns (`_ns`), except latencies compared with measurements
(`Expect.max_latency_us`, latency objectives' `value`), which are in µs as the
histograms are.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from surge.plan.cookies import CookiePolicy, StepCookies
from surge.plan.load import LoadProfile
from surge.plan.model import Target
from surge.plan.template import Template

LATENCY_METRICS = ("max", "min", "mean")      # plus any percentile pNN / pNN.N
RATE_METRICS = ("error_rate", "check_rate")
COUNT_METRICS = ("dropped", "requests")
THROUGHPUT_METRICS = ("throughput",)
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Think:
    """The pause after a step: constant ('1s'), uniform ('1s..3s') or exponential ('exp(2s)')."""
    kind: str             # "constant", "uniform" or "exponential"
    min_ns: int           # constant: the pause; uniform: the low end; exponential: 0
    max_ns: int | None    # constant: the pause; uniform: the high end; exponential: None (unbounded)
    mean_ns: int
    text: str             # as written


@dataclass(frozen=True)
class Expect:
    """Checks on a response; a failed check is counted per step, apart from transport errors."""
    status: tuple[int, ...] = ()          # allowed status codes, sorted; () = no status check
    status_text: str = ""                 # as written: "200", "2xx", "[200, 204]"
    body_contains: str | None = None      # literal text (no templates)
    body_matches: str | None = None       # a regular expression (Python `re` syntax, compiles)
    max_latency_us: int | None = None

    @property
    def checks_body(self) -> bool:
        return self.body_contains is not None or self.body_matches is not None

    @property
    def is_empty(self) -> bool:
        return not self.status and not self.checks_body and self.max_latency_us is None


@dataclass(frozen=True)
class Extract:
    """A value taken from a response into a variable for the later steps."""
    var: str
    kind: str                               # "json", "regex", "header" or "cookie" (the jar's value)
    expression: str                         # the JSON path, pattern, header or cookie name as written
    json_path: tuple[str | int, ...] = ()   # kind "json": parsed (surge.plan.jsonpath.find)
    group: int = 0                          # kind "regex": the group whose text is taken

    @property
    def reads_body(self) -> bool:
        return self.kind not in ("header", "cookie")


@dataclass(frozen=True)
class Step:
    """One request of a scenario, with its checks, extractions and think time."""
    name: str
    method: str                                   # upper case
    host: Target                                  # where it goes; host.path is always "/"
    path: Template                                # path + query, starts with "/"; slots URL-escaped
    headers: tuple[tuple[str, Template], ...] = ()  # as written, plus Content-Type for json bodies
    body: Template | None = None                  # from body: (raw slots) or json: (compact JSON, JSON-escaped slots)
    expect: Expect = Expect()
    extract: tuple[Extract, ...] = ()
    think: Think | None = None
    json: object = field(default=None, hash=False, repr=False)  # the json: value as written (None: no json:)
    request_text: str = ""                        # "POST /login" as written (env resolved)
    timeout_ns: int | None = None                 # this step's request timeout (None: the run's --timeout)
    cookies: StepCookies = StepCookies()          # off, or cookies it puts into the jar (surge.plan.cookies)
    follow_redirects: int = 0                     # hops followed at most (plans: 10 unless set; a URL run: --follow)

    @property
    def needs_body(self) -> bool:
        """Only steps that extract from or check the body pay for reading it."""
        return self.expect.checks_body or any(e.reads_body for e in self.extract)

    @property
    def templates(self) -> tuple[Template, ...]:
        """Every template the step renders: path, header values, body."""
        body = (self.body,) if self.body is not None else ()
        cookies = tuple(value for _, value in self.cookies.values)
        return (self.path,) + tuple(value for _, value in self.headers) + body + cookies

    @property
    def variables(self) -> tuple[str, ...]:
        """Every name its templates read (see Template.variables)."""
        return tuple(dict.fromkeys(v for t in self.templates for v in t.variables))


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: float           # > 0; the share of iterations is weight / sum of weights
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class DataSource:
    """A CSV or JSON-lines feeder, read and checked when the plan loads."""
    name: str
    path: str                                # absolute
    format: str                              # "csv" or "jsonl"
    order: str                               # "sequential", "random" or "unique" (each row once over all workers)
    on_exhausted: str                        # "stop" or "recycle"
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = field(repr=False, compare=False, hash=False)  # values in column order
    secret_columns: tuple[str, ...] = ()     # `secret: true` (all) or [COLUMN, ...]: values shown as *** (redact.py)

    @property
    def row_count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Objective:
    """A threshold checked at the end of the run (exit 3 when one fails)."""
    metric: str                              # "p95", "p99.9", "max", "min", "mean", "error_rate",
                                             # "check_rate", "throughput", "dropped", "requests"
    filters: tuple[tuple[str, str], ...]     # () for totals; ("scenario", X) and/or ("step", Y), in that order
    op: str                                  # "<", "<=", ">", ">=", "=="
    value: float                             # base units: see `unit`
    text: str                                # as written: "p99{step=login} < 500ms"
    abort_on_fail: bool = False              # stop the run as soon as it fails (after the grace)
    grace_ns: int = 0                        # abort_on_fail: not before this long into the run

    @property
    def unit(self) -> str:
        """'us' (latency), 'fraction' (rates), 'req/s' (throughput) or 'count'."""
        if self.metric in RATE_METRICS:
            return "fraction"
        if self.metric in THROUGHPUT_METRICS:
            return "req/s"
        if self.metric in COUNT_METRICS:
            return "count"
        return "us"

    @property
    def percentile(self) -> float | None:
        """95.0 for 'p95', 99.9 for 'p99.9'; None for other metrics."""
        return float(self.metric[1:]) if self.metric.startswith("p") else None

    @property
    def scenario(self) -> str | None:
        return dict(self.filters).get("scenario")

    @property
    def step(self) -> str | None:
        return dict(self.filters).get("step")

    def passes(self, measured: float) -> bool:
        """Whether a measured value (in the objective's base unit) meets it."""
        return OPERATORS[self.op](measured, self.value)


class ScenarioSet:
    """What a set of weighted scenarios and their data answer, shared by a Plan
    and the Workload it compiles to (both have `scenarios` and `data`)."""
    scenarios: tuple[Scenario, ...]
    data: tuple[DataSource, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for scenario in self.scenarios for step in scenario.steps)

    @property
    def hosts(self) -> tuple[Target, ...]:
        """Every host the steps talk to (one connection pool each), first use first."""
        return tuple(dict.fromkeys(step.host for step in self.steps))

    @property
    def shares(self) -> dict[str, float]:
        """Each scenario's share of the iterations (weights normalised to 1)."""
        total = sum(s.weight for s in self.scenarios)
        return {s.name: s.weight / total for s in self.scenarios}

    def scenario(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(name)

    def data_source(self, name: str) -> DataSource:
        for source in self.data:
            if source.name == name:
                return source
        raise KeyError(name)


@dataclass(frozen=True)
class Plan(ScenarioSet):
    """What `surge run plan.yaml` runs."""
    name: str
    target: Target                           # the base URL; relative step paths go here
    load: LoadProfile                        # open: iterations started per second; closed: virtual users
    scenarios: tuple[Scenario, ...]
    data: tuple[DataSource, ...] = ()
    objectives: tuple[Objective, ...] = ()
    max_vus: int | None = None               # open model: the most iterations in flight (None: engine's choice)
    cookies: CookiePolicy = CookiePolicy()   # each VU's jar (on by default, reset each iteration)
    source: str = field(default="", compare=False)   # the plan file as given
    secrets: object = field(default=None, repr=False, compare=False)   # surge.plan.redact.Secrets of this plan

    @property
    def model(self) -> str:
        return self.load.model
