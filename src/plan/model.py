"""The run plan: what to send, where, how hard and for how long (immutable)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from surge.plan.errors import PlanError
from surge.plan.load import LoadProfile
from surge.plan.redact import MASK, redact_header


def host_port(host: str, port: int) -> str:
    """'127.0.0.1:8080', '[::1]:8080': how an address is printed everywhere."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Target:
    """Where requests go: the parsed URL."""
    scheme: str          # "http"
    host: str            # as written in the URL (name or address)
    port: int
    path: str            # path plus query, always starting with "/"
    # Credentials from the URL's userinfo (percent-decoded), sent as Basic auth; never shown.
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        """The Host header value: host[:port], port omitted when default; a
        non-ASCII name in its IDNA (punycode) form, as it goes on the wire."""
        host = self.host if self.host.isascii() else self.host.encode("idna").decode("ascii")
        host = f"[{host}]" if ":" in host else host
        return host if self.port == 80 else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"


@dataclass(frozen=True)
class RunPlan:
    """A run of one request (what `surge run URL` builds).

    Closed model: `connections` keep requests in flight (ramped by a closed
    `profile` when it has stages).  Open model: an open `profile` says how many
    requests/s are due over time; connections open on demand up to
    `max_connections`."""
    target: Target
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    connections: int = 50
    workers: int = 1
    duration_ns: int | None = 10_000_000_000      # None when `requests` bounds the run
    requests: int | None = None                   # -n: exact number of requests
    timeout_ns: int = 5_000_000_000
    pipeline: int = 1                              # requests in flight per connection
    pipeline_timing: str = "batch"                 # "batch" | "each": see Engine.set_pipeline_timing
    profile: LoadProfile | None = None             # stages (either model) or a rate (open)
    max_connections: int | None = None             # open model: the most connections opened
    test_plan: object = None                       # surge.plan.plan.Plan: run its flows instead
    schedule_grid_ns: int | None = None            # open model: due instants rounded to this (None: auto)
    auth: tuple[str, str] | None = field(default=None, repr=False)   # --auth USER:PASSWORD (Basic)
    # Filled by the supervisor once it has chosen addresses: shown in the result's config.
    addresses: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        # One source of Authorization only: two would mean one is dropped silently.
        from_url = self.target.username is not None
        if self.auth is not None and from_url:
            raise PlanError("--auth and credentials in the URL (user:password@) both set Basic auth: give one")
        if (self.auth is not None or from_url) and any(n.lower() == "authorization" for n, _ in self.headers):
            source = "--auth" if self.auth is not None else "credentials in the URL"
            raise PlanError(f"-H Authorization and {source} both set the Authorization header: give one")

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for Basic auth, from --auth or the URL; None without."""
        if self.auth is not None:
            return self.auth
        if self.target.username is not None:
            return self.target.username, self.target.password or ""
        return None

    @property
    def model(self) -> str:
        return "open" if self.profile is not None and self.profile.model == "open" else "closed"

    @property
    def connection_capacity(self) -> int:
        """The most connections (with a test plan: virtual users) at once, over all workers."""
        if self.test_plan is not None and self.model == "open":
            return self.test_plan.max_vus or default_max_vus(self.test_plan, self.profile.peak)
        if self.model == "open":
            return self.max_connections or default_max_connections(self.profile.peak)
        if self.profile is not None and (self.profile.stages or self.test_plan is not None):
            return max(1, math.ceil(self.profile.peak))
        if self.requests is not None:       # -n: a connection per request at most
            return max(1, min(self.connections, self.requests))
        return self.connections

    @property
    def run_duration_ns(self) -> int | None:
        """How long the run lasts (None: until -n requests are done)."""
        if self.profile is not None and self.profile.duration_ns:
            return self.profile.duration_ns
        return self.duration_ns

    def describe(self) -> dict:
        """The plan as it appears in the result file's "config"."""
        described = self._describe_run()
        if self.test_plan is not None:     # the request comes from the plan's steps
            for key in ("method", "headers", "body_bytes", "pipeline", "requests"):
                described.pop(key, None)
        return described

    def _describe_run(self) -> dict:
        return {
            "url": self.target.url,
            "method": self.method,
            "headers": [f"{k}: {redact_header(k, v)}" for k, v in self.headers],
            **({"auth": f"{self.credentials[0]}:{MASK}"} if self.credentials is not None else {}),
            **self.addresses,
            "body_bytes": len(self.body),
            "connections": self.connection_capacity,
            "workers": self.workers,
            "duration_s": self.run_duration_ns / 1e9 if self.run_duration_ns else None,
            "requests": self.requests,
            "timeout_s": self.timeout_ns / 1e9,
            "pipeline": self.pipeline,
            **({"pipeline_timing": self.pipeline_timing} if self.pipeline > 1 else {}),
            "model": self.model,
            **self._describe_profile(),
            **({"plan": self.test_plan.name, "plan_file": self.test_plan.source,
                "scenarios": {s.name: s.weight for s in self.test_plan.scenarios}}
               if self.test_plan is not None else {}),
        }

    def _describe_profile(self) -> dict:
        if self.profile is None:
            return {}
        described = {"stages": self.profile.describe(), "start": self.profile.start}
        if self.model == "open":
            described["rate"] = self.profile.start if not self.profile.stages else None
            described["max_connections"] = self.connection_capacity
            described["schedule_grid_s"] = self.schedule_grid_ns / 1e9 if self.schedule_grid_ns else "auto"
            described["peak_rate"] = self.profile.peak
        return described


def default_max_connections(peak_rate: float) -> int:
    """Open model: enough connections for 100 ms of latency at the peak rate (10..10000)."""
    return max(10, min(10_000, math.ceil(peak_rate * 0.1)))


def default_max_vus(test_plan, peak_rate: float) -> int:
    """Open-model plans: enough virtual users for the peak rate of iterations
    that each last their longest think time plus a second (10..10000), with
    half again as many in reserve."""
    def longest(step) -> float:
        think = step.think
        if think is None:
            return 0.0
        return (think.max_ns if think.max_ns is not None else 3 * think.mean_ns) / 1e9
    iteration_s = max(sum(longest(step) for step in scenario.steps) for scenario in test_plan.scenarios) + 1.0
    return max(10, min(10_000, math.ceil(peak_rate * iteration_s * 1.5)))
