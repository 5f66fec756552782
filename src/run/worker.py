"""One worker process: an Engine on its own uvloop loop.

It talks to the supervisor with the messages of surge.run.messages, over
its Channel: Ready once its connections are settled, a Tick each second
after the Start, a Final after the deadline, the -n quota or a Stop;
Failed when it cannot run.
"""
from __future__ import annotations

import asyncio
import math
import os
import resource
import signal
import time
from dataclasses import dataclass

from surge.plan.units import NS_PER_S
from surge.plan.workload import LoadModel, Workload
from surge.run.messages import Failed, Final, Ready, Start, Stop, Tick
from surge.run.resources import rss_kb
from surge.run.segment import WHOLE, Segment
# Sub-second samples for `surge compare` (4 a second): at each instant start + q/4 s
# between ticks the worker reads, without resetting, the latency histogram of the
# second so far, so the per-second snapshots stay exactly as they are and the
# supervisor's merge takes differences (surge.run.samples).
from surge.run.samples import SAMPLES_PER_S


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """What one worker runs (inherited by the forked process)."""
    index: int                  # this worker's number, 0..workers-1
    workers: int                # how many workers share the load
    workload: Workload
    hosts: tuple[tuple[int, bytes], ...]    # (family, sockaddr) per host, in workload.hosts order
    users: int                  # this worker's share of the users (a URL run: its connections)
    user_base: int = 0          # the global number of this worker's first user
    quota_requests: int = -1    # -n: this worker's share; -1: until the deadline
    seed: int = 1               # this worker's random stream (scenario choice, think times, data)
    segment: Segment = WHOLE    # --segment I/N: this instance's share of the whole run

    @property
    def load(self) -> LoadModel:
        return self.workload.load

    @property
    def stripe(self) -> tuple[int, int]:
        """(first, step): this worker's indices in the global open-model schedule
        and in unique data rows, over every segment's workers (surge.run.segment)."""
        return self.segment.stripe(self.index, self.workers)


def share(total: int, workers: int, index: int) -> int:
    """Worker `index`'s part of `total` split as evenly as integers allow."""
    return total // workers + (1 if index < total % workers else 0)


BATCH_REQUESTS = 32           # open model: aim for this many requests per timer wake-up
MAX_GRID_NS = 2_000_000       # ... but never batch coarser than 2 ms


def batch_grid_ns(peak_rate_per_worker: float) -> int:
    """The open model's batching grid: ~32 requests per wake-up at the peak
    rate, at most 2 ms.  Measured at ~19k/s against a 1-ms target, open-model
    CPU per request over closed-model: 1.17 with 16 per wake-up (1 ms), 1.09
    with 32 (2 ms), 1.03 with 64 (4 ms); a wake-up per request cost 1.3-1.9."""
    if peak_rate_per_worker <= 0:
        return MAX_GRID_NS
    return min(MAX_GRID_NS, int(BATCH_REQUESTS * 1e9 / peak_rate_per_worker))


def current_rss_kb() -> int:
    """This process's resident memory now (not the peak); 0 when unreadable."""
    try:
        return rss_kb()
    except (OSError, ValueError, IndexError):
        return 0


def usage() -> dict:
    """CPU seconds, current and peak memory of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"user_s": ru.ru_utime, "sys_s": ru.ru_stime, "max_rss_kb": ru.ru_maxrss, "rss_kb": current_rss_kb()}


def raise_fd_limit(needed: int) -> None:
    """Lift the soft descriptor limit towards the hard one; fail clearly if short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise OSError(f"{needed} file descriptors needed per worker, the hard limit is {hard} "
                      f"(raise it with `ulimit -n`, or use more workers)")


def watch_pipe(loop, pipe, on_readable) -> None:
    """Call on_readable when the supervisor's channel has a message, keeping it
    blocking.  uvloop (libuv's uv_poll_init) makes a watched fd non-blocking, and
    Channel.send() then raises BlockingIOError half-way through a snapshot larger
    than the socket buffer (many steps, sub-second samples) while the supervisor
    is busy: the stream is cut and the next recv() cannot unpickle it.  Blocking
    is safe here: reads happen only when the channel is readable, and a send
    waits at most for the supervisor's next read."""
    loop.add_reader(pipe.fileno(), on_readable)
    os.set_blocking(pipe.fileno(), True)


class Worker:
    def __init__(self, spec: WorkerSpec, pipe):
        self.spec = spec
        self.pipe = pipe
        self.loop = asyncio.get_running_loop()
        self.settled = self.loop.create_future()
        self.finished = self.loop.create_future()      # done, deadline, or stop
        self.messages: asyncio.Queue = asyncio.Queue()
        self.engine = None
        self.quarters: list[tuple[int, tuple]] = []     # (q, latency of the second so far), since the last tick
        # connect / tls_handshake times of the connections opened before the start (see run())
        self.startup_costs: dict[str, tuple] = {}

    def on_engine_event(self, name: str) -> None:
        if name == "settled" and not self.settled.done():
            self.settled.set_result(None)
        elif name == "done":
            self.finish("done")

    def finish(self, why: str) -> None:
        if not self.finished.done():
            self.finished.set_result(why)

    def on_pipe_readable(self) -> None:
        try:
            message = self.pipe.recv()
        except (EOFError, OSError):
            message = Stop()                           # parent gone: wind down
            self.loop.remove_reader(self.pipe.fileno())
        if isinstance(message, Stop):
            self.finish("stopped")
        self.messages.put_nowait(message)

    def call_at_ns(self, when_ns: int, callback, *args):
        return self.loop.call_later(max(0.0, (when_ns - time.monotonic_ns()) / NS_PER_S), callback, *args)

    def closed_target(self, t_s: float) -> int:
        """Closed-model stages: this worker's users at t_s (its part of its segment's part)."""
        spec = self.spec
        return share(spec.segment.share(round(spec.load.profile.value_at(t_s))), spec.workers, spec.index)

    def ramp(self, start_ns: int) -> None:
        if self.finished.done():
            return
        self.engine.set_active_connections(self.closed_target((time.monotonic_ns() - start_ns) / NS_PER_S))
        self.loop.call_later(0.1, self.ramp, start_ns)

    def sweep(self) -> None:
        self.engine.sweep()
        if not self.finished.done():
            self.loop.call_later(self.sweep_interval_s, self.sweep)

    def snapshot(self) -> dict:
        """The engine's snapshot plus this worker's usage, index and sub-second reads."""
        snap = self.engine.snapshot()
        if self.startup_costs:              # the first snapshot after the Ready one carries them
            for key, early in self.startup_costs.items():
                snap[key] = added_sparse(early, snap.get(key))
            self.startup_costs = {}
        snap["usage"] = usage()
        snap["worker"] = self.spec.index
        snap["quarters"], self.quarters = self.quarters, []
        return snap

    def tick(self, k: int, start_ns: int, deadline_ns: int | None) -> None:
        if self.finished.done() or (deadline_ns is not None and time.monotonic_ns() >= deadline_ns - 5_000_000):
            return                      # the final snapshot covers the last interval
        self.pipe.send(Tick(second=k, snapshot=self.snapshot()))
        self.call_at_ns(start_ns + (k + 1) * NS_PER_S, self.tick, k + 1, start_ns, deadline_ns)

    def quarter(self, q: int, start_ns: int, deadline_ns: int | None) -> None:
        """Sample q (at start + q/4 s): the second's latency so far; whole seconds are the ticks'."""
        if self.finished.done() or (deadline_ns is not None and time.monotonic_ns() >= deadline_ns - 5_000_000):
            return
        if q % SAMPLES_PER_S:
            self.quarters.append((q, self.engine.latency_us.to_sparse()))
        self.call_at_ns(start_ns + (q + 1) * NS_PER_S // SAMPLES_PER_S, self.quarter, q + 1, start_ns, deadline_ns)

    def set_load(self) -> None:
        """The load model, chosen once before the start."""
        spec, load = self.spec, self.spec.load
        if load.model == "open":
            profile = load.profile
            # ~2 ms of the start rate's connections (at least 4) open before the start;
            # the engine opens them where its users are connections (one static step),
            # a flow's virtual users connect on first use
            first, step = spec.stripe
            initial = min(spec.users, max(4, math.ceil(profile.value_at(0) / step * 0.002)))
            grid_ns = load.schedule_grid_ns or batch_grid_ns(profile.peak / step)
            self.engine.use_open_model(profile.segments(), first, step, initial, grid_ns)
        elif load.staged:
            self.engine.set_active_connections(self.closed_target(0.0))

    async def run(self) -> None:
        spec = self.spec
        raise_fd_limit(spec.users * len(spec.hosts) + 64)
        self.engine = make_engine(spec, self.on_engine_event)
        self.set_load()
        self.sweep_interval_s = min(0.1, spec.workload.timeout_ns / NS_PER_S / 4)
        self.loop.add_reader(self.engine.epoll_fd, self.engine.on_ready)
        watch_pipe(self.loop, self.pipe, self.on_pipe_readable)
        self.loop.call_later(self.sweep_interval_s, self.sweep)
        self.engine.connect_all()
        await asyncio.wait([self.settled, self.finished], return_when=asyncio.FIRST_COMPLETED)
        snap = self.engine.snapshot()
        # That snapshot reset the interval histograms: keep the connect and handshake
        # times of the connections opened so far, for the run's first second.
        self.startup_costs = {key: snap[key] for key in ("connect", "tls_handshake") if snap.get(key)}
        self.pipe.send(Ready(open_connections=snap["open_connections"], errors=snap["errors"]))

        message = await self.messages.get()
        while not isinstance(message, (Start, Stop)):
            message = await self.messages.get()
        if isinstance(message, Start):
            await self.run_from(message.start_ns, message.deadline_ns)
        end_ns = time.monotonic_ns()              # before closing thousands of sockets
        abandoned, queued = self.engine.stop()
        snap = self.snapshot()
        snap["queued_at_stop"] = queued
        self.pipe.send(Final(end_ns=end_ns, snapshot=snap, abandoned=abandoned))

    async def run_from(self, start_ns: int, deadline_ns: int | None) -> None:
        """Wait for the common start instant, then send until finished."""
        started = self.loop.create_future()
        self.call_at_ns(start_ns, lambda: started.done() or started.set_result(None))
        await asyncio.wait([started, self.finished], return_when=asyncio.FIRST_COMPLETED)
        if self.finished.done():
            return
        self.engine.start(start_ns)
        if self.spec.load.staged:
            self.loop.call_later(0.1, self.ramp, start_ns)
        self.call_at_ns(start_ns + NS_PER_S, self.tick, 1, start_ns, deadline_ns)
        self.call_at_ns(start_ns + NS_PER_S // SAMPLES_PER_S, self.quarter, 1, start_ns, deadline_ns)
        if deadline_ns is not None:
            self.call_at_ns(deadline_ns, self.finish, "deadline")
        await self.finished


def added_sparse(first: tuple, second: tuple | None) -> tuple:
    """Two sparse histogram snapshots (Histogram.to_sparse) as one."""
    from surge.core._histogram import Histogram

    total = Histogram()
    total.add_sparse(*first)
    if second is not None:
        total.add_sparse(*second)
    return total.to_sparse()


def make_engine(spec: WorkerSpec, on_event):
    """This worker's Engine for the workload's tables (after fork: nothing compiled
    is shared).  The engine itself takes its fast path when the tables are one
    static step (a URL run, or a plan of one literal step)."""
    from surge.core._engine import Engine
    from surge.run.flows import FlowTables

    workload, load = spec.workload, spec.load
    tables = FlowTables(workload)
    return Engine(engine_hosts(spec), tables, users=spec.users, pipeline=load.pipeline, quota=spec.quota_requests,
                  timeout_ns=workload.timeout_ns, on_event=on_event, pipeline_timing=load.pipeline_timing,
                  user_base=spec.user_base, seed=spec.seed, worker=spec.stripe,
                  keepalive=load.keepalive,
                  binds=tuple((family, sockaddr) for family, sockaddr, _ in workload.source_addresses))


# Up to this many connections per worker, TLS connections keep their record
# buffers between requests (~33 KiB each: at most ~8.5 MiB per worker), which
# saves a free and an allocation of both on every request; above it, idle
# connections give them back (TlsContext.release_idle_buffers).
KEEP_TLS_BUFFERS_UP_TO = 256


def engine_hosts(spec: WorkerSpec) -> list[tuple]:
    """The engine's hosts: (family, sockaddr, TlsContext or None for plain TCP),
    in workload.hosts order.  The contexts come from TlsOptions.context: the
    supervisor's, inherited at the fork, so each worker holds its own copy (an
    SSL_CTX and its session cache are not shared across processes)."""
    hosts = []
    for (family, sockaddr), host in zip(spec.hosts, spec.workload.hosts):
        context = host.tls.context(host.host) if host.tls is not None else None
        if context is not None:
            context.release_idle_buffers(spec.users > KEEP_TLS_BUFFERS_UP_TO)
        hosts.append((family, sockaddr, context))
    return hosts


def prepare_workers(workload: Workload) -> None:
    """Import, in the supervisor before it forks, what every worker imports
    first: each forked worker then shares these modules (copy-on-write)
    instead of paying for them again (~8 ms of CPU per worker: uvloop, the
    engine, the flow tables).  asyncio comes with this module already."""
    import uvloop  # noqa: F401
    import surge.core._engine  # noqa: F401
    import surge.run.flows  # noqa: F401


def worker_main(spec: WorkerSpec, pipe, supervisor_pid: int | None = None) -> None:
    """Entry point of a forked worker process; `pipe` is its end of a
    surge.run.messages.Channel.  A supervisor that dies (even by SIGKILL)
    takes its workers with it: the kernel's parent-death signal kills a
    worker at once, and the channel's end-of-file stops one that outlived
    it anyway (the signal could not be set), so no orphan keeps loading the target."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the supervisor decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(supervisor_pid)
    import uvloop

    try:
        uvloop.run(_run(spec, pipe))
    except BrokenPipeError:                     # the supervisor is gone: nobody to tell
        raise SystemExit(1)
    except (OSError, ValueError) as exc:        # fd limit, tables the engine cannot take (TlsConfigError is one)
        try:
            pipe.send(Failed(reason=str(exc)))
        except OSError:
            pass
        raise SystemExit(1)


def die_with_parent(supervisor_pid: int | None) -> None:
    """SIGKILL from the kernel when the supervisor exits (surge.core._engine.die_with_parent,
    prctl PR_SET_PDEATHSIG); exit now if it already has (it died between the fork
    and the prctl: then this process was re-parented)."""
    if supervisor_pid is None:
        return
    from surge.core._engine import die_with_parent as ask_the_kernel     # imported before the fork

    ask_the_kernel(signal.SIGKILL)
    if os.getppid() != supervisor_pid:
        os._exit(1)


async def _run(spec: WorkerSpec, pipe) -> None:
    await Worker(spec, pipe).run()          # built inside the loop: it takes the running loop
