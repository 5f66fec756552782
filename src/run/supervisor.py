"""The supervisor: start W workers, one common start instant, collect their
per-second snapshots, stop them, and merge exactly."""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait as wait_for_pipes

from surge.plan.model import RunPlan, host_port
from surge.plan.request import render_request
from surge.run.addresses import AddressError, Choice, choose, lookup
from surge.run.merge import RunRecord, WorkerRecord
from surge.run.worker import NS_PER_S, WorkerSpec, worker_main

# Time for every worker to receive "start" before the common start instant: a
# pipe message and a wake-up, well under a millisecond even on a busy machine.
# A worker that still gets it late starts at once (and runs that much shorter).
START_DELAY_NS = 20_000_000
STOP_GRACE_S = 5.0                  # how long workers get to send their final snapshot


class RunError(RuntimeError):
    """The run could not start or went wrong (exit 1)."""


class Interrupted(Exception):
    """SIGINT/SIGTERM during the run; carries the partial record (exit 130)."""
    def __init__(self, record):
        super().__init__("interrupted")
        self.record = record


def probe_timeout_s(plan: RunPlan) -> float:
    """How long the address probe waits for a connect (the run's timeout, at most 5 s)."""
    return min(plan.timeout_ns / NS_PER_S, 5.0)


def choose_address(target, timeout_s: float) -> Choice:
    """The address of `target` that accepts a connection, trying each one the
    name resolves to (see surge.run.addresses); DNS errors and refusals -> RunError."""
    try:
        addresses = lookup(target.host, target.port)
    except AddressError as exc:
        raise RunError(str(exc)) from None
    try:
        return choose(addresses, timeout_s)
    except AddressError as exc:
        where = host_port(target.host, target.port)
        if len(addresses) == 1 and addresses[0].printable == where:
            reason = str(exc).removeprefix(where + " ")
            reason = "connection refused" if reason == "refused" else reason
            raise RunError(f"cannot connect to {where}: {reason}") from None
        raise RunError(f"cannot connect to {where}: {exc}") from None


def describe_addresses(target_choice: Choice, host_choices: list[tuple[object, Choice]]) -> dict:
    """The config keys saying which addresses were used: "address" (and
    "address_note" when one was skipped) for the target; with a test plan,
    "host_addresses" for each host its steps use."""
    described = target_choice.describe()
    if host_choices:
        described["host_addresses"] = [{"host": host.authority, **choice.describe()} for host, choice in host_choices]
    return described


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as integers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Supervisor:
    def __init__(self, plan: RunPlan, on_tick=None, watch=None):
        self.plan = plan
        self.on_tick = on_tick              # called with (second, RunRecord) for live output
        self.watch = watch                  # a WatchedProcess (--watch-pid), sampled each second
        self.stop_requested = False
        self.abort_reason: str | None = None     # an objective with abort_on_fail failed

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def run(self) -> RunRecord:
        plan = self.plan
        timeout_s = probe_timeout_s(plan)
        chosen = choose_address(plan.target, timeout_s)
        family, sockaddr = chosen.address.family, chosen.address.packed()
        host_choices = []
        if plan.test_plan is not None:
            for target in plan.test_plan.hosts:       # the engine's host order (FlowTables.hosts)
                same = (target.host, target.port) == (plan.target.host, plan.target.port)
                host_choices.append((target, chosen if same else choose_address(target, timeout_s)))
        hosts = tuple((c.address.family, c.address.packed()) for _, c in host_choices)
        # The result's config says which address each host got.
        plan = self.plan = dataclasses.replace(plan, addresses=describe_addresses(chosen, host_choices))
        request = render_request(plan)
        capacity = plan.connection_capacity
        workers = max(1, min(plan.workers, capacity))
        conns = split(capacity, workers)
        quotas = split(plan.requests, workers) if plan.requests else [-1] * workers
        seed = int.from_bytes(os.urandom(8), "little")
        specs = [WorkerSpec(i, family, sockaddr, request, conns[i], plan.pipeline, quotas[i],
                            plan.timeout_ns, plan.method == "HEAD", workers, plan.profile,
                            plan.test_plan, hosts, sum(conns[:i]), (seed + i * 0x9E3779B97F4A7C15) % 2 ** 64 or 1,
                            plan.schedule_grid_ns, plan.pipeline_timing)
                 for i in range(workers)]
        record = RunRecord(plan, [WorkerRecord(i) for i in range(workers)])

        old_int = signal.signal(signal.SIGINT, self._on_signal)
        old_term = signal.signal(signal.SIGTERM, self._on_signal)
        ctx = multiprocessing.get_context("fork")
        procs, pipes = [], []
        try:
            for spec in specs:
                parent_end, child_end = ctx.Pipe()
                proc = ctx.Process(target=worker_main, args=(spec, child_end), name=f"surge-worker-{spec.index}",
                                   daemon=True)
                proc.start()
                child_end.close()
                procs.append(proc)
                pipes.append(parent_end)
            self._collect(record, procs, pipes)
        finally:
            for proc in procs:
                proc.join(timeout=STOP_GRACE_S)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        for w, proc in zip(record.workers, procs):
            if w.final is None and w.failure is None:
                w.failure = describe_exit(proc.exitcode)
        record.aborted_by = self.abort_reason
        record.interrupted = self.stop_requested and self.abort_reason is None
        if record.interrupted:
            raise Interrupted(record)
        return record

    def _collect(self, record: RunRecord, procs, pipes) -> None:
        by_pipe = {pipe: record.workers[i] for i, pipe in enumerate(pipes)}
        pipe_of = {record.workers[i].index: pipe for i, pipe in enumerate(pipes)}
        live = set(pipes)
        phase = "connecting"
        stop_sent_at = None

        def send_all(message):
            for pipe in list(live):
                try:
                    pipe.send(message)
                except OSError:
                    pass

        while live:
            if self.stop_requested and stop_sent_at is None:
                send_all(("stop",))
                stop_sent_at = time.monotonic()
            if stop_sent_at is not None and time.monotonic() - stop_sent_at > STOP_GRACE_S:
                break
            for pipe in wait_for_pipes(list(live), timeout=0.1):
                w = by_pipe[pipe]
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    live.discard(pipe)
                    continue
                kind = message[0]
                if kind == "ready":
                    w.ready = message[1]
                elif kind == "tick":
                    k = message[1]
                    w.add_tick(k, message[2])
                    # Once every worker still running has reported second k: sample, show.
                    if k not in record.watch_samples and all(k in other.ticks for other in record.workers
                                                             if pipe_of[other.index] in live):
                        record.watch_samples[k] = self.watch.sample() if self.watch else None
                        if self.on_tick:
                            reason = self.on_tick(k, record)
                            if reason and not self.stop_requested:
                                self.abort_reason = reason
                                self.stop_requested = True
                elif kind == "final":
                    w.final = message[2]
                    w.end_ns = message[1]
                    w.abandoned = message[3]
                    live.discard(pipe)
                elif kind == "failed":
                    w.failure = message[1]
                    live.discard(pipe)
            if phase == "connecting" and all(w.ready is not None or pipe_of[w.index] not in live
                                             for w in record.workers):
                if not any(w.ready is not None for w in record.workers):
                    failed = record.workers[0]
                    raise RunError(f"worker {failed.index} failed before the start: "
                                   f"{failed.failure or describe_exit(procs[0].exitcode)}")
                record.start_ns = time.monotonic_ns() + START_DELAY_NS
                duration_ns = self.plan.run_duration_ns
                deadline = record.start_ns + duration_ns if duration_ns else None
                send_all(("start", record.start_ns, deadline))
                phase = "running"


def describe_exit(exitcode) -> str:
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exited with status {exitcode} before reporting its results"


def run_plan(plan: RunPlan, on_tick=None, watch=None) -> RunRecord:
    """Run the plan to completion (or interruption) and return the raw record."""
    return Supervisor(plan, on_tick, watch).run()
