"""The messages between the supervisor and a worker (pickled over a
multiprocessing pipe, one object per message).

    worker -> supervisor   Ready    every connection connected (or failed) once
    supervisor -> worker   Start    the common start instant and the deadline
    worker -> supervisor   Tick     second k's snapshot, sent at start + k s
    supervisor -> worker   Stop     interrupted (or aborted): finish now
    worker -> supervisor   Final    the last, partial interval, once stopped
    worker -> supervisor   Failed   the worker could not run (fd limit, tables the engine refused)

A snapshot (Engine.snapshot() plus what the worker adds) holds cumulative
counters and the latency histogram of the interval since the previous one,
so the supervisor's merge (surge.run.merge) is exact.  The worker adds
"usage" (CPU and memory), "worker" (its index) and "quarters" (the
sub-second reads since the last tick); a Final's also "queued_at_stop".
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ready:
    open_connections: int
    errors: dict                    # transport errors by kind while connecting


@dataclass(frozen=True)
class Start:
    start_ns: int                   # CLOCK_MONOTONIC: when every worker starts sending
    deadline_ns: int | None         # when to stop; None: when the -n quota is done


@dataclass(frozen=True)
class Tick:
    second: int                     # k: the snapshot covers (start + k-1 s, start + k s]
    snapshot: dict


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Final:
    end_ns: int                     # when the worker stopped sending
    snapshot: dict
    abandoned: int                  # requests in flight at the stop


@dataclass(frozen=True)
class Failed:
    reason: str
