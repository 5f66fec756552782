"""The options of `surge run`, as parsed, and the load profile they describe.

Checks collect every problem (k6-executor style) instead of stopping at the
first: each is one sentence naming the flags, and the command prints them
all (exit 2).  Where one problem is found its text is what surge always said.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from surge.plan.load import LoadError, LoadProfile, parse_shape, parse_stages
from surge.plan.tls import FLAG_NAMES, TlsOptions

DEFAULT_DURATION_NS = 10_000_000_000
DEFAULT_TIMEOUT_NS = 5_000_000_000      # --timeout 5s: a request or connect older than this fails


@dataclass(frozen=True)
class RunOptions:
    """`surge run`'s flags after click parsed their units (None: not given).

    `explicit` maps each option given on the command line to its spelling
    ("-c/--connections"): some rules depend on whether a default was typed."""
    connections: int = 50
    duration_ns: int | None = None
    requests: int | None = None
    workers: int | None = None
    method: str = "GET"
    headers: tuple[str, ...] = ()            # 'Name: value' as typed
    body: str | None = None                  # TEXT or @FILE
    auth: str | None = field(default=None, repr=False)    # USER:PASSWORD
    follow: int | None = None                # --follow N: redirects followed (None: 0 for a URL, the plan's)
    timeout_ns: int = DEFAULT_TIMEOUT_NS
    pipeline: int = 1
    pipeline_timing: str = "batch"
    rate: float | None = None
    max_connections: int | None = None
    stages: str | None = None
    shape: str | None = None
    schedule_grid_ns: int | None = None
    # TLS (https hosts only); names as TlsOptions has them, but --tls-resume is `tls_resume`
    insecure: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    sni: str | None = None
    tls_min: str | None = None
    tls_max: str | None = None
    ciphers: str | None = None
    tls13_ciphers: str | None = None
    groups: str | None = None
    keylog: str | None = None               # --keylog, or SSLKEYLOGFILE (then not in `explicit`)
    tls_resume: bool = True
    ktls: bool = False
    disable_keepalive: bool = False
    bind: str | None = None                 # --bind ADDR[,ADDR...]: source addresses (surge.run.limits)
    targets: str | None = None              # --targets FILE (surge.plan.targets)
    order: str | None = None                # --order round-robin|random (with --targets)
    explicit: dict[str, str] = field(default_factory=dict, compare=False)

    def given(self, name: str) -> bool:
        return name in self.explicit

    @property
    def tls(self) -> TlsOptions:
        """The TLS flags as TlsOptions (the defaults where none were given)."""
        return TlsOptions(insecure=self.insecure, cacert=self.cacert, cert=self.cert, key=self.key, sni=self.sni,
                          tls_min=self.tls_min, tls_max=self.tls_max, ciphers=self.ciphers,
                          tls13_ciphers=self.tls13_ciphers, groups=self.groups, keylog=self.keylog,
                          resume=self.tls_resume, ktls=self.ktls)

    @property
    def tls_flags_given(self) -> list[str]:
        """The TLS flags typed on the command line, as spelled there."""
        return [self.explicit[name] for name in (*TLS_OPTION_FIELDS, "tls_resume") if name in self.explicit]

    def tls_given(self) -> dict:
        """The TLS fields the command line set (for a plan: over its top-level tls:)."""
        values = {name: getattr(self, name) for name in TLS_OPTION_FIELDS if self.given(name)}
        if self.given("tls_resume"):
            values["resume"] = self.tls_resume
        if self.keylog is not None:         # SSLKEYLOGFILE counts as given, without being "typed"
            values["keylog"] = self.keylog
        return values


# RunOptions fields that are TlsOptions fields of the same name.
TLS_OPTION_FIELDS = tuple(name for name in FLAG_NAMES if name != "resume")


def exclusions(o: RunOptions) -> list[str]:
    """Options that cannot go together, and ones that need another."""
    problems = []
    if o.duration_ns is not None and o.requests is not None:
        problems.append("-d/--duration and -n/--requests exclude each other: give one")
    if o.stages and o.shape:
        problems.append("--stages and --shape exclude each other: give one")
    staged = "--stages" if o.stages else "--shape" if o.shape else None
    if staged and o.duration_ns is not None:
        problems.append(f"{staged} sets the run's length: drop -d/--duration")
    if staged and o.requests is not None:
        problems.append(f"{staged} and -n/--requests exclude each other")
    if o.rate is not None:
        if o.requests is not None:
            problems.append("--rate and -n/--requests exclude each other: an open-model run is bounded "
                            "by time (-d or --stages)")
        if o.rate == 0 and not staged:
            problems.append("Invalid value for '--rate': got 0, must be > 0 (0 is allowed only as the "
                            "start of --stages)")
        if o.pipeline > 1:
            problems.append("--pipeline applies to the closed model only; with --rate each connection "
                            "carries one request at a time")
        if o.given("connections"):
            problems.append("-c/--connections applies to the closed model; with --rate use --max-connections")
    elif o.max_connections is not None:
        problems.append("--max-connections applies to the open model: add --rate")
    if o.schedule_grid_ns is not None and o.rate is None:
        problems.append("--schedule-grid applies to the open model: add --rate")
    if o.follow:            # following runs through the flow machinery (src/core/redirect.pxi)
        if o.requests is not None:
            problems.append("--follow and -n/--requests exclude each other: a run that follows redirects "
                            "is bounded by time (-d)")
        if o.pipeline > 1:
            problems.append("--follow and --pipeline exclude each other: a request that may be redirected "
                            "waits for its answer")
    return problems


def load_profile(o: RunOptions) -> tuple[LoadProfile | None, list[str]]:
    """(the load profile the flags describe, every problem with them).

    None is a plain closed run (constant connections).  Without problems the
    profile is the one to run; with some it is None or a best effort."""
    problems = exclusions(o)
    staged = bool(o.stages or o.shape)
    # A ramp (--stages, --shape ramp) starts from --rate, or in the closed model from an explicit -c.
    ramp_start = o.rate if o.rate is not None else (o.connections if o.given("connections") else 0)
    try:
        if o.shape:
            start, stage_list = parse_shape(o.shape, ramp_start)
            given = o.rate if o.rate is not None else (o.connections if o.given("connections") else None)
            if given not in (None, 0, start):       # spike/step name their own start
                fix = f"give --rate 0 or --rate {start:g}" if o.rate is not None else f"drop -c or give -c {start:g}"
                raise LoadError(f"--shape {o.shape.partition(':')[0]} starts at {start:g} (its own first value), "
                                f"not at {given:g}: {fix}")
        elif o.stages:
            stage_list, start = parse_stages(o.stages), ramp_start
        else:
            stage_list, start = (), o.rate
    except LoadError as exc:
        return None, problems + [str(exc)]
    model = "open" if o.rate is not None else "closed"
    if model == "closed" and not staged:
        return None, problems
    # (without stages a rate of 0 is already one of the exclusions)
    if model == "open" and staged and max(start, *(s.target for s in stage_list), 0) <= 0:
        return None, problems + ["--stages: every target is 0: nothing would be sent"]
    constant_ns = None if staged else (o.duration_ns or DEFAULT_DURATION_NS)
    return LoadProfile(model, float(start), stage_list, constant_ns), problems
