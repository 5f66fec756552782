"""Self-test of the misbehaving servers: each one, checked with a raw socket,
really does what its fault tests will rely on."""

import socket
import time

import pytest

from .faulty import CHUNKED_BODY, GARBAGE, KINDS, TLS_KINDS, FaultyServer

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
CLIENT_TIMEOUT_S = 5.0


def connect(server: FaultyServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S)
    sock.settimeout(CLIENT_TIMEOUT_S)
    return sock


def read_until_eof(sock: socket.socket) -> bytes:
    received = bytearray()
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            return bytes(received)
        received += data
    raise AssertionError(f"no EOF within {CLIENT_TIMEOUT_S} s; got {bytes(received[:200])!r}")


def read_until(sock: socket.socket, done) -> bytes:
    """Receive until done(received) is true."""
    received = bytearray()
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not done(received):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {bytes(received[:200])!r}")
        data = sock.recv(1 << 20)
        if not data:
            raise AssertionError(f"EOF early; got {bytes(received[:200])!r}")
        received += data
    return bytes(received)


def split_head(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, rest = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, rest


def all_threads_finished(server: FaultyServer) -> bool:
    """Exit joined every thread (it raises if one is still running after its
    join timeout): checked by state, not by a wall-clock bound a busy machine breaks."""
    return not any(t.is_alive() for t in server._connection_threads + [server._accept_thread])


def test_every_kind_starts_and_stops():
    for kind in KINDS + TLS_KINDS:
        scheme = "https" if kind in TLS_KINDS else "http"
        with FaultyServer(kind) as server:
            assert server.url == f"{scheme}://127.0.0.1:{server.port}/"
        assert all_threads_finished(server), kind
        assert server._listener.fileno() == -1, kind          # closed


def test_unknown_kind_is_refused_with_the_list():
    with pytest.raises(ValueError, match="must be one of reset, truncate"):
        FaultyServer("teapot")


def test_reset_sends_rst_after_reading_the_request():
    with FaultyServer("reset") as server, connect(server) as sock:
        sock.sendall(GET)
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
        assert server.requests_seen == 1
        assert server.connections == 1


def test_truncate_declares_100_bytes_and_sends_10():
    with FaultyServer("truncate") as server, connect(server) as sock:
        sock.sendall(GET)
        status_line, headers, body = split_head(read_until_eof(sock))
        assert status_line == "HTTP/1.1 200 OK"
        assert headers["content-length"] == "100"
        assert len(body) == 10


def test_garbage_answers_every_request_with_non_http():
    with FaultyServer("garbage") as server, connect(server) as sock:
        sock.sendall(GET * 2)
        received = read_until(sock, lambda data: len(data) >= 2 * len(GARBAGE))
        assert received == GARBAGE * 2
        assert server.wait_for_requests(2)


def test_close_each_answers_one_request_then_closes():
    with FaultyServer("close_each") as server:
        for _ in range(2):
            with connect(server) as sock:
                sock.sendall(GET * 2)  # the pipelined second request is not answered
                status_line, headers, body = split_head(read_until_eof(sock))
                assert status_line == "HTTP/1.1 200 OK"
                assert headers["connection"] == "close"
                assert body == b"hello"
        assert server.connections == 2
        assert server.requests_seen == 2


def test_close_delimited_body_ends_at_eof():
    with FaultyServer("close_delimited", body=b"x" * 5000) as server, connect(server) as sock:
        sock.sendall(GET)
        status_line, headers, body = split_head(read_until_eof(sock))
        assert status_line == "HTTP/1.1 200 OK"
        assert "content-length" not in headers
        assert "transfer-encoding" not in headers
        assert "connection" not in headers
        assert body == b"x" * 5000


def test_polite_close_still_delivers_the_response_when_client_keeps_sending():
    # Unread pipelined input at close() would make the kernel send RST; the
    # server drains instead, so the client reads a complete response and a FIN.
    with FaultyServer("close_each") as server, connect(server) as sock:
        sock.sendall(GET * 50)
        status_line, _headers, body = split_head(read_until_eof(sock))
        assert status_line == "HTTP/1.1 200 OK" and body == b"hello"


CHUNKED_END = b"0\r\nX-Trailer: 1\r\n\r\n"


def test_chunked_uses_extensions_and_trailers_and_answers_pipelined_requests():
    with FaultyServer("chunked") as server, connect(server) as sock:
        sock.sendall(GET * 3)  # one write: three pipelined requests
        received = read_until(sock, lambda data: data.count(CHUNKED_END) == 3)
        responses = received.split(CHUNKED_END)[:3]
        for response in responses:
            status_line, headers, chunked_body = split_head(response + CHUNKED_END)
            assert status_line == "HTTP/1.1 200 OK"
            assert headers["transfer-encoding"] == "chunked"
            assert b"5;foo=bar\r\n" in chunked_body
            assert chunked_body.endswith(b"0\r\nX-Trailer: 1\r\n\r\n")
            assert decode_chunked(chunked_body) == CHUNKED_BODY
        assert server.requests_seen == 3
        assert server.connections == 1


def decode_chunked(data: bytes) -> bytes:
    """A strict little decoder, so the test proves the framing is valid."""
    body = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            assert data.endswith(b"\r\n\r\n") or data == b"\r\n"
            return bytes(body)
        body += data[:size]
        assert data[size:size + 2] == b"\r\n"
        data = data[size + 2:]


def test_trickle_writes_one_byte_at_a_time():
    byte_delay_s = 0.005
    with FaultyServer("trickle", byte_delay_s=byte_delay_s) as server, connect(server) as sock:
        started_s = time.monotonic()
        sock.sendall(GET)
        pieces = []
        expected_bytes = len(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
        while sum(map(len, pieces)) < expected_bytes:
            pieces.append(sock.recv(65536))
            assert pieces[-1], "EOF before the whole response"
        elapsed_s = time.monotonic() - started_s
        response = b"".join(pieces)
        assert response.endswith(b"\r\n\r\nhello")
        # Each recv wakes for the byte that just arrived; a loaded machine may
        # coalesce a few, but most reads must be single bytes.
        assert sum(len(piece) == 1 for piece in pieces) > expected_bytes // 2
        assert elapsed_s >= (expected_bytes - 1) * byte_delay_s * 0.9


def test_huge_sends_the_whole_body_and_keeps_the_connection():
    body_bytes = 3 * 1024 * 1024 + 7
    with FaultyServer("huge", body_bytes=body_bytes) as server, connect(server) as sock:
        for _ in range(2):
            sock.sendall(GET)
            received = read_until(sock, lambda data: b"\r\n\r\n" in data and
                                  len(data) - data.index(b"\r\n\r\n") - 4 >= body_bytes)
            _status_line, headers, body = split_head(received)
            assert int(headers["content-length"]) == body_bytes
            assert len(body) == body_bytes
        assert server.requests_seen == 2 and server.connections == 1


def test_huge_defaults_to_8_mib():
    assert FaultyServer("huge").body_bytes == 8 * 1024 * 1024


def test_silent_reads_but_never_answers():
    with FaultyServer("silent") as server, connect(server) as sock:
        sock.sendall(GET * 2)
        assert server.wait_for_requests(2)
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1024)


def test_exit_does_not_wait_for_clients_that_stay_connected():
    with FaultyServer("silent") as server:
        sock = connect(server)
        sock.sendall(GET)
        assert server.wait_for_requests(1)
    # the client is still connected, yet every server thread has ended
    assert sock.fileno() != -1 and all_threads_finished(server)
    sock.close()


def test_continue_sends_100_before_the_200():
    with FaultyServer("continue") as server, connect(server) as sock:
        sock.sendall(GET)
        received = read_until(sock, lambda data: data.endswith(b"hello"))
        assert received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


def test_continue_comes_before_the_request_body_is_read():
    with FaultyServer("continue") as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert read_until(sock, lambda data: data.endswith(b"\r\n\r\n")) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert server.requests_seen == 0  # the body has not arrived yet
        sock.sendall(b"data")
        received = read_until(sock, lambda data: data.endswith(b"hello"))
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert server.requests_seen == 1


def test_no_body_status_alternates_204_and_304_without_length():
    with FaultyServer("no_body_status") as server, connect(server) as sock:
        sock.sendall(GET * 3)
        received = read_until(sock, lambda data: data.count(b"\r\n\r\n") == 3)
        responses = received.split(b"\r\n\r\n")[:3]
        assert [r.split(b"\r\n")[0] for r in responses] == [
            b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 204 No Content"]
        assert b"content-length" not in received.lower()
        assert server.wait_for_requests(3)


def test_pipelined_requests_with_bodies_are_read_exactly():
    post = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello\r\n\r\nxy"
    with FaultyServer("chunked") as server, connect(server) as sock:
        # The body contains the head terminator: only Content-Length framing gets this right.
        sock.sendall(post + GET)
        received = read_until(sock, lambda data: data.count(CHUNKED_END) == 2)
        assert received.count(b"HTTP/1.1 200 OK") == 2
        assert server.requests_seen == 2


def test_requests_split_across_writes_are_reassembled():
    with FaultyServer("chunked") as server, connect(server) as sock:
        for byte in GET:
            sock.sendall(bytes([byte]))
        read_until(sock, lambda data: data.endswith(CHUNKED_END))
        assert server.requests_seen == 1
