"""`surge serve --delay DIST` and `--stall D --stall-every P`, measured from a client.

Latencies are taken with time.monotonic_ns() (the server's CLOCK_MONOTONIC)
from the send of a request to the arrival of its response, one request in
flight per keep-alive connection, many connections at once so that thousands
of draws take well under a second each. A latency measured so includes the
loopback round trip and the client's own scheduling: a lower bound checked
here is exact (a response cannot arrive before its delay has passed), an upper
bound has slack.
"""
import json
import selectors
import socket
import statistics
import time

import pytest

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
STATUS = b"GET /__surge/status HTTP/1.1\r\nHost: test\r\n\r\n"
MS = 1_000_000  # ns
RUN_LIMIT_S = 20.0


def latencies_ns(port: int, connections: int, requests_per_connection: int) -> list[int]:
    """Send-to-response times of GET /, one in flight on each connection at a time.

    Responses must have no body (the server's default), so each one ends at
    the first blank line.
    """
    selector = selectors.DefaultSelector()
    measured: list[int] = []
    open_connections = 0
    try:
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            # [requests left to send, when the one in flight was sent, unread bytes]
            state = [requests_per_connection - 1, time.monotonic_ns(), b""]
            sock.send(GET)
            selector.register(sock, selectors.EVENT_READ, state)
            open_connections += 1
        deadline_s = time.monotonic() + RUN_LIMIT_S
        while open_connections:
            assert time.monotonic() < deadline_s, f"only {len(measured)} responses in {RUN_LIMIT_S}s"
            ready = selector.select(timeout=1.0)
            # one instant for all: each of them had arrived by now, and the time
            # spent on the others is the client's, not the server's
            received_ns = time.monotonic_ns()
            for key, _ in ready:
                state = key.data
                chunk = key.fileobj.recv(65536)
                assert chunk, "the server closed a keep-alive connection"
                state[2] += chunk
                while b"\r\n\r\n" in state[2]:
                    response, state[2] = state[2].split(b"\r\n\r\n", 1)
                    assert response.startswith(b"HTTP/1.1 200 "), response
                    measured.append(received_ns - state[1])
                    if state[0]:
                        state[0] -= 1
                        state[1] = time.monotonic_ns()
                        key.fileobj.send(GET)
                    else:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        open_connections -= 1
                        break
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    return measured


def percentile(sorted_values: list[int], fraction: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes, int]]:
    """count responses as (head, body, arrival monotonic ns)."""
    responses, buffered = [], b""
    while len(responses) < count:
        while b"\r\n\r\n" not in buffered:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(responses)} of {count} responses"
            buffered += chunk
        arrived_ns = time.monotonic_ns()
        head, buffered = buffered.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buffered) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed mid-body"
            buffered += chunk
        responses.append((head, buffered[:length], arrived_ns))
        buffered = buffered[length:]
    return responses


def sleep_until(monotonic_ns: int) -> None:
    remaining_ns = monotonic_ns - time.monotonic_ns()
    if remaining_ns > 0:
        time.sleep(remaining_ns / 1e9)


def next_window_ns(status: dict, not_before_ns: int) -> tuple[int, int]:
    """(start, end) of the first stall window that starts at or after not_before_ns.

    Windows are [start + k*every, start + k*every + stall) for k >= 1.
    """
    started_ns, stall_ns, every_ns = (status["started_at_monotonic_ns"], status["stall_ns"],
                                      status["stall_every_ns"])
    k = max(1, -(-(not_before_ns - started_ns) // every_ns))  # ceiling division
    window_start_ns = started_ns + k * every_ns
    return window_start_ns, window_start_ns + stall_ns


# -- delays -----------------------------------------------------------------------

def test_fixed_delay_is_never_early_and_the_fastest_is_within_0_3ms(surge_server):
    # The bar of the open-model work: against --delay 10ms a client measures 10ms
    # (the loop's millisecond timers used to give 9 to 11ms).  The fastest answer
    # needs only one promptly scheduled wake-up, so a busy machine (which only adds
    # latency) cannot break it; a millisecond timer can.  The median gets a wide
    # bound: it includes both processes' scheduling on a shared machine.
    server = surge_server(delay="10ms")
    measured = sorted(latencies_ns(server.port, connections=10, requests_per_connection=100))
    assert len(measured) == 1000
    assert measured[0] >= 10 * MS, f"a response left before its delay: {measured[0] / MS:.3f}ms"
    assert measured[0] <= 10.3 * MS, f"the fastest response took {measured[0] / MS:.3f}ms"
    assert percentile(measured, 0.5) < 20 * MS, f"median {percentile(measured, 0.5) / MS:.3f}ms"
    assert server.served() == 1000


# Each distribution is checked twice.  Exactly, on the server's own draws
# (ServeConfig.draw_delays_ns: the generator requests use, seeded, so the numbers
# are fixed); and end to end, on what a client measures, with assertions that
# a busy machine cannot break: it only ever adds latency, so a lower bound on
# the minimum or on the share of slow answers holds however loaded it is.

def _draws(kind: str, a_ns: int, b_ns: int = 0, seed: int = 1, count: int = 100_000) -> list[int]:
    import asyncio

    from surge.serve._protocol import ServeConfig
    loop = asyncio.new_event_loop()
    try:
        return ServeConfig(delay_kind=kind, delay_a_ns=a_ns, delay_b_ns=b_ns, seed=seed, loop=loop).draw_delays_ns(count)
    finally:
        loop.close()


def test_uniform_draws_fill_their_range_evenly():
    drawn = _draws("uniform", 5 * MS, 15 * MS)
    assert min(drawn) >= 5 * MS and max(drawn) < 15 * MS
    assert abs(statistics.fmean(drawn) - 10 * MS) <= 0.05 * MS
    for edge_ms, below in ((7, 0.2), (10, 0.5), (13, 0.8)):
        share = sum(value < edge_ms * MS for value in drawn) / len(drawn)
        assert abs(share - below) <= 0.01, (edge_ms, share)


def test_uniform_delay_stays_in_its_range(surge_server):
    server = surge_server(delay="uniform:5ms:15ms", seed=1)
    measured = sorted(latencies_ns(server.port, connections=40, requests_per_connection=50))
    assert len(measured) == 2000
    assert measured[0] >= 5 * MS, f"below the range: {measured[0] / MS:.3f}ms"
    # a fifth of the draws lie above 13ms: noise can only add to that share
    assert sum(value > 13 * MS for value in measured) / len(measured) >= 0.12


def test_exponential_draws_have_the_given_mean_and_shape():
    drawn = sorted(_draws("exp", 10 * MS, seed=2))
    assert abs(statistics.fmean(drawn) - 10 * MS) <= 0.01 * 10 * MS
    # the median of an exponential is mean * ln 2, and p95 is mean * ln 20
    assert abs(percentile(drawn, 0.5) - 6.93 * MS) <= 0.02 * 6.93 * MS
    assert abs(percentile(drawn, 0.95) - 29.96 * MS) <= 0.03 * 29.96 * MS


def test_exponential_delay_has_a_long_tail(surge_server):
    server = surge_server(delay="exp:10ms", seed=2)
    measured = sorted(latencies_ns(server.port, connections=40, requests_per_connection=50))
    assert len(measured) == 2000
    assert percentile(measured, 0.95) >= 25 * MS  # mean * ln 20 = 30ms


def test_normal_draws_have_the_given_mean_and_spread():
    drawn = _draws("normal", 10 * MS, 2 * MS, seed=3)
    assert min(drawn) >= 0
    assert abs(statistics.fmean(drawn) - 10 * MS) <= 0.05 * MS
    assert abs(statistics.pstdev(drawn) - 2 * MS) <= 0.05 * MS


def test_normal_delay_is_applied_per_request(surge_server):
    server = surge_server(delay="normal:10ms:2ms", seed=3)
    measured = latencies_ns(server.port, connections=40, requests_per_connection=25)
    assert len(measured) == 1000
    # one standard deviation above the mean holds 16% of the draws
    assert sum(value > 12 * MS for value in measured) / len(measured) >= 0.10


def test_random_delays_keep_each_connections_order(surge_server):
    # a response drawn shorter than the one ahead of it waits for it; the
    # status answers count the requests before them, so any overtaking shows
    server = surge_server(delay="uniform:1ms:30ms", workers=2)
    sockets = [connect(server.port) for _ in range(6)]
    try:
        for sock in sockets:
            sock.sendall((GET + STATUS) * 15)
        for sock in sockets:
            responses = read_responses(sock, 30)
            counts = [json.loads(body)["requests"] for head, body, _ in responses[1::2]]
            assert counts[0] >= 1 and counts == sorted(counts), counts
            arrivals = [arrived_ns for _, _, arrived_ns in responses]
            assert arrivals == sorted(arrivals)
    finally:
        for sock in sockets:
            sock.close()
    assert server.served() == 90


def test_held_answers_survive_a_half_close_and_vanish_with_a_reset(surge_server):
    server = surge_server(delay="exp:5ms")
    sock = connect(server.port)
    sock.sendall(GET * 3)
    sock.shutdown(socket.SHUT_WR)
    assert len(read_responses(sock, 3)) == 3
    assert sock.recv(1) == b""  # closed once everything asked for is answered
    sock.close()
    # a client that goes away while its answers are held does not hurt the others
    gone = connect(server.port)
    gone.sendall(GET * 5)
    gone.close()
    sock = connect(server.port)
    sock.sendall(GET)
    assert read_responses(sock, 1)[0][0].startswith(b"HTTP/1.1 200 ")
    sock.close()
    assert server.served() == 9


def test_delay_with_close_answers_then_closes(surge_server):
    server = surge_server(delay="uniform:2ms:8ms", close=True)
    sock = connect(server.port)
    sent_ns = time.monotonic_ns()
    sock.sendall(GET * 2)  # the second is never answered
    head, _, arrived_ns = read_responses(sock, 1)[0]
    assert b"Connection: close" in head and arrived_ns - sent_ns >= 2 * MS
    assert sock.recv(1) == b""
    sock.close()
    assert server.served() == 1


# -- stalls -------------------------------------------------------------------------

def test_stall_holds_every_response_until_the_window_ends(surge_server):
    server = surge_server(stall="300ms", stall_every="1s", workers=2)
    status = server.status()
    assert (status["stall_ns"], status["stall_every_ns"]) == (300 * MS, 1000 * MS)
    assert server.listening_line.endswith(
        f"(2 workers; stall 300ms every 1s from started_at_monotonic_ns={status['started_at_monotonic_ns']})")
    window_start_ns, window_end_ns = next_window_ns(status, time.monotonic_ns() + 150 * MS)
    sockets = [connect(server.port) for _ in range(8)]  # over both workers
    try:
        # before the window: answered at once
        sleep_until(window_start_ns - 100 * MS)
        sent_ns = time.monotonic_ns()
        sockets[0].sendall(GET)
        assert read_responses(sockets[0], 1)[0][2] - sent_ns < 20 * MS

        # inside: held until the end, by every worker
        sleep_until(window_start_ns + 50 * MS)
        for sock in sockets:
            sock.sendall(GET)
        # the status path is not held: a client can always ask where it stands
        status_socket = connect(server.port)
        sent_ns = time.monotonic_ns()
        status_socket.sendall(STATUS)
        head, body, arrived_ns = read_responses(status_socket, 1)[0]
        status_socket.close()
        assert arrived_ns - sent_ns < 20 * MS and arrived_ns < window_end_ns
        assert json.loads(body)["requests"] >= 1
        for sock in sockets:
            arrived_ns = read_responses(sock, 1)[0][2]
            assert window_end_ns <= arrived_ns <= window_end_ns + 20 * MS, \
                f"answered {(arrived_ns - window_end_ns) / MS:+.1f}ms from the window's end"

        # after it: at once again
        sleep_until(window_end_ns + 50 * MS)
        sent_ns = time.monotonic_ns()
        sockets[1].sendall(GET)
        assert read_responses(sockets[1], 1)[0][2] - sent_ns < 20 * MS
    finally:
        for sock in sockets:
            sock.close()
    assert server.served() == 10


def test_a_delay_that_ends_inside_a_window_waits_for_its_end(surge_server):
    server = surge_server(delay="100ms", stall="300ms", stall_every="1s")
    status = server.status()
    window_start_ns, window_end_ns = next_window_ns(status, time.monotonic_ns() + 250 * MS)
    early, crossing, after = connect(server.port), connect(server.port), connect(server.port)
    try:
        sleep_until(window_start_ns - 150 * MS)
        early_sent_ns = time.monotonic_ns()
        early.sendall(GET)  # due 50ms before the window: not held
        sleep_until(window_start_ns - 50 * MS)
        crossing.sendall(GET)  # due 50ms into the window: held to its end
        early_arrived_ns = read_responses(early, 1)[0][2]
        assert early_sent_ns + 100 * MS <= early_arrived_ns < window_start_ns + 20 * MS
        crossing_arrived_ns = read_responses(crossing, 1)[0][2]
        assert window_end_ns <= crossing_arrived_ns <= window_end_ns + 20 * MS
        sleep_until(window_end_ns + 20 * MS)
        after_sent_ns = time.monotonic_ns()
        after.sendall(GET)
        after_latency_ns = read_responses(after, 1)[0][2] - after_sent_ns
        assert 100 * MS <= after_latency_ns <= 120 * MS
    finally:
        for sock in (early, crossing, after):
            sock.close()


def test_listening_line_names_the_delay(surge_server):
    server = surge_server(delay="exp:10ms")
    assert server.listening_line.endswith("(1 worker; delay exp:10ms)")
    status = server.status()
    assert (status["stall_ns"], status["stall_every_ns"]) == (0, 0)


@pytest.mark.parametrize("delay", ["uniform:0:2ms", "normal:1ms:0", "500us"])
def test_other_delay_forms_serve(surge_server, delay):
    server = surge_server(delay=delay)
    measured = latencies_ns(server.port, connections=4, requests_per_connection=10)
    assert len(measured) == 40
    assert max(measured) < 50 * MS
