"""Issue 15 item 10: `surge serve` holds up against slow clients, header floods and
many connections: bounded memory per connection, an idle timeout, a bound on
connections per worker.  Every wait here is bounded (against a hang), none is a
timing assert."""
import socket
import time

import pytest

from tests.support.http_client import Client

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def closed_within(sock: socket.socket, bound_s: float) -> bool:
    """True once the peer closes (EOF or reset) within bound_s (reading what it sends)."""
    deadline = time.monotonic() + bound_s
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def worker_rss_kib(server) -> int:
    """The serving worker's resident memory (the child of the `surge serve` process)."""
    with open(f"/proc/{server.process.pid}/task/{server.process.pid}/children") as f:
        child = int(f.read().split()[0])
    with open(f"/proc/{child}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_slowloris_head_is_closed_after_the_idle_timeout(surge_server):
    server = surge_server(idle_timeout="1s")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
    closed = False
    for _ in range(100):                    # a byte every 0.1 s: bytes arrive, no request completes
        try:
            sock.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if closed_within(sock, 0.1):
            closed = True
            break
    sock.close()
    assert closed, "a head trickled for 10 s was never cut off"
    assert server.status()["closed_idle"] >= 1


def test_an_idle_keepalive_connection_is_closed_and_a_busy_one_is_not(surge_server):
    server = surge_server(idle_timeout="2s")
    idle = socket.create_connection(("127.0.0.1", server.port))
    busy = Client(server.port)
    for _ in range(50):                     # 5 s of requests, 0.1 s apart: always making progress
        busy.send(GET)
        assert busy.read_response()[0] == 200
        time.sleep(0.1)
    assert closed_within(idle, 10), "an idle connection was kept past its timeout"
    busy.send(GET)
    assert busy.read_response()[0] == 200   # still open, same connection
    busy.close()


def test_idle_timeout_zero_keeps_idle_connections(surge_server):
    server = surge_server(idle_timeout="0")
    idle = Client(server.port)
    time.sleep(1.5)
    idle.send(GET)
    assert idle.read_response()[0] == 200
    idle.close()


def test_held_answers_are_not_idle(surge_server):
    """A --delay longer than the idle timeout is the server's own doing: the answer still comes."""
    server = surge_server(idle_timeout="1s", delay="2500ms")
    client = Client(server.port)
    client.send(GET)
    assert client.read_response()[0] == 200
    client.close()


def test_a_header_flood_gets_431_and_bounded_memory(surge_server):
    server = surge_server(idle_timeout="5s")
    before = worker_rss_kib(server)
    floods = []
    for _ in range(20):                     # 20 connections, each 4 MiB of headers that never end
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answered = b""
        try:
            for _ in range(64):
                sock.sendall(b"X-Flood: " + b"y" * 65000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answered = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            pass
        floods.append(answered)
        sock.close()
    assert any(a.startswith(b"HTTP/1.1 431") for a in floods), floods[:3]
    grown = worker_rss_kib(server) - before
    assert grown < 20 * 1024, f"the worker grew {grown} KiB over 80 MiB of headers"
    client = Client(server.port)
    client.send(GET)
    assert client.read_response()[0] == 200


def test_a_client_that_never_reads_is_cut_off_with_its_buffers(surge_server):
    server = surge_server(idle_timeout="1s", body_size="16k")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(0.2)
    sent = 0
    try:
        for _ in range(2000):               # 32 MiB of answers asked for, none read
            sock.sendall(GET * 50)
            sent += 50
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    assert closed_within(sock, 15), "a client that never reads was kept"
    sock.close()
    status = server.status()
    assert status["closed_idle"] >= 1 and status["open_connections"] <= 1, status


def test_connections_past_the_bound_are_closed_and_the_rest_served(surge_server):
    server = surge_server(max_connections=20)
    kept = [Client(server.port) for _ in range(20)]
    extra = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    assert all(closed_within(sock, 5) for sock in extra), "connections past --max-connections stayed open"
    for sock in extra:
        sock.close()
    for client in kept:
        client.send(GET)
        assert client.read_response()[0] == 200
    for client in kept:
        client.close()
    assert server.status()["refused_over_limit"] >= 10


@pytest.mark.parametrize("value, fragment", [("-1", "--max-connections"), ("soon", "--idle-timeout")])
def test_bad_hardening_options_are_one_line_exit_2(value, fragment):
    from tests.helpers import run_surge
    flag = "--max-connections" if fragment == "--max-connections" else "--idle-timeout"
    run = run_surge("serve", "--port", "0", flag, value, json_result=False, timeout_s=20)
    lines = run.stderr.strip().splitlines()
    assert run.code == 2 and len(lines) == 1 and fragment in lines[0], run.stderr
