"""When this instance starts, and which run it is part of.

A run starts once its workers are connected (Ready).  Then the supervisor asks
its StartSync for the start instant:

- `ImmediateStart`: a moment from now (one instance, the usual case);
- `StartAtInstant`: `--start-at TIME`, a wall-clock instant every instance of
  the run was given (a CI matrix, ssh, a launcher that knows the time);
- `surge.run.barrier.BarrierStart`: `--barrier HOST:PORT`, segment 0 announces
  an instant once every segment is ready.

Each returns a `StartDecision`: the instant on this machine's CLOCK_MONOTONIC
(what the workers and the engine time by), the same instant in wall-clock
Unix ns (what the instances share), and the run id.

The run id (result `run.id`) names the run the parts belong to; `surge merge`
refuses parts with different ids.  It is `--run-id`/`SURGE_RUN_ID` when given,
else derived from the start instant and the plan's fingerprint
(`derive_run_id`): every instance given the same --start-at and the same plan
derives the same id without talking to the others, and through a barrier
segment 0 derives it and announces it with the instant.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from surge.run.segment import WHOLE, Segment

# An immediate start: time for every worker to get its Start message (a pipe
# message and a wake-up: well under 1 ms each, even for 16 workers on a busy
# machine).  A worker that gets it later starts at once (a timed run: that
# much shorter).  It is wall time every run waits, so no more than needed.
START_DELAY_NS = 5_000_000
LATE_ALLOWED_NS = 1_000_000_000     # --start-at already past by more than this: exit 1
MAX_WAIT_S = 7 * 24 * 3600          # --start-at further ahead than a week is surely a typo
LATEST_UNIX_S = 253_402_300_799     # 9999-12-31T23:59:59Z: past it no clock or message can show the instant
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_UNIX_SECONDS = re.compile(r"^\d+(\.\d+)?$")


class StartError(RuntimeError):
    """The run cannot start as asked (exit 1): a --start-at already past, a barrier that timed out."""


class LaunchOptionError(ValueError):
    """A --start-at / --run-id / --barrier value that does not parse (exit 2); says what is allowed."""


@dataclass(frozen=True)
class StartDecision:
    start_ns: int               # CLOCK_MONOTONIC of this machine
    start_unix_ns: int          # the same instant, wall clock (shared by the instances of a run)
    run_id: str


@dataclass(frozen=True)
class Launch:
    """How this instance takes part in a run (the command line's --segment,
    --start-at, --barrier, --barrier-timeout, --run-id)."""
    segment: Segment = WHOLE
    start_at_unix_ns: int | None = None
    barrier: tuple[str, int] | None = None          # (host, port)
    barrier_timeout_s: float = 300.0
    run_id: str | None = None
    say: object = field(default=None, compare=False, repr=False)    # say(text): a note on stderr, or None

    def sync(self, fingerprint: str):
        """The StartSync this launch asks for."""
        if self.barrier is not None:
            from surge.run.barrier import BarrierStart
            return BarrierStart(self.barrier, self.segment, fingerprint, self.run_id, self.barrier_timeout_s,
                                self.say)
        if self.start_at_unix_ns is not None:
            return StartAtInstant(self.start_at_unix_ns, fingerprint, self.run_id, self.say)
        return ImmediateStart(fingerprint, self.run_id)


# ---- parsing ------------------------------------------------------------------------------
def parse_start_at(text: str) -> int:
    """--start-at: RFC 3339 ('2026-12-02T14:30:00Z', fractions and offsets allowed)
    or Unix seconds ('1796221800', '1796221800.5') -> Unix ns."""
    value = str(text).strip()
    if _UNIX_SECONDS.match(value):
        whole, _, fraction = value.partition(".")
        if len(whole) > 12 or int(whole) > LATEST_UNIX_S:     # (before int() of a huge text, and time_t)
            raise LaunchOptionError(f"got {text!r}: Unix seconds must be at most {LATEST_UNIX_S} "
                                    f"(9999-12-31T23:59:59Z)")
        return int(whole) * 1_000_000_000 + int((fraction + "000000000")[:9])
    try:
        instant = _dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise LaunchOptionError(f"got {text!r}, expected an RFC 3339 time like 2026-12-02T14:30:00Z "
                                f"or Unix seconds like 1796221800") from None
    if "T" not in value.upper() and " " not in value:
        raise LaunchOptionError(f"got {text!r}: a date alone is not an instant; give a time, e.g. "
                                f"{value}T14:30:00Z")
    if instant.tzinfo is None:
        raise LaunchOptionError(f"got {text!r}: give its time zone (Z or +01:00, as RFC 3339 requires), "
                                f"or Unix seconds")
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    delta = instant - epoch
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def parse_run_id(text: str) -> str:
    """--run-id / SURGE_RUN_ID: letters, digits, '.', '_' and '-', at most 63 (a Kubernetes label value)."""
    value = str(text).strip()
    if not _RUN_ID.match(value):
        raise LaunchOptionError(f"got {text!r}, allowed: 1 to 63 letters, digits, '.', '_' or '-', "
                                f"starting with a letter or digit")
    return value


def parse_barrier(text: str) -> tuple[str, int]:
    """--barrier HOST:PORT ('[::1]:7000' for an IPv6 literal) -> (host, port)."""
    value = str(text).strip()
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise LaunchOptionError(f"got {text!r}, expected HOST:PORT with a port 1-65535, "
                                f"e.g. surge-0.surge:7000 or 127.0.0.1:7000")
    return host, int(port_text)


def format_instant(unix_ns: int) -> str:
    """An instant as RFC 3339 UTC with milliseconds, for messages."""
    when = _dt.datetime.fromtimestamp(unix_ns / 1e9, _dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- clocks -------------------------------------------------------------------------------
def wall_minus_monotonic_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now: the tightest of a few sandwiched reads."""
    best = None
    for _ in range(5):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
    return best[1]


# ---- identity ----------------------------------------------------------------------------
def plan_fingerprint(workload) -> str:
    """What every part of one run must share: the load and request as the
    result's config describes them (without the per-instance worker count and
    addresses), the plan file's bytes and the data rows.  16 hex digits."""
    from surge.plan.describe import describe_config
    from surge.plan.workload import PlanSource

    # workers and --bind (this machine's own source addresses) may differ between the parts of one run
    config = {k: v for k, v in describe_config(workload).items() if k not in ("workers", "plan_file", "bind")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    if isinstance(workload.source, PlanSource) and workload.source.path:
        try:
            with open(workload.source.path, "rb") as plan_file:
                digest.update(plan_file.read())
        except OSError:
            pass                # read once already by the plan loader; a file gone since changes nothing sent
    for source in workload.data:
        digest.update(f"{source.name}:{source.order}:{source.on_exhausted}:{source.columns}".encode())
        digest.update(json.dumps(source.rows).encode())
    return digest.hexdigest()[:16]


def derive_run_id(start_unix_ns: int, fingerprint: str) -> str:
    """'20261202T143000Z-1a2b3c4d': the start instant (UTC, to the second) and a
    hash of the exact instant and the plan's fingerprint."""
    when = _dt.datetime.fromtimestamp(start_unix_ns // 1_000_000_000, _dt.timezone.utc)
    tail = hashlib.sha256(f"{fingerprint}:{start_unix_ns}".encode()).hexdigest()[:8]
    return f"{when:%Y%m%dT%H%M%SZ}-{tail}"


# ---- start syncs ---------------------------------------------------------------------------
class ImmediateStart:
    """Start a moment after the workers are ready (START_DELAY_NS)."""

    def __init__(self, fingerprint: str, run_id: str | None = None):
        self.fingerprint = fingerprint
        self.run_id = run_id
        self.decision: StartDecision | None = None

    def open(self) -> None:
        """Called before the workers fork (a barrier listens or connects here)."""

    def check_early(self) -> None:
        """Called before anything is connected: fail fast where it can already tell."""

    def ready(self) -> None:
        start_ns = time.monotonic_ns() + START_DELAY_NS
        start_unix_ns = start_ns + wall_minus_monotonic_ns()
        self.decision = StartDecision(start_ns, start_unix_ns,
                                      self.run_id or derive_run_id(start_unix_ns, self.fingerprint))

    def poll(self) -> StartDecision | None:
        """The decision once made; None while waiting; StartError when it cannot be made."""
        return self.decision

    def close(self) -> None:
        """Release what open() took (sockets, threads)."""


class StartAtInstant(ImmediateStart):
    """--start-at: start on that wall-clock instant; up to a second late starts
    at once (and says so in the result's started_at_unix_ns), later is an error."""

    def __init__(self, start_at_unix_ns: int, fingerprint: str, run_id: str | None = None, say=None):
        super().__init__(fingerprint, run_id)
        self.start_at_unix_ns = start_at_unix_ns
        self.say = say

    def _late_ns(self) -> int:
        return time.time_ns() - self.start_at_unix_ns

    def _refuse_if_late(self, when: str) -> None:
        late_ns = self._late_ns()
        if late_ns > LATE_ALLOWED_NS:
            raise StartError(f"--start-at {format_instant(self.start_at_unix_ns)} was {late_ns / 1e9:.1f} s "
                             f"ago {when} (at most 1 s late is allowed): give a later time")

    def check_early(self) -> None:
        self._refuse_if_late("when surge started")
        ahead_s = -self._late_ns() / 1e9
        if ahead_s > MAX_WAIT_S:
            raise StartError(f"--start-at {format_instant(self.start_at_unix_ns)} is {ahead_s / 86400:.0f} days "
                             f"ahead (at most 7 days): check the time")
        if self.say and ahead_s > 1:
            self.say(f"surge run: starting at {format_instant(self.start_at_unix_ns)} (in {ahead_s:.1f} s)")

    def ready(self) -> None:
        self._refuse_if_late("when the connections were ready")
        offset_ns = wall_minus_monotonic_ns()
        start_ns = self.start_at_unix_ns - offset_ns
        start_unix_ns = self.start_at_unix_ns
        earliest_ns = time.monotonic_ns() + START_DELAY_NS
        if start_ns < earliest_ns:              # late, within the second allowed: go now
            start_ns, start_unix_ns = earliest_ns, earliest_ns + offset_ns
        # the id comes from the instant asked for, so a late instance still shares it
        self.decision = StartDecision(start_ns, start_unix_ns,
                                      self.run_id or derive_run_id(self.start_at_unix_ns, self.fingerprint))
