"""`surge serve --service-time T --concurrency C`: a target with a known capacity.

At most C requests per worker are in service at once, each held T by the
timerfd, the rest wait in FIFO order, so the capacity is C / T per worker.
Bounds checked here hold on a busy machine:

- a response never leaves before its service has ended (lower bounds on
  arrival times are exact: a slow machine only makes them later);
- a slot is handed on at the instant its service ends, not when the timer
  happens to fire, so the served rate cannot fall below C / T while requests
  wait, except when the client itself is too late to keep the queue filled;
  and it cannot exceed C / T except by the completions a late timer had not
  yet counted at the first of the two reads (a few ms over seconds). So the
  measured rate is checked within -5% / +2%: the low side is the client's
  slack on a loaded 2-core machine, the high side only the counting edge.
"""
import json
import socket
import struct
import signal
import subprocess
import sys
import time

import pytest

from tests.support.http_client import get

MS = 1_000_000


def _surge(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def served_rate_per_s(server, connections: int, window_s: float = 1.5) -> tuple[float, dict]:
    """The rate the server counted, by its own clock, over a window in which a
    closed `surge run` with `connections` connections kept it busy.  The window
    opens once the server has served a few hundred requests (not after a fixed
    sleep: a busy machine may take seconds to start the run) and closes while the
    run is still going, so it never holds idle time."""
    run = subprocess.Popen([sys.executable, "-m", "surge", "run", server.url + "/", "-c", str(connections),
                            "-w", "1", "-d", "60s", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline_s = time.monotonic() + 30
        first = server.status()
        while first["requests"] < 300:
            assert run.poll() is None and time.monotonic() < deadline_s, "the run never loaded the server"
            time.sleep(0.1)
            first = server.status()
        time.sleep(window_s)
        last = server.status()
        assert run.poll() is None, "the run ended inside the window"
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
    elapsed_s = (last["now_monotonic_ns"] - first["now_monotonic_ns"]) / 1e9
    return (last["requests"] - first["requests"]) / elapsed_s, last


@pytest.mark.parametrize("service_time, concurrency, capacity", [("2ms", 4, 2000.0), ("5ms", 2, 400.0)])
def test_a_closed_run_of_64_connections_gets_concurrency_over_service_time(
        surge_server, service_time, concurrency, capacity):
    server = surge_server(service_time=service_time, concurrency=concurrency)
    assert f"capacity {capacity:,.0f}/s per worker" in server.listening_line
    rate, status = served_rate_per_s(server, 64)
    assert status["capacity_per_s"] == capacity
    assert 0.95 * capacity <= rate <= 1.02 * capacity, f"served {rate:.1f}/s, capacity {capacity}/s"


def test_pipelined_requests_are_served_concurrency_at_a_time_in_order(surge_server, client_factory):
    server = surge_server(service_time="40ms", concurrency=2)
    client = client_factory(server.port)
    sent_ns = time.monotonic_ns()
    client.send(*[get(f"/{i}") for i in range(6)])
    for index in range(6):
        status, _, _ = client.read_response()
        waited_ns = time.monotonic_ns() - sent_ns
        assert status == 200
        # request i starts once i // 2 batches of two have been served before it
        assert waited_ns >= (index // 2 + 1) * 40 * MS, (index, waited_ns)
    assert server.served() == 6


def test_the_status_path_is_answered_without_waiting_for_a_slot(surge_server, client_factory):
    server = surge_server(service_time="1s", concurrency=1)
    busy = client_factory(server.port)
    busy.send(*[get()] * 5)                  # 5 s of work queued on another connection
    status_client = client_factory(server.port)
    status_client.send(get("/__surge/status"))
    status = json.loads(status_client.read_response()[2])
    assert (status["service_time_ns"], status["concurrency"], status["capacity_per_s"]) == (10 ** 9, 1, 1.0)
    assert status["requests"] == 0           # nothing has finished its second of service yet


def test_waiting_requests_of_a_connection_that_closed_are_dropped(surge_server):
    server = surge_server(service_time="20ms", concurrency=1)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(get() * 50)                 # 1 s of work for one slot
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()                             # a reset: the server sees the connection lost
    time.sleep(1.3)                          # longer than the 50 would have taken
    assert server.served() < 10              # the ones started before the reset, not the 50


def test_workers_multiply_the_capacity(surge_server):
    server = surge_server(service_time="2ms", concurrency=4, workers=2)
    assert "capacity 2,000/s per worker, 4,000/s in all" in server.listening_line
    assert server.status()["capacity_per_s"] == 4000.0


@pytest.mark.parametrize("args, culprit", [
    (["--concurrency", "4"], "--concurrency needs --service-time"),
    (["--service-time", "2ms", "--concurrency", "0"], "--concurrency must be from 1"),
    (["--service-time", "2ms", "--delay", "5ms"], "--service-time does not combine with --delay"),
    (["--service-time", "soon"], "--service-time"),
])
def test_bad_service_options_exit_2_with_one_line(args, culprit):
    result = _surge("serve", "--port", "0", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr
