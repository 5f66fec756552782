"""`surge serve` over real loopback sockets: framing, options, counting, errors."""
import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.http_client import get, head

STATUS_PATH = "/__surge/status"


def test_keep_alive_serves_many_requests_on_one_connection(surge_server, client_factory):
    server = surge_server()
    client = client_factory(server.port)
    for _ in range(5):
        client.send(get())
        status, headers, body = client.read_response()
        assert (status, body) == (200, b"")
        assert headers["content-length"] == "0"
        assert "connection" not in headers
    assert server.served() == 5


def test_pipelined_requests_are_answered_in_order(surge_server, client_factory):
    server = surge_server(body_size=3)
    client = client_factory(server.port)
    # a mix whose answers differ, so the order is visible: GET has a body, HEAD
    # has none, and each status answer counts the requests before it
    kinds = ["get", "head", "get", "status", "get"] * 4
    requests = {"get": get(), "head": head(), "status": get(STATUS_PATH)}
    client.send(*(requests[kind] for kind in kinds))
    counted = 0
    for kind in kinds:
        status, headers, body = client.read_response(head_request=(kind == "head"))
        assert status == 200
        if kind == "status":
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["requests"] == counted
        else:
            assert headers["content-length"] == "3"
            assert body == (b"xxx" if kind == "get" else b"")
            counted += 1
    assert counted == 16
    assert server.served() == 16


def test_a_client_that_reads_late_gets_every_answer(surge_server, client_factory):
    # 2000 pipelined requests ask for 32MiB: more than the server writes per read,
    # so it has to pause and resume; the half-close must wait for the answers
    server = surge_server(body_size="16k")
    client = client_factory(server.port)
    client.send(*[get()] * 2000, get(STATUS_PATH))
    client.sock.shutdown(socket.SHUT_WR)
    for _ in range(2000):
        status, _, body = client.read_response()
        assert status == 200 and len(body) == 16384
    assert json.loads(client.read_response()[2])["requests"] == 2000
    assert client.at_eof()


def test_request_bodies_are_skipped_with_content_length_and_chunked(surge_server, client_factory):
    server = surge_server()
    client = client_factory(server.port)
    client.send(
        b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        get())
    for _ in range(3):
        assert client.read_response()[0] == 200
    # a request split into single bytes is framed the same way
    for byte in b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n":
        client.send(bytes([byte]))
    assert client.read_response()[0] == 200
    assert server.served() == 4


def test_body_size_sets_content_length_and_body(surge_server, client_factory):
    server = surge_server(body_size="4k")
    client = client_factory(server.port)
    client.send(get())
    status, headers, body = client.read_response()
    assert status == 200
    assert headers["content-length"] == "4096"
    assert body == b"x" * 4096


def test_status_option_sets_the_status_code(surge_server, client_factory):
    server = surge_server(status=503)
    client = client_factory(server.port)
    client.send(get(), get())
    assert client.read_response()[0] == 503
    assert client.read_response()[0] == 503
    # the status path answers 200 whatever --status says
    assert server.served() == 2


def test_delay_holds_each_response_and_keeps_order(surge_server, client_factory):
    server = surge_server(delay="50ms")
    client = client_factory(server.port)
    started_s = time.monotonic()
    client.send(get())
    assert client.read_response()[0] == 200
    assert time.monotonic() - started_s >= 0.045
    # pipelined: still all answered, in order, none before the delay
    started_s = time.monotonic()
    client.send(get(), head(), get(STATUS_PATH))
    assert client.read_response()[0] == 200
    assert time.monotonic() - started_s >= 0.045
    assert client.read_response(head_request=True)[0] == 200
    assert json.loads(client.read_response()[2])["requests"] == 3


def test_close_option_closes_after_each_response(surge_server, client_factory):
    server = surge_server(close=True)
    client = client_factory(server.port)
    client.send(get(), get())  # the second is never answered
    status, headers, _ = client.read_response()
    assert status == 200
    assert headers["connection"] == "close"
    assert client.at_eof()


def test_client_connection_close_and_http10_are_honoured(surge_server, client_factory):
    server = surge_server()
    client = client_factory(server.port)
    client.send(get(extra="Connection: close\r\n"))
    assert client.read_response()[1]["connection"] == "close"
    assert client.at_eof()
    client = client_factory(server.port)
    client.send(b"GET / HTTP/1.0\r\n\r\n")
    assert client.read_response()[1]["connection"] == "close"
    assert client.at_eof()
    client = client_factory(server.port)
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", get())
    assert client.read_response()[1]["connection"] == "keep-alive"
    assert client.read_response()[0] == 200


def test_malformed_requests_get_400_and_a_close(surge_server, client_factory):
    server = surge_server()
    for bad in (b"NONSENSE\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
                b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"):
        client = client_factory(server.port)
        client.send(bad)
        assert client.read_response()[0] == 400
        assert client.at_eof()
    client = client_factory(server.port)
    client.send(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000)
    assert client.read_response()[0] == 431
    assert server.served() == 0


def test_counter_is_shared_by_workers(surge_server, client_factory):
    server = surge_server(workers=2)
    clients = [client_factory(server.port) for _ in range(10)]
    for client in clients:
        client.send(*[get()] * 7)
    for client in clients:
        for _ in range(7):
            assert client.read_response()[0] == 200
    status_client = client_factory(server.port)
    status_client.send(get(STATUS_PATH))
    status = json.loads(status_client.read_response()[2])
    assert (status["requests"], status["workers"]) == (70, 2)
    assert (status["stall_ns"], status["stall_every_ns"]) == (0, 0)
    assert 0 < status["started_at_monotonic_ns"] <= time.monotonic_ns()
    assert server.served() == 70  # status requests are not counted
    assert server.stop() == 0
    assert server.output.strip().splitlines() == ["served 70 requests"]


def test_sigterm_stops_with_a_summary_line(surge_server, client_factory):
    server = surge_server()
    client = client_factory(server.port)
    client.send(get(), get(), get())
    for _ in range(3):
        client.read_response()
    server.process.send_signal(signal.SIGTERM)
    assert server.stop() == 0
    assert server.output == "served 3 requests\n"


def _surge_serve(*args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surge", "serve", *args],
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("args, option", [
    (["--status", "150"], "--status"),
    (["--status", "600"], "--status"),
    (["--status", "abc"], "--status"),
    (["--port", "70000"], "--port"),
    (["--workers", "0"], "--workers"),
    (["--body-size", "lots"], "--body-size"),
    (["--body-size", "10", "--status", "204"], "--body-size"),
    (["--delay", "5xs"], "--delay"),
    (["--delay", "2h"], "--delay"),
    (["--delay", "uniform:15ms:5ms"], "--delay"),
    (["--delay", "uniform:5ms"], "--delay"),
    (["--delay", "exp:0"], "--delay"),
    (["--delay", "exp:10ms:1ms"], "--delay"),
    (["--delay", "normal:0:1ms"], "--delay"),
    (["--delay", "pareto:10ms"], "--delay"),
    (["--seed", "-1"], "--seed"),
    (["--stall", "1s"], "--stall-every"),
    (["--stall-every", "5s"], "--stall"),
    (["--stall", "5s", "--stall-every", "5s"], "--stall"),
    (["--stall", "6s", "--stall-every", "5s"], "--stall"),
    (["--stall", "0", "--stall-every", "5s"], "--stall"),
    (["--stall", "1s", "--stall-every", "soon"], "--stall-every"),
    (["--status-path", "status"], "--status-path"),
    (["--bogus"], "--bogus"),
])
def test_bad_options_exit_2_with_one_line(args, option):
    result = _surge_serve(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert option in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_port_in_use_exits_1_with_one_line(surge_server):
    server = surge_server()
    result = _surge_serve("--port", str(server.port))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"surge serve: error: port {server.port} on 127.0.0.1 is already in use"]
    assert result.stdout == ""
