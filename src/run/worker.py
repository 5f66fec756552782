"""One worker process: an Engine on its own uvloop loop.

Protocol with the supervisor (multiprocessing pipe, pickled tuples):
  worker -> parent  ("ready", info)            every connection connected or failed once
  parent -> worker  ("start", start_ns, deadline_ns | None)
  worker -> parent  ("tick", k, snapshot)      at start_ns + k seconds
                                               (snapshot["quarters"]: the sub-second samples since the last tick)
  parent -> worker  ("stop",)                  interrupt: finish now
  worker -> parent  ("final", end_ns, snapshot, abandoned)  abandoned: requests in flight at the stop
  worker -> parent  ("failed", reason)         the worker could not run (fd limit, a plan it refused)
(snapshot["usage"] carries the worker's CPU and memory.)
A snapshot holds cumulative counters and the latency histogram of the
interval since the previous one, so the parent's merge is exact.
"""
from __future__ import annotations

import asyncio
import math
import os
import resource
import signal
import time
from dataclasses import dataclass

from surge.plan.units import NS_PER_S  # (re-exported for the supervisor)

# Sub-second samples for `surge compare` (4 a second): at each instant start + q/4 s
# between ticks the worker reads, without resetting, the latency histogram of the
# second so far, so the per-second snapshots stay exactly as they are and the
# supervisor's merge takes differences (surge.run.merge.sub_second_samples).
SAMPLES_PER_S = 4


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker runs (picklable)."""
    index: int
    family: int
    sockaddr: bytes
    request: bytes
    connections: int
    pipeline: int
    quota: int                  # -1: until the deadline
    timeout_ns: int
    head_request: bool
    workers: int = 1            # how many workers share the load
    profile: object = None      # surge.plan.load.LoadProfile: open schedule or closed ramp
    test_plan: object = None    # surge.plan.plan.Plan: run its flows (connections = VUs x hosts)
    hosts: tuple = ()           # test plan: (family, sockaddr) per host, in FlowTables order
    user_base: int = 0          # test plan: the global number of this worker's first VU
    seed: int = 0
    schedule_grid_ns: int | None = None   # open model: --schedule-grid (None: batch_grid_ns)
    pipeline_timing: str = "batch"        # closed model with --pipeline: "batch" or "each"


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


PAGE_KB = resource.getpagesize() // 1024


def current_rss_kb() -> int:
    """Resident memory now (not the peak), from /proc/self/statm."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
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
    """Call on_readable when the supervisor's pipe has a message, keeping the pipe
    blocking.  uvloop (libuv's uv_poll_init) makes a watched fd non-blocking, and
    multiprocessing's send() then raises BlockingIOError half-way through a
    snapshot larger than the socket buffer (many steps, sub-second samples) while
    the supervisor is busy: the stream is cut and the next recv() cannot unpickle
    it.  Blocking is safe here: reads happen only when the pipe is readable, and a
    send waits at most for the supervisor's next read."""
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
            message = ("stop",)                        # parent gone: wind down
            self.loop.remove_reader(self.pipe.fileno())
        if message[0] == "stop":
            self.finish("stopped")
        self.messages.put_nowait(message)

    def call_at_ns(self, when_ns: int, callback, *args):
        return self.loop.call_later(max(0.0, (when_ns - time.monotonic_ns()) / NS_PER_S), callback, *args)

    def closed_target(self, t_s: float) -> int:
        """Closed-model stages: this worker's connections at t_s."""
        spec = self.spec
        return share(round(spec.profile.value_at(t_s)), spec.workers, spec.index)

    def ramp(self, start_ns: int) -> None:
        if self.finished.done():
            return
        self.engine.set_active_connections(self.closed_target((time.monotonic_ns() - start_ns) / NS_PER_S))
        self.loop.call_later(0.1, self.ramp, start_ns)

    def sweep(self) -> None:
        self.engine.sweep()
        if not self.finished.done():
            self.loop.call_later(self.sweep_interval_s, self.sweep)

    def tick(self, k: int, start_ns: int, deadline_ns: int | None) -> None:
        if self.finished.done() or (deadline_ns is not None and time.monotonic_ns() >= deadline_ns - 5_000_000):
            return                      # the final snapshot covers the last interval
        snap = self.engine.snapshot()
        snap["usage"] = usage()
        snap["worker"] = self.spec.index
        snap["quarters"], self.quarters = self.quarters, []
        self.pipe.send(("tick", k, snap))
        self.call_at_ns(start_ns + (k + 1) * NS_PER_S, self.tick, k + 1, start_ns, deadline_ns)

    def quarter(self, q: int, start_ns: int, deadline_ns: int | None) -> None:
        """Sample q (at start + q/4 s): the second's latency so far; whole seconds are the ticks'."""
        if self.finished.done() or (deadline_ns is not None and time.monotonic_ns() >= deadline_ns - 5_000_000):
            return
        if q % SAMPLES_PER_S:
            self.quarters.append((q, self.engine.latency_us.to_sparse()))
        self.call_at_ns(start_ns + (q + 1) * NS_PER_S // SAMPLES_PER_S, self.quarter, q + 1, start_ns, deadline_ns)

    async def run(self) -> None:
        from surge.core._engine import Engine  # after fork: nothing compiled is shared

        spec = self.spec
        profile = spec.profile
        hosts = max(1, len(spec.hosts))
        raise_fd_limit(spec.connections * hosts + 64)
        from surge.run.flows import FlowTables, request_tables
        if spec.test_plan is not None:
            tables, addresses = FlowTables(spec.test_plan), list(spec.hosts)
        else:
            tables, addresses = request_tables(spec.request), [(spec.family, spec.sockaddr)]
        self.engine = Engine(addresses, tables, users=spec.connections, pipeline=spec.pipeline, quota=spec.quota,
                             timeout_ns=spec.timeout_ns, on_event=self.on_engine_event,
                             pipeline_timing=spec.pipeline_timing, user_base=spec.user_base, seed=spec.seed,
                             worker=(spec.index, spec.workers))
        if profile is not None and profile.model == "open":
            # Connections open on demand; start with enough for ~2 ms of latency.
            rate_per_worker = profile.value_at(0) / spec.workers
            initial = 0 if spec.test_plan is not None else min(spec.connections, max(4, math.ceil(rate_per_worker * 0.002)))
            grid_ns = spec.schedule_grid_ns or batch_grid_ns(profile.peak / spec.workers)
            self.engine.use_open_model(profile.segments(), spec.index, spec.workers, initial, grid_ns)
        elif profile is not None and profile.stages:
            self.engine.set_active_connections(self.closed_target(0.0))
        self.sweep_interval_s = min(0.1, spec.timeout_ns / NS_PER_S / 4)
        self.loop.add_reader(self.engine.epoll_fd, self.engine.on_ready)
        watch_pipe(self.loop, self.pipe, self.on_pipe_readable)
        self.loop.call_later(self.sweep_interval_s, self.sweep)
        self.engine.connect_all()
        await asyncio.wait([self.settled, self.finished], return_when=asyncio.FIRST_COMPLETED)
        snap = self.engine.snapshot()
        self.pipe.send(("ready", {"open_connections": snap["open_connections"], "errors": snap["errors"]}))

        message = await self.messages.get()
        while message[0] not in ("start", "stop"):
            message = await self.messages.get()
        start_ns = time.monotonic_ns()
        if message[0] == "start":
            _, start_ns, deadline_ns = message
            started = self.loop.create_future()
            self.call_at_ns(start_ns, lambda: started.done() or started.set_result(None))
            await asyncio.wait([started, self.finished], return_when=asyncio.FIRST_COMPLETED)
            if not self.finished.done():
                self.engine.start(start_ns)
                profile = self.spec.profile
                if profile is not None and profile.model == "closed" and profile.stages:
                    self.loop.call_later(0.1, self.ramp, start_ns)
                self.call_at_ns(start_ns + NS_PER_S, self.tick, 1, start_ns, deadline_ns)
                self.call_at_ns(start_ns + NS_PER_S // SAMPLES_PER_S, self.quarter, 1, start_ns, deadline_ns)
                if deadline_ns is not None:
                    self.call_at_ns(deadline_ns, self.finish, "deadline")
                await self.finished
        end_ns = time.monotonic_ns()              # before closing thousands of sockets
        abandoned, queued = self.engine.stop()
        snap = self.engine.snapshot()
        snap["usage"] = usage()
        snap["worker"] = self.spec.index
        snap["queued_at_stop"] = queued
        snap["quarters"], self.quarters = self.quarters, []
        self.pipe.send(("final", end_ns, snap, abandoned))


def worker_main(spec: WorkerSpec, pipe) -> None:
    """Entry point of a forked worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the supervisor decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import uvloop

    try:
        uvloop.run(_run(spec, pipe))
    except (OSError, ValueError) as exc:        # fd limit, a plan the engine cannot take
        pipe.send(("failed", str(exc)))
        raise SystemExit(1)


async def _run(spec: WorkerSpec, pipe) -> None:
    await Worker(spec, pipe).run()
