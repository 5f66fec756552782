"""Misbehaving HTTP/1.1 (and TLS) servers for fault tests.

    with FaultyServer("chunked") as server:
        run something against server.url (or 127.0.0.1:server.port)
        server.wait_for_requests(3)
    assert server.connections == 1

Each server listens on 127.0.0.1 on a free port, accepts in a daemon thread
and serves each connection in a thread of its own. Every blocking call has a
short timeout (POLL_S) after which the loop looks at the stop flag, so leaving
the `with` block stops and joins everything within about a second even with
clients still connected; nothing here can hang a test run.

Counters: `connections` (accepted), `requests_seen` (requests read in full:
head up to the blank line, plus a Content-Length body if there is one) and
`client_hellos` (TLS kinds: ClientHello records read in full).
Requests are split on "\\r\\n\\r\\n", so pipelined requests are read one after
another from the same buffer.

HTTP kinds (the `kind` argument; `KINDS` lists them):

  reset            reads one request, then closes with RST (SO_LINGER 0)
  truncate         "Content-Length: 100" and only 10 body bytes, then closes
  garbage          answers every request with b"hello garbage\\r\\n\\r\\n"
  close_each       a valid 200 with "Connection: close", then closes; one
                   request per connection (pipelined extras are not answered)
  close_delimited  a valid 200 with neither Content-Length nor chunking and no
                   Connection header: the body ends when the server closes
  chunked          keep-alive chunked 200s whose chunks carry extensions
                   ("5;foo=bar") and end with a trailer ("X-Trailer: 1")
  trickle          keep-alive 200s written one byte at a time, TCP_NODELAY,
                   `byte_delay_s` (default 2 ms) between bytes
  huge             keep-alive 200s with a `body_bytes` body (default 8 MiB),
                   written as fast as the client reads
  silent           reads (and counts) requests, never answers
  continue         "HTTP/1.1 100 Continue" first (before reading a request
                   body, so Expect: 100-continue clients work), then a 200
  no_body_status   keep-alive 204 and 304 alternately (per connection, 204
                   first), neither with a body or a Content-Length
  fuzzed           answers each request with a stream from tests/support/
                   http_fuzz.py (valid, mutated, garbage, or a head past the
                   64-KiB limit), written in random pieces; after any but a
                   valid keep-alive stream it closes politely
  shrinking        keep-alive 200s: the first `large_responses` (default 16)
                   on each connection carry a 1000-byte body, the rest an
                   empty one (responses smaller than any seen before)

TLS kinds (`TLS_KINDS`; `url` is https://): each reads the client's first
TLS record, the ClientHello, and counts it, then misbehaves; none ever sends
a valid byte of TLS:

  tls_garbage      answers the ClientHello with GARBAGE instead of a
                   ServerHello, then closes politely
  tls_reset        answers the ClientHello with an RST: the connection dies
                   mid-handshake
  tls_silent       never answers the ClientHello; reads and discards until
                   the client gives up (a handshake timeout)

Closing servers (truncate, close_each, close_delimited) close politely: FIN
after the response, then they read and discard what the client still sends
for up to LINGER_S, because closing with unread input would send an RST that
can destroy the response before the client reads it.

The normal 200 body is `body` (default b"hello"), except for `chunked`,
whose body is always b"hello, world".
"""

from __future__ import annotations

import socket
import struct
import threading
import time

__all__ = ["FaultyServer", "KINDS", "TLS_KINDS", "CHUNKED_BODY", "GARBAGE", "POLL_S", "LINGER_S"]

KINDS = (
    "reset", "truncate", "garbage", "close_each", "close_delimited", "chunked",
    "trickle", "huge", "silent", "continue", "no_body_status", "shrinking", "fuzzed",
)
TLS_KINDS = ("tls_garbage", "tls_reset", "tls_silent")
POLL_S = 0.05              # longest any loop blocks before looking at the stop flag
LINGER_S = 1.0             # polite close: how long to drain the client's leftovers
JOIN_TIMEOUT_S = 5.0       # exit waits this long for all threads, then complains
MAX_HEAD_BYTES = 64 * 1024  # a "request" head larger than this drops the connection
TLS_HANDSHAKE_RECORD = 0x16  # the content type of a TLS record carrying a ClientHello

GARBAGE = b"hello garbage\r\n\r\n"
CHUNKED_BODY = b"hello, world"
_CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Trailer: X-Trailer\r\n"
    b"\r\n"
    b"5;foo=bar\r\nhello\r\n"
    b"7;baz\r\n, world\r\n"
    b"0\r\nX-Trailer: 1\r\n\r\n"
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
_NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: "surge"\r\n\r\n'
_TRUNCATED = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"0123456789"


def _ok_response(body: bytes, extra_headers: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + b"Content-Length: %d\r\n" % len(body) + extra_headers + b"\r\n" + body)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


class _Connection:
    """One accepted socket: buffered, stop-aware reading and writing."""

    def __init__(self, sock: socket.socket, server: "FaultyServer"):
        self.sock = sock
        self.server = server
        self.buffer = bytearray()

    @property
    def stopping(self) -> bool:
        return self.server._stop.is_set()

    def _fill(self) -> bool:
        """Receive more input; False on EOF, error or stop."""
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buffer += data
            return True
        return False

    def read_head(self) -> bytes | None:
        """The next request's head (through the blank line), or None."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end + 4])
                del self.buffer[:end + 4]
                return head
            if len(self.buffer) > MAX_HEAD_BYTES or not self._fill():
                return None

    def read_body(self, length_bytes: int) -> bool:
        while len(self.buffer) < length_bytes:
            if not self._fill():
                return False
        del self.buffer[:length_bytes]
        return True

    def read_exactly(self, length_bytes: int) -> bytes | None:
        """The next `length_bytes` of input, or None on EOF, error or stop."""
        while len(self.buffer) < length_bytes:
            if not self._fill():
                return None
        data = bytes(self.buffer[:length_bytes])
        del self.buffer[:length_bytes]
        return data

    def read_client_hello(self) -> bool:
        """Read one TLS handshake record (5-byte header: type, version, length)
        and count it; False if the input ends first or is not TLS."""
        header = self.read_exactly(5)
        if header is None or header[0] != TLS_HANDSHAKE_RECORD:
            return False
        if self.read_exactly(int.from_bytes(header[3:5], "big")) is None:
            return False
        self.server._count_client_hello()
        return True

    def drain(self) -> None:
        """Read and discard until the client closes or the server stops."""
        while self._fill():
            self.buffer.clear()

    def read_request(self) -> bytes | None:
        """Head of the next request, its body consumed and the request counted."""
        head = self.read_head()
        if head is None or not self.read_body(_content_length(head)):
            return None
        self.server._count_request()
        return head

    def send(self, data: bytes) -> bool:
        """Write all of `data`; False if the client went away or we are stopping."""
        view = memoryview(data)
        while view:
            if self.stopping:
                return False
            try:
                sent = self.sock.send(view)
            except socket.timeout:
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def close_politely(self) -> None:
        """FIN after what was sent, then drain leftovers for up to LINGER_S."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + LINGER_S
        while time.monotonic() < deadline and not self.stopping:
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def reset(self) -> None:
        """Close with RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


# -- behaviours: one function per kind, each serving one connection -----------

def _serve_reset(conn: _Connection) -> None:
    if conn.read_request() is not None:
        conn.reset()


def _serve_truncate(conn: _Connection) -> None:
    if conn.read_request() is not None and conn.send(_TRUNCATED):
        conn.close_politely()


def _serve_garbage(conn: _Connection) -> None:
    while conn.read_request() is not None:
        if not conn.send(GARBAGE):
            return


def _serve_close_each(conn: _Connection) -> None:
    response = _ok_response(conn.server.body, b"Connection: close\r\n")
    if conn.read_request() is not None and conn.send(response):
        conn.close_politely()


def _serve_close_delimited(conn: _Connection) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + conn.server.body
    if conn.read_request() is not None and conn.send(response):
        conn.close_politely()


def _serve_chunked(conn: _Connection) -> None:
    while conn.read_request() is not None:
        if not conn.send(_CHUNKED_RESPONSE):
            return


def _serve_trickle(conn: _Connection) -> None:
    # Without TCP_NODELAY, Nagle would coalesce the bytes into a few segments.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    response = _ok_response(conn.server.body)
    while conn.read_request() is not None:
        for index in range(len(response)):
            if not conn.send(response[index:index + 1]):
                return
            if conn.server._stop.wait(conn.server.byte_delay_s):
                return


def _serve_huge(conn: _Connection) -> None:
    while conn.read_request() is not None:
        if not conn.send(conn.server._huge_response):
            return


def _serve_silent(conn: _Connection) -> None:
    while conn.read_request() is not None:
        pass


def _serve_continue(conn: _Connection) -> None:
    response = _ok_response(conn.server.body)
    while True:
        head = conn.read_head()
        if head is None or not conn.send(_CONTINUE):
            return
        if not conn.read_body(_content_length(head)):
            return
        conn.server._count_request()
        if not conn.send(response):
            return


def _serve_no_body_status(conn: _Connection) -> None:
    answered = 0
    while conn.read_request() is not None:
        if not conn.send(_NO_CONTENT if answered % 2 == 0 else _NOT_MODIFIED):
            return
        answered += 1


def _serve_shrinking(conn: _Connection) -> None:
    large, small = _ok_response(b"x" * 1000), _ok_response(b"")
    answered = 0
    while conn.read_request() is not None:
        if not conn.send(large if answered < conn.server.large_responses else small):
            return
        answered += 1


def _serve_tls_garbage(conn: _Connection) -> None:
    if conn.read_client_hello() and conn.send(GARBAGE):
        conn.close_politely()


def _serve_tls_reset(conn: _Connection) -> None:
    if conn.read_client_hello():
        conn.reset()


def _serve_tls_silent(conn: _Connection) -> None:
    if conn.read_client_hello():
        conn.drain()


def _serve_fuzzed(conn: _Connection) -> None:
    import random

    from tests.support.http_fuzz import responses, splits
    with conn.server._lock:
        rng = random.Random(conn.server._connections)       # each connection its own, repeatable stream
    stream = responses(rng)
    while conn.read_request() is not None:
        kind, data, statuses = next(stream)
        for piece in splits(rng, data):
            if not conn.send(piece):
                return
        if kind != "valid" or b"connection: close" in data.lower() or b"HTTP/1.0" in data:
            conn.close_politely()
            return


_BEHAVIOURS = {
    "reset": _serve_reset,
    "truncate": _serve_truncate,
    "garbage": _serve_garbage,
    "close_each": _serve_close_each,
    "close_delimited": _serve_close_delimited,
    "chunked": _serve_chunked,
    "trickle": _serve_trickle,
    "huge": _serve_huge,
    "silent": _serve_silent,
    "continue": _serve_continue,
    "no_body_status": _serve_no_body_status,
    "shrinking": _serve_shrinking,
    "fuzzed": _serve_fuzzed,
    "tls_garbage": _serve_tls_garbage,
    "tls_reset": _serve_tls_reset,
    "tls_silent": _serve_tls_silent,
}
assert set(_BEHAVIOURS) == set(KINDS + TLS_KINDS)


class FaultyServer:
    """A misbehaving server of one `kind` (see the module docstring), as a
    context manager. `port`, `url`, `connections`, `requests_seen`,
    `client_hellos`, `wait_for_requests()` and `wait_for_client_hellos()`
    are valid once entered."""

    def __init__(self, kind: str, *, body: bytes = b"hello", byte_delay_s: float = 0.002,
                 body_bytes: int = 8 * 1024 * 1024, large_responses: int = 16):
        if kind not in _BEHAVIOURS:
            raise ValueError(f"kind: must be one of {', '.join(KINDS + TLS_KINDS)}; got {kind!r}")
        self.kind = kind
        self.body = body
        self.byte_delay_s = byte_delay_s
        self.body_bytes = body_bytes
        self.large_responses = large_responses
        self._huge_response = _ok_response(b"x" * body_bytes) if kind == "huge" else b""
        self.port: int | None = None
        self._lock = threading.Lock()
        self._connections = 0
        self._requests_seen = 0
        self._client_hellos = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connection_threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.kind.startswith("tls_") else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return self._requests_seen

    @property
    def client_hellos(self) -> int:
        with self._lock:
            return self._client_hellos

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """True once `requests_seen` >= count; False after timeout_s.
        (Handlers count in their own threads, a moment after the client sent.)"""
        return self._wait_until(lambda: self.requests_seen >= count, timeout_s)

    def wait_for_client_hellos(self, count: int, timeout_s: float = 5.0) -> bool:
        """True once `client_hellos` >= count; False after timeout_s."""
        return self._wait_until(lambda: self.client_hellos >= count, timeout_s)

    @staticmethod
    def _wait_until(done, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _count_request(self) -> None:
        with self._lock:
            self._requests_seen += 1

    def _count_client_hello(self) -> None:
        with self._lock:
            self._client_hellos += 1

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "FaultyServer":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1024)
        self._listener.settimeout(POLL_S)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"faulty-{self.kind}-accept", daemon=True)
        self._accept_thread.start()
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self._stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        self._accept_thread.join(JOIN_TIMEOUT_S)
        self._listener.close()
        for thread in list(self._connection_threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._connection_threads + [self._accept_thread] if t.is_alive()]
        if stuck and exc_type is None:
            raise RuntimeError(f"faulty server threads still running after {JOIN_TIMEOUT_S:g} s: {stuck}")

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(POLL_S)
            with self._lock:
                self._connections += 1
                number = self._connections
            thread = threading.Thread(target=self._serve, args=(sock,),
                                      name=f"faulty-{self.kind}-{number}", daemon=True)
            # Forget finished threads so a long run with many connections stays small.
            self._connection_threads = [t for t in self._connection_threads if t.is_alive()]
            self._connection_threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            _BEHAVIOURS[self.kind](_Connection(sock, self))
        finally:
            sock.close()  # harmless after reset(), which already closed it
