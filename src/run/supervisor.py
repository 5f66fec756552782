"""The supervisor: start W workers, one common start instant, collect their
per-second snapshots, stop them, and merge exactly."""
from __future__ import annotations

import os
import select
import signal
import sys
import time

from surge.plan.model import host_port
from surge.plan.units import NS_PER_S
from surge.plan.workload import PlanSource, Workload
from surge.run.addresses import AddressError, Choice, choose, lookup
from surge.run.merge import RunRecord, WorkerRecord
from surge.run.messages import Channel, Failed, Final, Ready, Start, Stop, Tick
from surge.run.probe import ProbeError, probe
from surge.run.segment import Segment
# START_DELAY_NS: the time every worker gets to receive "start" before the common
# start instant (a pipe message and a wake-up).  A worker that still gets it late
# starts at once (and runs that much shorter).  Its start syncs live in surge.run.start.
from surge.run.start import START_DELAY_NS, Launch, StartError, plan_fingerprint  # noqa: F401
from surge.run.worker import WorkerSpec, prepare_workers, worker_main
STOP_GRACE_S = 5.0                  # how long workers get to send their final snapshot


class RunError(RuntimeError):
    """The run could not start or went wrong (exit 1)."""
    exit_code = 1


class RunUsageError(RunError):
    """An option that cannot work with the target, found once its addresses are
    chosen but before the start (--bind of the other address family): exit 2."""
    exit_code = 2


class Interrupted(Exception):
    """SIGINT/SIGTERM during the run; carries the partial record (exit 130)."""
    def __init__(self, record):
        super().__init__("interrupted")
        self.record = record


def probe_timeout_s(workload: Workload) -> float:
    """How long the address probe waits for a connect (the run's timeout, at most 5 s)."""
    return min(workload.timeout_ns / NS_PER_S, 5.0)


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


def describe_addresses(target_choice: Choice, host_choices: list[tuple[object, Choice]],
                       probes: dict | None = None, target=None) -> dict:
    """Which addresses were used: "target" (the config's "address", and
    "address_note" when one was skipped), "hosts" (each host the steps use,
    with "tls" for an https one: its options and what the probe negotiated),
    "target_tls_probe" (the target's probe, when it is an https host the steps use);
    surge.plan.describe shows them in the result's config."""
    probes = probes or {}
    described = {"target": target_choice.describe(),
                 "hosts": [{"host": host.authority, **choice.describe(), **_tls_keys(host, probes)}
                           for host, choice in host_choices]}
    if target is not None and target.origin() in probes:
        described["target_tls_probe"] = probes[target.origin()]
    return described


def _tls_keys(host, probes: dict) -> dict:
    if host.tls is None:
        return {}
    probe_result = probes.get(host)
    return {"tls": {**host.tls.describe(host.host), **({"probe": probe_result} if probe_result else {})}}


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as integers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Supervisor:
    def __init__(self, workload: Workload, on_tick=None, watch=None, launch: Launch | None = None):
        self.workload = workload
        self.launch = launch or Launch()    # --segment, --start-at, --barrier, --run-id (surge.run.start)
        self.on_tick = on_tick              # called with (second, RunRecord) for live output
        self.watch = watch                  # a WatchedProcess (--watch-pid), sampled each second
        self.stop_requested = False
        self.abort_reason: str | None = None     # an objective with abort_on_fail failed

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def choose_hosts(self) -> tuple[tuple[tuple[int, bytes], ...], dict]:
        """(family, sockaddr) of each host in workload.hosts order, and the
        config keys that say which were chosen.  Each https host then gets
        its probe handshake (a failure is a RunError naming the reason and the fix)."""
        workload = self.workload
        timeout_s = probe_timeout_s(workload)
        target = workload.target
        chosen = choose_address(target, timeout_s)
        host_choices = []
        for host in workload.hosts:       # the engine's host order (FlowTables.hosts)
            same = (host.host, host.port) == (target.host, target.port)
            host_choices.append((host, chosen if same else choose_address(host, timeout_s)))
        hosts = tuple((c.address.family, c.address.packed()) for _, c in host_choices)
        self.check_binds([(c.address.family, c.address.printable) for _, c in host_choices])
        probes = self.probe_tls(host_choices, workload.timeout_ns / NS_PER_S)   # a slow handshake gets --timeout
        return hosts, describe_addresses(chosen, host_choices, probes, target)

    def check_binds(self, hosts) -> None:
        """--bind against the chosen addresses' families: none of a host's family
        is a RunUsageError (exit 2), addresses no host can use a warning line."""
        from surge.run.limits import BindError, bind_families
        try:
            warning = bind_families(self.workload.source_addresses, hosts)
        except BindError as exc:
            raise RunUsageError(str(exc)) from None
        if warning:
            print(f"surge run: warning: {warning}", file=sys.stderr, flush=True)

    def probe_tls(self, host_choices, timeout_s: float) -> dict:
        """{host: what its probe handshake negotiated} for each https host."""
        spelling = "plan" if isinstance(self.workload.source, PlanSource) else "flags"
        probes = {}
        for host, choice in host_choices:
            if host.tls is None or host in probes:
                continue
            try:
                probes[host] = probe(host, choice.address.family, choice.address.packed(), timeout_s, spelling)
            except ProbeError as exc:
                raise RunError(str(exc)) from None
        return probes

    def specs(self, hosts) -> list[WorkerSpec]:
        """One spec per worker: this segment's users and -n quota (the whole
        run's without --segment) split evenly over its workers."""
        workload, segment = self.workload, self.launch.segment
        capacity = segment.share(workload.load.users)
        workers = max(1, min(workload.workers, capacity))
        users = split(capacity, workers)
        requests = segment.share(workload.load.requests) if workload.load.requests else None
        quotas = split(requests, workers) if requests else [-1] * workers
        seed = int.from_bytes(os.urandom(8), "little")
        # user numbers are global across segments too (the users of the segments before this one first)
        user_base = sum(Segment(i, segment.count).share(workload.load.users) for i in range(segment.index))
        return [WorkerSpec(index=i, workers=workers, workload=workload, hosts=hosts, users=users[i],
                           user_base=user_base + sum(users[:i]), quota_requests=quotas[i], segment=segment,
                           seed=(seed + i * 0x9E3779B97F4A7C15) % 2 ** 64 or 1)
                for i in range(workers)]

    def run(self) -> RunRecord:
        fingerprint = plan_fingerprint(self.workload)
        self.sync = self.launch.sync(fingerprint)
        try:
            self.sync.check_early()
            self.sync.open()                # a barrier listens (segment 0) or connects from now on
            return self._run(fingerprint)
        except StartError as exc:
            raise RunError(str(exc)) from None
        finally:
            self.sync.close()

    def _run(self, fingerprint: str) -> RunRecord:
        hosts, addresses = self.choose_hosts()
        specs = self.specs(hosts)
        record = RunRecord(self.workload, [WorkerRecord(spec.index) for spec in specs], addresses)
        record.run_identity(self.launch, fingerprint)

        old_int = signal.signal(signal.SIGINT, self._on_signal)
        old_term = signal.signal(signal.SIGTERM, self._on_signal)
        prepare_workers(self.workload)          # once, before the forks: every worker shares it
        procs, pipes = [], []
        try:
            for spec in specs:
                parent_end, child_end = Channel.pair()
                procs.append(WorkerProcess.fork(spec, child_end, pipes + [parent_end]))
                child_end.close()
                pipes.append(parent_end)
            self._collect(record, procs, pipes)
        finally:
            deadline = time.monotonic() + STOP_GRACE_S
            for proc in procs:
                if not proc.join(deadline):
                    proc.kill()
            for pipe in pipes:
                pipe.close()
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
        readable = select.poll()
        pipe_at = {pipe.fileno(): pipe for pipe in pipes}
        for fd in pipe_at:
            readable.register(fd, select.POLLIN)

        def send_all(message):
            for pipe in list(live):
                try:
                    pipe.send(message)
                except OSError:
                    pass

        def gone(pipe):
            live.discard(pipe)
            readable.unregister(pipe.fileno())

        while live:
            if self.stop_requested and stop_sent_at is None:
                send_all(Stop())
                stop_sent_at = time.monotonic()
            if stop_sent_at is not None and time.monotonic() - stop_sent_at > STOP_GRACE_S:
                break
            try:
                # ms: the stop request is looked at this often (and the barrier's answer, while waiting)
                events = readable.poll(10 if phase == "waiting" else 100)
            except InterruptedError:                # a signal (SIGINT: stop_requested) on an old Python
                continue
            for fd, _ in events:
                pipe = pipe_at[fd]
                if pipe not in live:
                    continue
                w = by_pipe[pipe]
                try:
                    message = pipe.recv()
                except (EOFError, OSError):     # it died (SIGKILL, OOM): the others go on
                    w.lost_ns = w.lost_ns or time.monotonic_ns()
                    gone(pipe)
                    continue
                if isinstance(message, Ready):
                    w.ready = message
                elif isinstance(message, Tick):
                    k = message.second
                    record.add_tick(w, k, message.snapshot)     # finished seconds become points (retention)
                    # Once every worker still running has reported second k: sample, show.
                    if (k > record.finished_through and k not in record.watch_samples
                            and all(other.reported(k) for other in record.workers if pipe_of[other.index] in live)):
                        record.watch_samples[k] = self.watch.sample() if self.watch else None
                        if self.on_tick:
                            reason = self.on_tick(k, record)
                            if reason and not self.stop_requested:
                                self.abort_reason = reason
                                self.stop_requested = True
                elif isinstance(message, Final):
                    record.add_final(w, message.snapshot, message.end_ns, message.abandoned)
                    gone(pipe)
                elif isinstance(message, Failed):
                    w.failure = message.reason
                    w.lost_ns = time.monotonic_ns()
                    gone(pipe)
            if phase == "connecting" and all(w.ready is not None or pipe_of[w.index] not in live
                                             for w in record.workers):
                if not any(w.ready is not None for w in record.workers):
                    failed = record.workers[0]
                    raise RunError(f"worker {failed.index} failed before the start: "
                                   f"{failed.failure or describe_exit(procs[0].exitcode)}")
                try:
                    self.sync.ready()       # --start-at: already past? a barrier: tell segment 0
                except StartError:
                    send_all(Stop())
                    raise
                phase = "waiting"
            if phase == "waiting" and not self.stop_requested:
                try:
                    decision = self.sync.poll()
                except StartError:
                    send_all(Stop())
                    raise
                if decision is not None:
                    record.start_ns = decision.start_ns
                    record.started(decision)
                    duration_ns = self.workload.load.duration_ns
                    deadline = record.start_ns + duration_ns if duration_ns else None
                    send_all(Start(start_ns=record.start_ns, deadline_ns=deadline))
                    phase = "running"


class WorkerProcess:
    """A forked worker: its pid and, once reaped, its exit code (negative: the
    signal that killed it, as multiprocessing reports it).  os.fork and a
    socket pair do what multiprocessing's fork context did here, for a
    tenth of its import cost (see surge.run.messages.Channel)."""

    def __init__(self, pid: int, name: str):
        self.pid = pid
        self.name = name
        self._exitcode: int | None = None

    @property
    def exitcode(self) -> int | None:
        """None while it runs (looked at now, as multiprocessing's Process.exitcode)."""
        self.poll()
        return self._exitcode

    @classmethod
    def fork(cls, spec: WorkerSpec, channel: Channel, supervisor_ends: list[Channel]) -> WorkerProcess:
        """Fork a process that runs worker_main(spec, channel) and exits with its
        status; it first closes the supervisor's ends (its own and the earlier
        workers'), so that each worker's exit is seen as the end of its channel."""
        name = f"surge-worker-{spec.index}"
        for stream in (sys.stdout, sys.stderr):     # or the child would write the buffered text again
            if stream is not None:
                stream.flush()
        supervisor_pid = os.getpid()
        pid = os.fork()
        if pid:
            return cls(pid, name)
        code = 1
        try:
            for end in supervisor_ends:
                end.close()
            worker_main(spec, channel, supervisor_pid)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:       # a bug: say where, as multiprocessing did, then "exited with status 1"
            import traceback
            print(f"Process {name}:", file=sys.stderr)
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:   # noqa: BLE001 - a closed pipe must not keep the worker alive
                    pass
            os._exit(code)          # never the supervisor's code, atexit handlers or finalizers

    def poll(self) -> bool:
        """True once the process has exited (and is reaped)."""
        if self._exitcode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:       # reaped elsewhere
                self._exitcode = 1
                return True
            if pid == 0:
                return False
            self._exitcode = os.waitstatus_to_exitcode(status)
        return True

    def join(self, deadline: float) -> bool:
        """Wait until it exits or time.monotonic() passes deadline; True if it exited.
        Workers exit right after their Final: a pidfd wakes this the moment it
        does (a sleeping poll lost 1-4 ms of every run's wall time here)."""
        if self.poll():
            return True
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):   # Linux < 5.3: poll with growing sleeps
            return self._join_polling(deadline)
        try:
            waiting = select.poll()
            waiting.register(pidfd, select.POLLIN)
            while not self.poll():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                try:
                    waiting.poll(max(1, int(left * 1000) + 1))
                except InterruptedError:
                    pass
            return True
        finally:
            os.close(pidfd)

    def _join_polling(self, deadline: float) -> bool:
        pause = 0.001
        while not self.poll():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        return True

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while self._exitcode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self._exitcode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self._exitcode = -signal.SIGKILL
            except InterruptedError:
                continue


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


def run_workload(workload: Workload, on_tick=None, watch=None, launch: Launch | None = None) -> RunRecord:
    """Run the workload to completion (or interruption) and return the raw record.
    `launch`: this instance's segment, start instant and run id (surge.run.start)."""
    return Supervisor(workload, on_tick, watch, launch).run()
