"""Process management for `surge serve`: bind, start workers, count, stop.

The parent binds one listening socket per worker on the same port with
SO_REUSEPORT (so the kernel spreads connections over the workers' own accept
queues), forks the workers, prints nothing itself, and waits for SIGINT or
SIGTERM. Each worker runs one uvloop loop and counts what it served in its own
slot of a shared uint64 array, which the parent sums at the end.

Misbehaviour on request: a delay per response drawn from a distribution
(`Delay`, parsed from `--delay` by `parse_delay`), and stalls that hold every
response for `stall_ns` once every `stall_every_ns`. The parent picks one start
instant (CLOCK_MONOTONIC) before it forks, so all workers stall together.

TLS (`--tls`): the listeners' sockets are wrapped by asyncio's TLS transport
(`create_server(ssl=...)`), so the protocol sees the same plaintext and the
served counter counts the same requests. The context (surge.serve.certs) is
made once in the parent, before the fork, so a bad certificate fails before
any worker starts and every worker shares its session-ticket keys: a client
resumes with any worker.

A known capacity (`--service-time T --concurrency C`): each worker serves at
most C requests at a time, each held T by the timerfd (not by CPU), the rest
waiting in FIFO order: C / T requests per second per worker, whatever the
offered load (`capacity_per_s`, printed at start and in the status JSON).

Apps: "default" gives every request the same answer (the max-RPS target);
"demo" routes requests to a small shop for test plans (`demo.DemoApp`: login
with tokens any worker accepts, dashboard, logout, search, items, admin
report) and counts requests per route, one cache line of slots per worker.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import multiprocessing
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from multiprocessing import connection as mp_connection
from multiprocessing.sharedctypes import RawArray
from typing import Callable

LISTEN_BACKLOG = 4096
WORKER_START_TIMEOUT_S = 15.0
WORKER_STOP_TIMEOUT_S = 5.0
MAX_WORKERS = 1024
MAX_BODY_SIZE_BYTES = 1024 ** 3
MAX_DELAY_NS = 3600 * 1_000_000_000  # per parameter: an hour is already absurd for a target
MAX_SEED = 2 ** 64 - 1
MAX_SERVICE_SLOTS = 1_000_000
DEFAULT_STATUS_PATH = "/__surge/status"
APPS = ("default", "demo")
DELAY_SYNTAX = "a duration (10ms), uniform:LOW:HIGH, exp:MEAN or normal:MEAN:STDDEV"


class ServeError(RuntimeError):
    """The server could not start or a worker died; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Delay:
    """How long each response waits, drawn per request (what `--delay` parses to).

    kind "fixed": a_ns exactly; "uniform": from a_ns to b_ns; "exp":
    exponential with mean a_ns; "normal": mean a_ns, standard deviation b_ns,
    truncated at 0 (negative draws are drawn again).
    """
    kind: str
    a_ns: int
    b_ns: int = 0

    def describe(self) -> str:
        """A short human form, as --delay would take it back."""
        a, b = format_ns(self.a_ns), format_ns(self.b_ns)
        return {"fixed": a, "uniform": f"uniform:{a}:{b}", "exp": f"exp:{a}",
                "normal": f"normal:{a}:{b}"}[self.kind]

    def config(self) -> dict:
        """The keywords ServeConfig takes for this delay."""
        return dict(delay_kind=self.kind, delay_a_ns=self.a_ns, delay_b_ns=self.b_ns)


def parse_delay(text: str | None) -> Delay | None:
    """'10ms', 'uniform:5ms:15ms', 'exp:10ms', 'normal:10ms:2ms' -> Delay; '0' or None -> None.

    Raises ValueError with a one-line message saying what is allowed.
    """
    from surge.plan.units import UnitError, parse_duration_ns

    if text is None or text.strip() == "0":
        return None
    name, _, rest = text.strip().partition(":")
    arity = {"uniform": 2, "exp": 1, "normal": 2}
    if not rest:
        name, parts = "fixed", [text.strip()]
    elif name in arity:
        parts = rest.split(":")
        if len(parts) != arity[name]:
            usage = {"uniform": "uniform:LOW:HIGH", "exp": "exp:MEAN", "normal": "normal:MEAN:STDDEV"}[name]
            raise ValueError(f"got {text!r}, expected {usage}")
    else:
        raise ValueError(f"got {text!r}, expected {DELAY_SYNTAX}")
    values = []
    for part in parts:
        if part.strip() == "0":
            values.append(0)  # allowed for a uniform LOW and a normal STDDEV (checked below)
            continue
        try:
            values.append(parse_duration_ns(part))
        except UnitError:
            raise ValueError(f"got {text!r}: {part!r} is not a duration like 500us, 10ms or 1s "
                             f"(expected {DELAY_SYNTAX})") from None
    delay = Delay(name, values[0], values[1] if len(values) > 1 else 0)
    problem = problem_with_delay(delay)
    if problem:
        raise ValueError(problem)
    return delay


def format_ns(ns: int) -> str:
    """Nanoseconds in the shortest exact unit --delay and --stall take: 1s, 250ms, 1.5ms."""
    if ns == 0:
        return "0"
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if ns >= size and ns % size == 0:
            return f"{ns // size}{unit}"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.6f}".rstrip("0") + "ms"
    return f"{ns}ns" if ns < 1_000 else f"{ns / 1_000:.3f}".rstrip("0") + "us"


# -- option rules, shared by serve() and the click command ----------------------
# Each returns None when the value is allowed, else what is allowed and what was found.

def problem_with_port(port: int) -> str | None:
    if not 0 <= port <= 65535:
        return f"must be from 0 to 65535 (0 picks a free port), got {port}"
    return None


def problem_with_workers(workers: int) -> str | None:
    if not 1 <= workers <= MAX_WORKERS:
        return f"must be from 1 to {MAX_WORKERS}, got {workers}"
    return None


def problem_with_status(status: int) -> str | None:
    if not 200 <= status <= 599:
        return f"must be an HTTP status code from 200 to 599 (1xx cannot be served), got {status}"
    return None


def problem_with_body_size(body_size_bytes: int, status: int = 200) -> str | None:
    if not 0 <= body_size_bytes <= MAX_BODY_SIZE_BYTES:
        return f"must be from 0 to 1GiB, got {body_size_bytes} bytes"
    if body_size_bytes and status in (204, 304):
        return f"must be 0 with status {status}, which has no body, got {body_size_bytes} bytes"
    return None


def problem_with_delay(delay: Delay | None) -> str | None:
    if delay is None:
        return None
    if delay.kind not in ("fixed", "uniform", "exp", "normal"):
        return f"must be {DELAY_SYNTAX}, got kind {delay.kind!r}"
    if max(delay.a_ns, delay.b_ns) > MAX_DELAY_NS or min(delay.a_ns, delay.b_ns) < 0:
        return f"must be from 0 to 1h, got {delay.describe()}"
    if delay.kind in ("fixed", "exp") and delay.a_ns == 0:
        return f"must be greater than 0, got {delay.describe()}"
    if delay.kind == "uniform" and not (delay.a_ns <= delay.b_ns and delay.b_ns > 0):
        return f"uniform:LOW:HIGH needs LOW <= HIGH and HIGH > 0, got {delay.describe()}"
    if delay.kind == "normal" and delay.a_ns == 0:
        return f"normal:MEAN:STDDEV needs MEAN > 0, got {delay.describe()}"
    return None


def problem_with_stall(stall_ns: int, stall_every_ns: int) -> str | None:
    """Stalls need both a length and a period, the length shorter than the period."""
    if not stall_ns and not stall_every_ns:
        return None
    if not stall_every_ns:
        return "--stall needs --stall-every (how often a stall starts), e.g. --stall 1s --stall-every 10s"
    if not stall_ns:
        return "--stall-every needs --stall (how long each stall lasts), e.g. --stall 1s --stall-every 10s"
    if stall_ns < 0 or stall_every_ns < 0:
        return f"--stall and --stall-every must be > 0, got {stall_ns}ns and {stall_every_ns}ns"
    if stall_ns >= stall_every_ns:
        return (f"--stall must be shorter than --stall-every, got {format_ns(stall_ns)} "
                f"every {format_ns(stall_every_ns)}")
    return None


# Hardening (issue 15 item 10): a connection that completes no request and
# drains no answer for a minute is closed (nginx's client_header_timeout is 60 s
# too); each worker keeps at most this many connections, so a flood costs
# bounded memory (~64k: past any usual file descriptor limit, so a real c10k-c50k
# test never meets it).
DEFAULT_IDLE_TIMEOUT_NS = 60 * 1_000_000_000
DEFAULT_MAX_CONNECTIONS = 65536


def problem_with_service(service_ns: int, service_slots: int, delay: Delay | None = None,
                         stall_ns: int = 0) -> str | None:
    """--service-time needs a duration > 0; --concurrency needs --service-time;
    neither combines with --delay or --stall (one rule decides when an answer leaves)."""
    if not service_ns and not service_slots:
        return None
    if not service_ns:
        return "--concurrency needs --service-time (how long each request holds its slot), e.g. --service-time 2ms"
    if not 0 < service_ns <= MAX_DELAY_NS:
        return f"--service-time must be from 1us to 1h, got {format_ns(service_ns)}"
    if not 1 <= service_slots <= MAX_SERVICE_SLOTS:
        return f"--concurrency must be from 1 to {MAX_SERVICE_SLOTS}, got {service_slots}"
    if delay is not None or stall_ns:
        return f"--service-time does not combine with {'--delay' if delay is not None else '--stall'}"
    return None


def capacity_per_s(service_ns: int, service_slots: int, workers: int = 1) -> float:
    """Requests per second the service queue can complete: slots / service time, per worker."""
    return workers * service_slots * 1e9 / service_ns


def problem_with_seed(seed: int | None) -> str | None:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        return f"must be from 0 to 2**64-1, got {seed}"
    return None


def problem_with_status_path(status_path: str) -> str | None:
    if (not status_path.startswith("/") or not status_path.isascii()
            or any(c in status_path for c in " ?#\t\r\n")):
        return f"must be an ASCII path starting with / without spaces, ? or #, got {status_path!r}"
    return None


def problem_with_app(app: str) -> str | None:
    if app not in APPS:
        return f"must be one of {', '.join(APPS)}, got {app!r}"
    return None


def listen_url(host: str, port: int, tls: bool = False) -> str:
    """The URL clients use for a listening address (IPv6 hosts in brackets)."""
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


# -- the server -------------------------------------------------------------------

def serve(host: str, port: int, workers: int, body_size: int, status: int, delay: Delay | int | None,
          close: bool, status_path: str,
          ready_callback: Callable[[str, int], None] | None = None, *,
          stall_ns: int = 0, stall_every_ns: int = 0, seed: int | None = None,
          started_at_ns: int | None = None, app: str = "default", tls=None,
          service_ns: int = 0, service_slots: int = 0, idle_timeout_ns: int = DEFAULT_IDLE_TIMEOUT_NS,
          max_connections: int = 0) -> int:
    """Serve until SIGINT or SIGTERM; return the number of requests served.

    body_size is in bytes; delay a Delay, or an int of nanoseconds for a fixed
    one (None or 0: no delay). Stalls: every stall_every_ns from started_at_ns
    (time.monotonic_ns(); default now), the first one period after it, every
    response is held for stall_ns. seed makes the delays repeatable (None:
    random). app "demo" serves the demo shop (status and body_size are then
    not used) and counts requests per route. service_ns with service_slots:
    at most service_slots requests per worker in service, each for service_ns,
    the rest waiting FIFO (service_slots defaults to 1). tls, a surge.serve.certs.ServerCertificate,
    serves HTTPS with it (a file that cannot be loaded: ServeError). ready_callback(host, port) is called once every worker accepts;
    port is the real one when 0 was asked for. Raises ValueError for bad
    options and ServeError when the port cannot be bound or a worker fails.
    """
    if isinstance(delay, int):
        delay = Delay("fixed", delay) if delay > 0 else None
    if service_ns and not service_slots:
        service_slots = 1
    problems = [f"{name}: {problem}" for name, problem in (
        ("port", problem_with_port(port)),
        ("workers", problem_with_workers(workers)),
        ("status", problem_with_status(status)),
        ("body_size", problem_with_body_size(body_size, status)),
        ("delay", problem_with_delay(delay)),
        ("stall", problem_with_stall(stall_ns, stall_every_ns)),
        ("seed", problem_with_seed(seed)),
        ("service", problem_with_service(service_ns, service_slots, delay, stall_ns)),
        ("status_path", problem_with_status_path(status_path)),
        ("app", problem_with_app(app)),
    ) if problem]
    if problems:
        raise ValueError("; ".join(problems))
    # fail here, in the parent, if the extension is not built
    from surge.serve import _protocol  # noqa: F401
    ssl_context = None
    if tls is not None:
        from surge.serve.certs import CertificateError, server_context
        try:
            ssl_context = server_context(tls)
        except CertificateError as error:
            raise ServeError(str(error)) from None

    stop_signals: list[int] = []

    def on_stop_signal(signum, frame):
        stop_signals.append(signum)

    # Installed before any worker exists, so an early Ctrl-C is not lost; the
    # wakeup pipe turns a signal into a readable fd for the wait below.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    old_handlers = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    old_wakeup_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    counts = RawArray("Q", workers)
    route_counts = None
    if app == "demo":
        from surge.serve.demo import ROUTE_SLOTS
        route_counts = RawArray("Q", workers * ROUTE_SLOTS)
    parent_alive = os.pipe()
    listeners: list[socket.socket] = []
    processes: list[multiprocessing.process.BaseProcess] = []
    try:
        listeners, port = _bind_listeners(host, port, workers)
        config = dict(
            status=status, body_size_bytes=body_size, close=close, status_path=status_path,
            stall_ns=stall_ns, stall_every_ns=stall_every_ns,
            # one instant for all workers, so they stall together
            started_at_ns=time.monotonic_ns() if started_at_ns is None else started_at_ns,
            # each worker mixes in its index: distinct sequences, repeatable with --seed
            seed=int.from_bytes(os.urandom(8), "little") if seed is None else seed,
            # one secret for all workers, so each accepts the tokens the others issue
            app=app, token_secret=os.urandom(16) if app == "demo" else None,
            service_ns=service_ns, service_slots=service_slots,
            idle_timeout_ns=idle_timeout_ns, max_connections=max_connections)
        if delay is not None:
            config.update(delay.config())
        processes = _start_workers(listeners, counts, route_counts, wake_r, stop_signals, config, parent_alive,
                                   ssl_context)
        for listener in listeners:
            listener.close()  # the workers hold their own copies
        if stop_signals:
            return sum(counts)
        if ready_callback is not None:
            ready_callback(host, port)
        _wait_for_stop(processes, wake_r, stop_signals)
    finally:
        _stop_workers(processes)
        for listener in listeners:
            listener.close()
        signal.set_wakeup_fd(old_wakeup_fd)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        for fd in (wake_r, wake_w, *parent_alive):
            os.close(fd)
    return sum(counts)


def _bind_listeners(host: str, port: int, workers: int) -> tuple[list[socket.socket], int]:
    """One listening socket per worker, all on one port; returns them and the port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ServeError(f"cannot listen on host {host!r}: {error.strerror}") from None
    family, _, _, _, address = infos[0]
    # A second `surge serve` on the same port would join our SO_REUSEPORT group
    # silently and take half the connections. A plain bind first (no
    # SO_REUSEPORT) fails when anyone listens there; a port picked by the
    # kernel is retried in the tiny window where someone else takes it.
    for attempt in range(5):
        chosen_port = _probe_port(family, address, host, port)
        try:
            return [_listener(family, (address[0], chosen_port, *address[2:])) for _ in range(workers)], chosen_port
        except OSError as error:
            if port != 0 or error.errno != errno.EADDRINUSE or attempt == 4:
                raise _bind_error(error, host, chosen_port) from None
    raise AssertionError("unreachable")


def _probe_port(family: int, address: tuple, host: str, port: int) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise _bind_error(error, host, port) from None
        return probe.getsockname()[1]


def _listener(family: int, address: tuple) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(error: OSError, host: str, port: int) -> ServeError:
    if error.errno == errno.EADDRINUSE:
        return ServeError(f"port {port} on {host} is already in use")
    if error.errno == errno.EACCES:
        return ServeError(f"not allowed to listen on port {port} (ports below 1024 need privileges)")
    return ServeError(f"cannot listen on {host} port {port}: {error.strerror}")


def _start_workers(listeners, counts, route_counts, wake_r, stop_signals, config, parent_alive,
                   ssl_context=None) -> list:
    """Fork one worker per listener and wait until each accepts (or fails)."""
    context = multiprocessing.get_context("fork")
    processes, ready_pipes = [], []
    try:
        for index in range(len(listeners)):
            ready_r, ready_w = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker_main, name=f"surge-serve-{index}", daemon=True,
                args=(index, listeners, counts, route_counts, config, parent_alive, ready_w, ssl_context))
            process.start()
            ready_w.close()
            processes.append(process)
            ready_pipes.append(ready_r)

        waiting = dict(enumerate(ready_pipes))
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while waiting and not stop_signals:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise ServeError(f"{len(waiting)} worker(s) did not start within {WORKER_START_TIMEOUT_S:.0f}s")
            watched = list(waiting.values()) + [processes[i].sentinel for i in waiting] + [wake_r]
            ready = mp_connection.wait(watched, timeout=remaining_s)
            _drain(wake_r)
            for index, pipe in list(waiting.items()):
                if pipe in ready:
                    try:
                        failure = pipe.recv()
                    except EOFError:
                        failure = f"worker {index} exited while starting"
                    if failure:
                        raise ServeError(failure)
                    del waiting[index]
                elif processes[index].sentinel in ready:
                    raise ServeError(f"worker {index} stopped while starting ({_how_it_ended(processes[index])})")
    except BaseException:
        _stop_workers(processes)
        raise
    finally:
        for pipe in ready_pipes:
            pipe.close()
    return processes


def _wait_for_stop(processes, wake_r, stop_signals) -> None:
    sentinels = [process.sentinel for process in processes]
    while not stop_signals:
        ready = mp_connection.wait(sentinels + [wake_r])
        _drain(wake_r)
        if stop_signals:
            return
        for index, process in enumerate(processes):
            if process.sentinel in ready:
                raise ServeError(f"worker {index} stopped unexpectedly ({_how_it_ended(process)})")


def _how_it_ended(process) -> str:
    process.join(1.0)  # the sentinel fires at exit, a moment before the exit code is there
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _stop_workers(processes) -> None:
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.kill()
            process.join()


def _worker_main(index, listeners, counts, route_counts, config, parent_alive, ready_w, ssl_context=None) -> None:
    """One worker: serve listeners[index] on a uvloop loop until SIGTERM."""
    # Forget the parent's handlers: the parent decides when workers stop
    # (SIGTERM); a terminal's Ctrl-C reaches the parent, which passes it on.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Only the parent keeps the write end: when it exits, however it exits,
    # the read end turns readable (EOF) and the worker stops with it.
    parent_alive_r, parent_alive_w = parent_alive
    os.close(parent_alive_w)
    for other, listener in enumerate(listeners):
        if other != index:
            listener.close()  # so a dead worker's queue is not kept alive by others
    try:
        import uvloop

        from surge.serve._protocol import ServeConfig

        loop = uvloop.new_event_loop()
        shared_counts = memoryview(counts).cast("B").cast("Q")
        if route_counts is not None:
            config = dict(config, route_counts=memoryview(route_counts).cast("B").cast("Q"))
        protocol_factory = ServeConfig(counts=shared_counts, worker_index=index, loop=loop, **config)
        server = loop.run_until_complete(
            loop.create_server(protocol_factory, sock=listeners[index], backlog=LISTEN_BACKLOG, ssl=ssl_context))
        loop.add_signal_handler(signal.SIGTERM, loop.stop)
        loop.add_reader(parent_alive_r, loop.stop)
    except Exception as error:
        ready_w.send(f"worker {index} failed to start: {error}")
        return
    ready_w.send(None)
    ready_w.close()
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


# -- a subprocess server for tests and benchmarks ----------------------------------

# loopback only: never through a proxy the environment may name
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LISTENING_LINE = re.compile(r"listening on (https?://(\[[^\]]+\]|[^:/\s]+):(\d+))")
_THROWAWAY_LINE = re.compile(r"self-signed certificate (\S+) \(")


class ServeProcess:
    """`python -m surge serve ... --port 0` in a subprocess (a context manager).

    Options are passed as keywords and become flags: body_size="4k" ->
    --body-size 4k, close=True -> --close, delay="exp:10ms", stall="1s",
    stall_every="5s", seed=7, app="demo", service_time="2ms", concurrency=4, tls=True (with cert=, key=, or a
    throwaway certificate); False/None are left out. After
    start(), .port and .url say where it listens and .listening_line is the
    line it printed (.cacert: the certificate to trust with tls, the throwaway
    one's path or cert=); .status() is the status path's JSON, .served() its
    request count and .routes() its per-route counts (demo app);
    stop() sends SIGINT and waits (kills after 5s), keeping .returncode
    .output (what it printed after the listening line) and .errors (stderr).
    """

    def __init__(self, host: str = "127.0.0.1", status_path: str = DEFAULT_STATUS_PATH,
                 start_timeout_s: float = 20.0, **options):
        self.host = host
        self.status_path = status_path
        self.start_timeout_s = start_timeout_s
        self.args = ["--host", host, "--port", str(options.pop("port", 0))]
        if status_path != DEFAULT_STATUS_PATH:
            self.args += ["--status-path", status_path]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                self.args.append(flag)
            elif value is not None and value is not False:
                self.args += [flag, str(value)]
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.cacert: str | None = options.get("cert")
        self.listening_line = ""
        self.returncode: int | None = None
        self.output = ""
        self.errors = ""

    def start(self) -> "ServeProcess":
        command = [sys.executable, "-m", "surge", "serve", *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._read_line(time.monotonic() + self.start_timeout_s)
        match = _LISTENING_LINE.search(line)
        if not match:
            self.stop()
            raise RuntimeError(f"`surge serve {' '.join(self.args)}` did not start "
                               f"(exit code {self.returncode}): {self.errors or line or 'no output'}")
        self.url, self.port = match.group(1), int(match.group(3))
        self.listening_line = line.strip()
        throwaway = _THROWAWAY_LINE.search(line)
        if throwaway:
            self.cacert = throwaway.group(1)
        return self

    def ssl_context(self):
        """A client context that trusts this server's certificate (None for http)."""
        if not (self.url or "").startswith("https://"):
            return None
        import ssl
        return ssl.create_default_context(cafile=self.cacert)

    def _read_line(self, deadline: float) -> str:
        fd = self.process.stdout.fileno()
        received = b""
        while b"\n" not in received:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                break
            readable, _, _ = select.select([fd], [], [], remaining_s)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                received += chunk
        return received.decode(errors="replace")

    def status(self, timeout_s: float = 5.0) -> dict:
        """The status path's JSON: requests, workers, started_at_monotonic_ns,
        stall_ns, stall_every_ns, app, service_time_ns, concurrency,
        capacity_per_s (None without --service-time), now_monotonic_ns (when it
        answered: rates from two reads need no client clock), and with the demo app routes
        (status answers are never delayed or stalled)."""
        opener = _DIRECT
        if self.url.startswith("https://"):
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                 urllib.request.HTTPSHandler(context=self.ssl_context()))
        with opener.open(self.url + self.status_path, timeout=timeout_s) as response:
            return json.loads(response.read())

    def served(self, timeout_s: float = 5.0) -> int:
        """Requests the server counted so far (its status path is not counted)."""
        return int(self.status(timeout_s)["requests"])

    def routes(self, timeout_s: float = 5.0) -> dict[str, int]:
        """Requests per route, e.g. {"POST /login": 3, ..., "other": 0} (demo app only)."""
        return self.status(timeout_s)["routes"]

    def stop(self) -> int:
        """SIGINT, wait up to 5s, then kill; returns the exit code."""
        if self.process is None:
            return 0
        if self.returncode is not None:
            return self.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = self.process.communicate(timeout=WORKER_STOP_TIMEOUT_S + 1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        self.output = (stdout or b"").decode(errors="replace")
        self.errors = (stderr or b"").decode(errors="replace").strip()
        self.returncode = self.process.returncode
        return self.returncode

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
