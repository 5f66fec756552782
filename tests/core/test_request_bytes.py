"""The bytes the engine sends, read off the wire by a raw server.

A URL run's one step (surge.plan.request.url_step, through FlowTables) must
put on the wire exactly what `surge run URL` always sent (the rule spelled out
in tests/support/wire.py); plan steps follow
the same Content-Length rule (a body, or POST/PUT/PATCH, unless the user gave
Content-Length)."""
from __future__ import annotations

import select
import socket
import threading

import pytest

from surge.core._engine import Engine
from surge.core._limits import ERROR_KINDS
from surge.plan.build import compile_plan, url_workload
from surge.plan.options import RunOptions
from surge.plan.request import parse_target
from surge.plan.validate import load_plan
from surge.run.addresses import pack_sockaddr
from surge.run.flows import FlowTables
from tests.support.tables import literal_tables
from tests.support.wire import expected_request

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Accepts connections; on each, reads until `request_bytes(received)` says a
    whole request is there, records it, answers 200 with an empty body."""

    def __init__(self, requests_expected: int):
        self.requests: list[bytes] = []
        self.expected = requests_expected
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(5)
        while len(self.requests) < self.expected:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        conn.settimeout(5)
        buffered = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffered += data
                while (n := _request_length(buffered)) is not None:
                    self.requests.append(buffered[:n])
                    buffered = buffered[n:]
                    conn.sendall(RESPONSE)

    def address(self):
        return (socket.AF_INET, pack_sockaddr(socket.AF_INET, ("127.0.0.1", self.port)))


def _request_length(data: bytes) -> int | None:
    """Length of the first whole request in data (Content-Length bodies), or None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return end + 4 + length if len(data) >= end + 4 + length else None


def run_engine(hosts, tables, requests: int, server: RawServer) -> dict:
    """Drive an engine until `requests` have been answered (or 5 s); its snapshot.
    The fast path stops itself at the quota ("done"); flows run until stopped,
    here once the server has answered `requests` and the engine read them."""
    done = []
    engine = Engine(hosts, tables, users=1, pipeline=1, quota=requests, timeout_ns=2_000_000_000,
                    on_event=done.append)
    engine.connect_all()
    started = False
    answered_rounds = 0
    for _ in range(500):
        if "settled" in done and not started:
            engine.start()
            started = True
        if "done" in done or answered_rounds > 20:
            break
        if len(server.requests) >= requests:
            answered_rounds += 1            # a few more rounds to read the last responses
        readable, _, _ = select.select([engine.epoll_fd], [], [], 0.01)
        if readable:
            engine.on_ready()
        engine.sweep()
    snapshot = engine.snapshot()
    engine.stop()
    assert snapshot["completed"] >= requests, snapshot
    return snapshot


URL_CASES = [
    dict(method="GET"),
    dict(method="HEAD"),
    dict(method="POST"),                                       # empty body: Content-Length: 0
    dict(method="PUT", body='{"a": 1}', headers=("Content-Type: application/json",)),
    dict(method="GET", body="body on a GET"),                  # a body always gets its length
    dict(method="POST", body="12345", headers=("Content-Length: 5",)),   # the user's, not twice
    dict(method="DELETE", headers=("Host: example.test", "User-Agent: mine/1")),
    dict(method="GET", auth="user:pässword"),
    dict(method="GET", headers=("X-Name: naïve",), path="/a/b%20c?x=1&y=%2F"),
    dict(method="GET", path="/${not_a_slot}", headers=("X-T: ${nor_this}",)),   # literal, never a template
]


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c["method"] + "-" + "-".join(sorted(c)))
def test_a_url_run_sends_exactly_what_it_always_sent(case):
    server = RawServer(2)
    options = RunOptions(method=case["method"], headers=case.get("headers", ()), body=case.get("body"),
                         auth=case.get("auth"))
    workload = url_workload(f"http://127.0.0.1:{server.port}{case.get('path', '/')}", options).workload
    tables = FlowTables(workload)
    assert tables.is_static                                  # the fast path
    snapshot = run_engine([server.address()], tables, 2, server)
    assert snapshot["completed"] == 2
    # every run reports its steps (the result chooses what to show): here the totals
    assert snapshot["flows"]["steps"][0][:2] == (2, 0) and snapshot["flows"]["scenarios"] == [(2, 2, 0)]
    assert server.requests == [expected_request(workload.steps[0])] * 2


def test_a_binary_body_file_goes_out_as_its_bytes(tmp_path):
    server = RawServer(2)
    body = bytes(range(256)) * 3                  # not UTF-8: a bytes part of the step's body
    (tmp_path / "body.bin").write_bytes(body)
    workload = url_workload(f"http://127.0.0.1:{server.port}/up",
                            RunOptions(method="PUT", body=f"@{tmp_path / 'body.bin'}")).workload
    assert workload.steps[0].body.parts == (body,)
    tables = FlowTables(workload)
    assert tables.is_static
    run_engine([server.address()], tables, 2, server)
    assert server.requests == [expected_request(workload.steps[0])] * 2
    assert server.requests[0].endswith(b"\r\nContent-Length: 768\r\n\r\n" + body)


PLAN = """\
name: bytes
target: http://127.0.0.1:{port}
load: {{model: closed, vus: 1, duration: 1s}}
scenarios:
  - name: s
    steps:
{steps}
"""


def _plan_tables(tmp_path, port: int, steps: str) -> FlowTables:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(port=port, steps=steps))
    return FlowTables(compile_plan(load_plan(str(path))))


def test_flow_steps_follow_the_content_length_rule():
    """The same rule when the engine renders per request (two steps: flows)."""
    server = RawServer(4)
    target = parse_target(f"http://127.0.0.1:{server.port}/")
    tables = literal_tables(target, ("POST", (("Content-Length", "3"),), b"abc"), ("PUT", (), b""))
    assert not tables.is_static
    snapshot = run_engine([server.address()], tables, 4, server)
    assert server.requests[0].lower().count(b"content-length:") == 1
    assert server.requests[0].endswith(b"\r\n\r\nabc")
    assert server.requests[1].endswith(b"\r\nContent-Length: 0\r\n\r\n")
    assert all(step[0] >= 2 for step in snapshot["flows"]["steps"])


def test_a_one_step_plan_takes_the_fast_path_and_reports_its_step(tmp_path):
    """Plans report their steps on the fast path too: the one step's counters are the totals.
    (A plan follows redirects unless it says follow_redirects: 0, and following runs as flows.)"""
    server = RawServer(3)
    assert not _plan_tables(tmp_path, server.port, "      - {name: one, request: POST /one, body: abc}\n").is_static
    tables = _plan_tables(tmp_path, server.port,
                          "      - {name: one, request: POST /one, body: abc, follow_redirects: 0}\n")
    assert tables.is_static
    snapshot = run_engine([server.address()], tables, 3, server)
    assert all(r.endswith(b"\r\nContent-Length: 3\r\n\r\nabc") for r in server.requests), server.requests
    responses, checks, failures, errors, statuses, latency = snapshot["flows"]["steps"][0]
    assert responses == snapshot["completed"] == 3
    assert statuses == {200: 3} and checks == failures == 0 and errors == [0] * len(ERROR_KINDS)
    assert latency[0][0] == 3                                # the interval's histogram: 3 values
    assert snapshot["flows"]["scenarios"] == [(3, 3, 0)]


def test_a_plan_step_with_an_empty_post_body_sends_content_length_zero(tmp_path):
    server = RawServer(2)
    tables = _plan_tables(tmp_path, server.port, "      - {name: empty, request: POST /e}\n")
    run_engine([server.address()], tables, 2, server)
    assert all(b"\r\nContent-Length: 0\r\n\r\n" in r for r in server.requests), server.requests


def test_pipelining_needs_the_fast_path(tmp_path):
    server = RawServer(0)
    tables = _plan_tables(tmp_path, server.port, "      - {name: a, request: GET /a}\n"
                                                 "      - {name: b, request: GET /b}\n")
    with pytest.raises(ValueError, match="pipelining"):
        Engine([server.address()], tables, users=1, pipeline=4, quota=1, timeout_ns=10**9, on_event=print)
