"""The start barrier: `--barrier HOST:PORT` for launchers that cannot know the
start time in advance (a Kubernetes Indexed Job's pods start when they are
scheduled).

Segment 0 listens on PORT; every other segment connects to HOST:PORT (retrying
while segment 0 is not up yet) and speaks one line at a time:

    follower -> 0:  SURGE-BARRIER/1 HELLO <index> <count> <plan_hash> <run_id or ->
    follower -> 0:  READY                          (its workers are connected)
    0 -> follower:  START <unix_ns> <run_id> <sent_unix_ns>
    0 -> follower:  REFUSED <reason>               (another count, plan or run id; a duplicate index)
    0 -> follower:  ABORT <reason>                 (segment 0 gave up: its timeout, a signal)

When its own workers and all N-1 others are ready, segment 0 sends START with
an instant START_AHEAD_NS from now, and everyone starts on it (each converts
the wall-clock instant to its own CLOCK_MONOTONIC, so the machines' clocks
must agree: NTP; a follower whose clock differs from segment 0's by more than
CLOCK_WARN_NS says so).  The run id is the given one or derived from that
instant (surge.run.start.derive_run_id).

The socket work runs in one thread per instance; the supervisor polls
`BarrierStart.poll()` from its loop, so signals and dying workers are handled
as ever while it waits.
"""
from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time

from surge.run.segment import Segment
from surge.run.start import (START_DELAY_NS, StartDecision, StartError, derive_run_id, format_instant,
                             wall_minus_monotonic_ns)

PROTOCOL = "SURGE-BARRIER/1"
START_AHEAD_NS = 500_000_000        # the announced instant: every segment has it well before (a LAN, a busy node)
RETRY_S = 0.2                       # a follower's pause between connect attempts
CLOCK_WARN_NS = 50_000_000          # a follower's clock this far from segment 0's is worth a line
SEND_TIMEOUT_S = 5.0
MAX_LINE = 1024


def describe_timeout(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def listen_address(host: str) -> tuple[int, str]:
    """(family, address to bind) for segment 0: HOST itself when it is an IP
    literal, else every address (a pod cannot bind the Service name it is reached by)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        if socket.has_dualstack_ipv6():
            return socket.AF_INET6, "::"
        return socket.AF_INET, "0.0.0.0"
    return (socket.AF_INET6, host) if literal.version == 6 else (socket.AF_INET, host)


class BarrierStart:
    """The start sync of `--barrier` (see surge.run.start for the interface)."""

    def __init__(self, address: tuple[str, int], segment: Segment, fingerprint: str, run_id: str | None,
                 timeout_s: float, say=None):
        self.host, self.port = address
        self.segment = segment
        self.fingerprint = fingerprint
        self.run_id = run_id
        self.timeout_s = timeout_s
        self.say = say or (lambda text: None)
        self.where = f"{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}"
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._decision: StartDecision | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None

    # ---- the StartSync interface ---------------------------------------------------------
    def check_early(self) -> None:
        pass

    def open(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        if self.segment.index == 0:
            self._listener = self._listen()
            target = self._lead
            self.say(f"surge run: segment {self.segment} waits at the barrier on port {self.port} "
                     f"for {self.segment.count - 1} other segment{'s' if self.segment.count != 2 else ''}")
        else:
            target = self._follow
            self.say(f"surge run: segment {self.segment} joins the barrier at {self.where}")
        self._thread = threading.Thread(target=self._guarded(target), name="surge-barrier", daemon=True)
        self._thread.start()

    def ready(self) -> None:
        self._ready.set()

    def poll(self) -> StartDecision | None:
        with self._lock:
            if self._error is not None:
                raise StartError(self._error)
            return self._decision

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._listener is not None:
            self._listener.close()

    # ---- shared ------------------------------------------------------------------------------
    def _guarded(self, body):
        def run():
            try:
                body()
            except Exception as exc:  # noqa: BLE001 - a bug must end the run with one line, not hang it
                self._fail(f"--barrier {self.where}: internal error: {type(exc).__name__}: {exc}")
        return run

    def _fail(self, message: str) -> None:
        with self._lock:
            if self._error is None and self._decision is None:
                self._error = message

    def _decide(self, start_unix_ns: int, run_id: str) -> None:
        offset_ns = wall_minus_monotonic_ns()
        start_ns = start_unix_ns - offset_ns
        earliest_ns = time.monotonic_ns() + START_DELAY_NS
        if start_ns < earliest_ns:
            # START came late (a slow network or a throttled pod): go now, and say when, so the
            # result's started_at_unix_ns is this part's real start and merge aligns it by the difference
            start_ns, start_unix_ns = earliest_ns, earliest_ns + offset_ns
        with self._lock:
            self._decision = StartDecision(start_ns, start_unix_ns, run_id)

    def _left_s(self) -> float:
        return self._deadline - time.monotonic()

    # ---- segment 0 ------------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        family, bind_host = listen_address(self.host)
        try:
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and bind_host == "::":
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind((bind_host, self.port))
            listener.listen(max(16, self.segment.count))
        except OSError as exc:
            listener.close()
            raise StartError(f"--barrier {self.where}: segment 0 cannot listen on port {self.port}: "
                             f"{exc.strerror or exc}") from None
        listener.setblocking(False)
        return listener

    def _lead(self) -> None:
        peers: dict[socket.socket, _Peer] = {}
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._closing.is_set():
                ready_indices = {p.index for p in peers.values() if p.ready}
                if self._ready.is_set() and len(ready_indices) == self.segment.count - 1:
                    self._announce([s for s, p in peers.items() if p.ready])
                    return
                if self._left_s() <= 0:
                    self._fail(self._missing_message(peers))
                    self._broadcast(peers, f"ABORT segment 0 gave up: {self._error}")
                    return
                for key, _ in selector.select(min(0.05, max(self._left_s(), 0.001))):
                    if key.fileobj is self._listener:
                        self._accept(selector, peers)
                    else:
                        self._read(selector, peers, key.fileobj)
            self._broadcast(peers, "ABORT segment 0 stopped before the start")
        finally:
            for sock in peers:
                sock.close()
            selector.close()

    def _accept(self, selector, peers) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.settimeout(SEND_TIMEOUT_S)     # reads come after the selector says readable: they do not wait
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peers[sock] = _Peer()
        selector.register(sock, selectors.EVENT_READ)

    def _drop(self, selector, peers, sock) -> None:
        selector.unregister(sock)
        peers.pop(sock, None)
        sock.close()

    def _read(self, selector, peers, sock) -> None:
        peer = peers[sock]
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError, socket.timeout):
            return
        except OSError:
            data = b""
        if not data or len(peer.buffer) + len(data) > MAX_LINE * 4:
            self._drop(selector, peers, sock)         # gone: if it was ready, it is missing again
            return
        peer.buffer += data
        while b"\n" in peer.buffer:
            line, peer.buffer = peer.buffer.split(b"\n", 1)
            refusal = self._on_line(peers, peer, line.decode("ascii", "replace").strip())
            if refusal:
                _send_line(sock, f"REFUSED {refusal}")
                self._drop(selector, peers, sock)
                return

    def _on_line(self, peers, peer, line: str) -> str | None:
        """A follower's line; returns why it is refused, or None."""
        words = line.split()
        if peer.index is None:
            if len(words) != 6 or words[0] != PROTOCOL or words[1] != "HELLO":
                return f"not a {PROTOCOL} HELLO (another program, or another surge version?)"
            index_text, count_text, plan_hash, run_id = words[2:]
            if not (index_text.isdigit() and count_text.isdigit()):
                return "a HELLO without numbers"
            index, count = int(index_text), int(count_text)
            if count != self.segment.count:
                return (f"segment {index} was started with --segment {index}/{count}, segment 0 with "
                        f"{self.segment}: every segment needs the same N")
            if not 1 <= index < count:
                return f"segment index {index} is not a follower's (1 to {count - 1})"
            if plan_hash != self.fingerprint:
                return (f"segment {index}'s plan or load options differ from segment 0's (plan hash {plan_hash}, "
                        f"segment 0 has {self.fingerprint})")
            theirs = None if run_id == "-" else run_id
            if theirs != self.run_id:
                return (f"segment {index}'s --run-id ({theirs or 'none'}) differs from segment 0's "
                        f"({self.run_id or 'none'})")
            if any(other.index == index for other in peers.values()):
                return f"segment {index} is already at the barrier (two instances with --segment {index}/{count}?)"
            peer.index = index
            return None
        if words == ["READY"]:
            peer.ready = True
            return None
        return f"unexpected line {line[:40]!r}"

    def _announce(self, followers) -> None:
        start_unix_ns = time.time_ns() + START_AHEAD_NS
        run_id = self.run_id or derive_run_id(start_unix_ns, self.fingerprint)
        for sock in followers:
            _send_line(sock, f"START {start_unix_ns} {run_id} {time.time_ns()}")
        self._decide(start_unix_ns, run_id)
        self.say(f"surge run: all {self.segment.count} segments ready; starting at {format_instant(start_unix_ns)}")

    def _broadcast(self, peers, line: str) -> None:
        for sock in peers:
            _send_line(sock, line)

    def _missing_message(self, peers) -> str:
        arrived = {p.index for p in peers.values() if p.index is not None}
        ready = {p.index for p in peers.values() if p.ready}
        missing = [i for i in range(1, self.segment.count) if i not in ready]
        waiting = "" if self._ready.is_set() else "; segment 0's own connections were not ready either"
        unready = [i for i in missing if i in arrived]
        names = ", ".join(str(i) for i in missing)
        detail = f" ({', '.join(map(str, unready))} connected but not ready)" if unready else ""
        if not missing:
            return (f"--barrier {self.where}: segment 0's own connections were not ready within "
                    f"{describe_timeout(self.timeout_s)}")
        return (f"--barrier {self.where}: segment{'s' if len(missing) > 1 else ''} {names} of "
                f"{self.segment.count} did not arrive within {describe_timeout(self.timeout_s)}{detail}{waiting}")

    # ---- the other segments -----------------------------------------------------------------
    def _follow(self) -> None:
        sock = self._connect()
        if sock is None:
            return
        try:
            reader = _LineReader(sock)
            _send_line(sock, f"{PROTOCOL} HELLO {self.segment.index} {self.segment.count} {self.fingerprint} "
                             f"{self.run_id or '-'}")
            sent_ready = False
            while not self._closing.is_set():
                if not sent_ready and self._ready.is_set():
                    _send_line(sock, "READY")
                    sent_ready = True
                if self._left_s() <= 0:
                    self._fail(f"--barrier {self.where}: no start from segment 0 within "
                               f"{describe_timeout(self.timeout_s)} (it waits until all {self.segment.count} "
                               f"segments are ready)")
                    return
                line = reader.line(min(0.05, max(self._left_s(), 0.001)))
                if line is None:
                    continue
                if line == "":
                    self._fail(f"--barrier {self.where}: segment 0 closed the connection before the start")
                    return
                word, _, rest = line.partition(" ")
                if word == "START":
                    self._on_start(rest)
                    return
                if word in ("REFUSED", "ABORT"):
                    self._fail(f"--barrier {self.where}: {rest}")
                    return
                self._fail(f"--barrier {self.where}: segment 0 said {line[:40]!r}")
                return
        finally:
            sock.close()

    def _connect(self) -> socket.socket | None:
        last = "no answer"
        while not self._closing.is_set():
            left = self._left_s()
            if left <= 0:
                self._fail(f"--barrier {self.where}: segment 0 not reachable within "
                           f"{describe_timeout(self.timeout_s)} ({last})")
                return None
            try:
                sock = socket.create_connection((self.host, self.port), timeout=min(2.0, left))
            except socket.gaierror as exc:
                last = f"cannot resolve {self.host}: {exc.strerror}"
            except OSError as exc:
                last = exc.strerror or str(exc)
                if isinstance(exc, ConnectionRefusedError):
                    last = "connection refused"
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(SEND_TIMEOUT_S)
                return sock
            self._closing.wait(RETRY_S)
        return None

    def _on_start(self, rest: str) -> None:
        words = rest.split()
        if len(words) != 3 or not words[0].isdigit() or not words[2].isdigit():
            self._fail(f"--barrier {self.where}: segment 0 sent a START that does not parse")
            return
        start_unix_ns, run_id, sent_unix_ns = int(words[0]), words[1], int(words[2])
        skew_ns = time.time_ns() - sent_unix_ns
        if abs(skew_ns) > CLOCK_WARN_NS:
            self.say(f"surge run: this machine's clock differs from segment 0's by about {skew_ns / 1e6:+.0f} ms "
                     f"(network delay included): the start is off by as much (synchronise the clocks, e.g. NTP)")
        self._decide(start_unix_ns, run_id)


class _Peer:
    """A follower as segment 0 sees it."""

    def __init__(self):
        self.buffer = b""
        self.index: int | None = None
        self.ready = False


class _LineReader:
    """Lines from a blocking socket, each read waiting at most a given time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def line(self, wait_s: float) -> str | None:
        """The next line; None when none came within wait_s; '' at the end of the stream."""
        while b"\n" not in self.buffer:
            self.sock.settimeout(wait_s)
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, BlockingIOError, InterruptedError):
                return None
            except OSError:
                return ""
            if not data or len(self.buffer) > MAX_LINE * 4:
                return ""
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("ascii", "replace").strip()


def _send_line(sock: socket.socket, line: str) -> None:
    """One line, whole; a peer already gone is not an error here (it is found by its reads)."""
    try:
        sock.settimeout(SEND_TIMEOUT_S)
        sock.sendall(line.encode("ascii", "replace") + b"\n")
    except OSError:
        pass
