"""The workload: the one immutable form of every run.

`surge run URL` and `surge run plan.yaml` both compile to a Workload
(surge.plan.build); from there on the supervisor, the workers and the engine's
tables (surge.run.flows.FlowTables) read only this, never "was it a URL?".
A URL run is one scenario of one step whose path, headers and body are
literal text (surge.plan.request.url_step).

`source` says where the workload came from; only presentation reads it (the
result's `config`, and whether the result lists `steps`/`scenarios`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from surge.plan.cookies import CookiePolicy
from surge.plan.load import LoadProfile
from surge.plan.options import DEFAULT_TIMEOUT_NS
from surge.plan.model import Target
from surge.plan.plan import DataSource, Objective, Scenario, ScenarioSet


@dataclass(frozen=True)
class UrlSource:
    """`surge run URL`: the request as the command line gave it, for the
    result's config (headers as given by -H, shown redacted)."""
    method: str
    headers: tuple[tuple[str, str], ...]
    body_bytes: int
    auth_user: str | None = field(default=None, repr=False)   # Basic auth's user (never the password)
    reports_steps = False           # the result has no steps/scenarios sections


@dataclass(frozen=True)
class PlanSource:
    """`surge run plan.yaml`: the plan's name and file."""
    name: str
    path: str
    reports_steps = True


@dataclass(frozen=True)
class TargetsSource:
    """`surge run --targets FILE` (surge.plan.targets): presentation only (the
    result's config, and that the result lists each target as a step).  Here
    with the other sources, so that describing a URL run does not load the
    targets-file reader."""
    path: str
    order: str
    count: int
    methods: str                # "GET", or "GET,POST" when the targets use several
    reports_steps = True


@dataclass(frozen=True)
class LoadModel:
    """How hard and for how long, for either model.

    Closed: `users` keep one iteration (a URL run: `pipeline` requests) in
    flight each, ramped by `profile` when it has stages.  Open: `profile`
    says how many iterations start per second; users are taken on demand up
    to `users`."""
    users: int                              # the most users at once over all workers (URL runs: connections)
    profile: LoadProfile | None = None      # stages (either model) or the open rate; None: constant closed
    duration_ns: int | None = None          # the run's length; None: until `requests` are done
    requests: int | None = None             # -n: exactly this many requests
    pipeline: int = 1                       # requests in flight per connection (one static step only)
    pipeline_timing: str = "batch"          # "batch" | "each": see Engine.set_pipeline_timing
    schedule_grid_ns: int | None = None     # open model: due instants rounded to this (None: auto)
    # --disable-keepalive: one request per connection (the engine closes after each
    # response and opens a new one; the steps carry `Connection: close`)
    keepalive: bool = True

    @property
    def model(self) -> str:
        return "open" if self.profile is not None and self.profile.model == "open" else "closed"

    @property
    def staged(self) -> bool:
        """A closed model whose users follow stages (the worker ramps them)."""
        return self.model == "closed" and self.profile is not None and bool(self.profile.stages)


@dataclass(frozen=True)
class Workload(ScenarioSet):
    """What a run sends, where, how hard and for how long."""
    source: UrlSource | PlanSource | TargetsSource
    target: Target                          # the base URL (the result's config "url")
    # repr=False: a URL run's step carries its Basic Authorization header literally
    scenarios: tuple[Scenario, ...] = field(repr=False)
    load: LoadModel
    timeout_ns: int = DEFAULT_TIMEOUT_NS
    workers: int = 1
    data: tuple[DataSource, ...] = ()
    objectives: tuple[Objective, ...] = ()
    cookies: CookiePolicy = CookiePolicy(enabled=False)     # plans: the plan's; a URL run keeps none (as wrk)
    # how an iteration picks its scenario: "weighted" (at random, by weight) or
    # "rotate" (each in turn: --targets --order round-robin)
    scenario_order: str = "weighted"
    # --bind: ((family, sockaddr bytes, address text), ...) connections spread over (surge.run.limits)
    source_addresses: tuple = ()
    # the values never shown (surge.plan.redact.Secrets; None: none known)
    secrets: object = field(default=None, repr=False, compare=False)

    @property
    def model(self) -> str:
        return self.load.model

    @property
    def step_names(self) -> list[tuple[str, str]]:
        """(scenario, step) for every step, in the engine's counter order."""
        return [(scenario.name, step.name) for scenario in self.scenarios for step in scenario.steps]


# ---- how many users a run may need -------------------------------------------------------
def default_max_connections(peak_rate: float) -> int:
    """Open-model URL runs: enough connections for 100 ms of latency at the peak rate (10..10000)."""
    return max(10, min(10_000, math.ceil(peak_rate * 0.1)))


def default_max_vus(scenarios: tuple[Scenario, ...], peak_rate: float) -> int:
    """Open-model plans: enough virtual users for the peak rate of iterations
    that each last their longest think time plus a second (10..10000), with
    half again as many in reserve."""
    def longest(step) -> float:
        think = step.think
        if think is None:
            return 0.0
        return (think.max_ns if think.max_ns is not None else 3 * think.mean_ns) / 1e9
    iteration_s = max(sum(longest(step) for step in scenario.steps) for scenario in scenarios) + 1.0
    return max(10, min(10_000, math.ceil(peak_rate * iteration_s * 1.5)))
