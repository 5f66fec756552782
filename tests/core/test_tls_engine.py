"""The engine over TLS, driven directly (as the worker does: epoll fd, on_ready,
sweep), against nginx with TLS and the faulty TLS servers.  Counts come from
nginx (stub_status, its TLS access log), not from what the engine claims."""
import os
import select
import socket
import ssl
import threading
import time

import pytest

from surge.core._engine import Engine
from surge.core._tls import TlsContext
from surge.plan.build import compile_plan, url_workload
from surge.plan.options import RunOptions
from surge.plan.validate import load_plan
from surge.run.addresses import pack_sockaddr
from surge.run.flows import FlowTables
from surge.plan.request import parse_target
from tests.support.faulty import FaultyServer
from tests.support.tables import literal_tables

DRIVE_LIMIT_S = 20.0        # a bound on a broken test, never a measurement


def address(port: int) -> tuple[int, bytes]:
    return socket.AF_INET, pack_sockaddr(socket.AF_INET, ("127.0.0.1", port))


def url_tables(port: int, *, close: bool = False) -> FlowTables:
    """A URL run's tables for 127.0.0.1:port (the request bytes do not depend on
    the scheme; `close` adds Connection: close, as --disable-keepalive does)."""
    options = RunOptions(headers=("Connection: close",)) if close else RunOptions()
    return FlowTables(url_workload(f"http://127.0.0.1:{port}/", options).workload)


class Driven:
    """An engine and the loop a worker would run around it."""

    def __init__(self, hosts, tables, **options):
        self.events = []
        settings = dict(users=2, pipeline=1, quota=-1, timeout_ns=2_000_000_000)
        settings.update(options)
        self.engine = Engine(hosts, tables, on_event=self.events.append, **settings)

    def run(self, until, open_model=None) -> dict:
        """connect_all, start once settled, serve until until(snapshot-less engine)
        holds or "done"; then one snapshot (the engine is stopped after)."""
        e = self.engine
        if open_model is not None:
            e.use_open_model(*open_model)
        e.connect_all()
        started = False
        deadline = time.monotonic() + DRIVE_LIMIT_S
        while time.monotonic() < deadline:
            if "settled" in self.events and not started:
                e.start()
                started = True
            if "done" in self.events or (started and until()):
                break
            readable, _, _ = select.select([e.epoll_fd], [], [], 0.01)
            if readable:
                e.on_ready()
            e.sweep()
        snapshot = e.snapshot()
        e.stop()
        return snapshot


def verified(tls_certs, **options) -> TlsContext:
    return TlsContext(server_name="127.0.0.1", cacert=str(tls_certs.ca), **options)


def values(sparse) -> int:
    """How many values a sparse histogram holds."""
    return sparse[0][0] if sparse else 0


# ---- load over TLS: exact counts --------------------------------------------------------------
def test_a_quota_over_tls_is_served_exactly_and_says_what_was_negotiated(nginx_tls, tls_certs):
    server = nginx_tls()
    before = server.status()
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port),
                      users=4, quota=500).run(lambda: False)
    after = server.status()
    assert snapshot["completed"] == 500 and snapshot["statuses"] == {200: 500}
    assert after["requests"] - before["requests"] - 1 == 500        # (less this status read)
    assert after["accepts"] - before["accepts"] - 1 == 4 == snapshot["connections_opened"]     # (status read)
    assert snapshot["handshakes"] == {"full": 4, "resumed": 0}      # all four connected before any session
    assert values(snapshot["connect"]) == 4 and values(snapshot["tls_handshake"]) == 4
    assert snapshot["tls_handshake"][0][1] > 0      # (its min: a handshake takes its crypto's time at least)
    assert snapshot["tls_session"]["protocol"] == "TLSv1.3" and snapshot["tls_session"]["group"] == "X25519"
    assert snapshot["tls_session"]["ktls"] is False
    assert sum(snapshot["errors"].values()) == 0 and snapshot["tls_errors"] == {}


def test_pipelining_over_tls_is_exact(nginx_tls, tls_certs):
    server = nginx_tls()
    before = server.requests()
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port),
                      users=2, pipeline=16, quota=16 * 2 * 50).run(lambda: False)
    assert snapshot["completed"] == 1600 == server.requests() - before
    assert sum(snapshot["errors"].values()) == 0


class BigBodyServer:
    """A TLS server (Python's ssl: the test's instrument) answering every
    request with a `body_bytes` body in one sendall: many 16-KiB records per
    response, more than the engine's 64-KiB read buffer.  garbage_after: the
    connection's Nth request is answered with bytes that are no TLS record,
    written under the TLS layer (a record error mid-stream)."""

    def __init__(self, pair, body_bytes: int, garbage_after: int = 0):
        self.garbage_after = garbage_after
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(pair.cert), str(pair.key))
        self.response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % body_bytes + b"x" * body_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, raw):
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                pending = b""
                answered = 0
                while not self.stopping.is_set():
                    data = conn.recv(65536)
                    if not data:
                        return
                    pending += data
                    while b"\r\n\r\n" in pending:
                        _, pending = pending.split(b"\r\n\r\n", 1)
                        answered += 1
                        if answered == self.garbage_after:
                            with socket.socket(fileno=os.dup(conn.fileno())) as under:
                                under.send(b"\x17\x03\x03\x00\x20" + b"not a record of this session....")
                            time.sleep(0.2)
                            return
                        conn.sendall(self.response)
        except OSError:
            return

    def close(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


class SlowReader(BigBodyServer):
    """Reads each request's body in small pieces with pauses, so the client's
    socket buffer fills and its TLS writes must wait and be retried; keeps
    what it received."""

    def __init__(self, pair):
        super().__init__(pair, 2)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)    # (inherited by accepted sockets)
        self.bodies = []

    def _serve(self, raw):
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                pending = b""
                while not self.stopping.is_set():
                    while b"\r\n\r\n" not in pending:
                        data = conn.recv(65536)
                        if not data:
                            return
                        pending += data
                    head, pending = pending.split(b"\r\n\r\n", 1)
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(pending) < length:
                        time.sleep(0.0005)
                        data = conn.recv(65536)
                        if not data:
                            return
                        pending += data
                    self.bodies.append(pending[:length])
                    pending = pending[length:]
                    conn.sendall(self.response)
        except OSError:
            return


def test_a_write_that_must_wait_is_retried_from_where_it_stopped(tls_certs):
    """8-MB request bodies (more than a socket's send buffer takes) to a server
    that reads slowly: SSL_write says WANT_WRITE, and the retries (from a
    moved buffer position) send every byte once, in order."""
    server = SlowReader(tls_certs.leaf)
    body = bytes(range(256)) * (8_000_000 // 256)
    try:
        tables = literal_tables(parse_target(f"http://127.0.0.1:{server.port}/"), ("POST", (), body))
        snapshot = Driven([address(server.port) + (verified(tls_certs),)], tables, users=1,
                          quota=3).run(lambda: False)
    finally:
        server.close()
    assert snapshot["completed"] == 3 and sum(snapshot["errors"].values()) == 0
    assert server.bodies == [body] * 3


def test_large_responses_over_tls_are_read_whole(tls_certs):
    """Bodies of many records, more than one read buffer each: the engine reads
    on while reads fill its buffer, so nothing decrypted is left in OpenSSL
    where epoll cannot see it."""
    server = BigBodyServer(tls_certs.leaf, 300_000)
    try:
        snapshot = Driven([address(server.port) + (verified(tls_certs),)], url_tables(server.port),
                          users=2, quota=40).run(lambda: False)
    finally:
        server.close()
    assert snapshot["completed"] == 40 and snapshot["statuses"] == {200: 40}
    assert snapshot["bytes_in"] > 40 * 300_000
    assert sum(snapshot["errors"].values()) == 0


def test_the_open_model_over_tls_sends_what_is_due(nginx_tls, tls_certs):
    server = nginx_tls()
    before = server.requests()
    driven = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port), users=8)

    def all_answered() -> bool:
        now = driven.engine.snapshot()
        return now["due"] == 100 and now["completed"] + sum(now["errors"].values()) + now["dropped"] == 100

    snapshot = driven.run(all_answered, open_model=([(0.0, 0.5, 200.0, 200.0)], 0, 1, 2))
    assert snapshot["due"] == 100 and snapshot["completed"] == 100
    assert server.requests() - before == 100
    assert sum(snapshot["errors"].values()) == 0


# ---- keep-alive off, resumption --------------------------------------------------------------
def test_without_keepalive_each_request_has_its_own_connection_and_sessions_resume(nginx_tls, tls_certs):
    server = nginx_tls(log=True)
    already = len(server.tls_log())
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port, close=True),
                      users=1, quota=6, keepalive=False).run(lambda: False)
    log = server.tls_log(at_least=already + 6)[already:]
    assert snapshot["completed"] == 6 and sum(snapshot["errors"].values()) == 0
    assert [entry["connection_requests"] for entry in log] == ["1"] * 6
    assert len({entry["connection"] for entry in log}) == 6
    # The first connection has no session to offer; each later one resumes the last ticket.
    assert [entry["reused"] for entry in log] == ["."] + ["r"] * 5
    assert snapshot["handshakes"] == {"full": 1, "resumed": 5}
    assert snapshot["connections_opened"] == 6


def test_keepalive_off_closes_even_when_the_server_would_keep_the_connection(nginx_tls, tls_certs):
    """The engine closes after each response itself (no Connection: close sent here)."""
    server = nginx_tls()
    before = server.status()
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port),
                      users=2, quota=10, keepalive=False).run(lambda: False)
    after = server.status()
    assert snapshot["completed"] == 10 and sum(snapshot["errors"].values()) == 0
    assert after["requests"] - before["requests"] - 1 == 10
    assert after["accepts"] - before["accepts"] - 1 == 10            # (less the status read's own)
    assert snapshot["connections_opened"] == 10


def test_resumption_off_makes_every_handshake_full(nginx_tls, tls_certs):
    server = nginx_tls()
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs, resume=False),)],
                      url_tables(server.tls_port), users=1, quota=4, keepalive=False).run(lambda: False)
    assert snapshot["handshakes"] == {"full": 4, "resumed": 0}


def test_tls12_resumes_by_session_id(nginx_tls, tls_certs):
    server = nginx_tls(protocols="TLSv1.2", session_tickets=False)
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port),
                      users=1, quota=4, keepalive=False).run(lambda: False)
    assert snapshot["tls_session"]["protocol"] == "TLSv1.2"
    assert snapshot["handshakes"] == {"full": 1, "resumed": 3}


def test_plain_http_without_keepalive_opens_a_connection_per_request(nginx):
    before = nginx.status()
    snapshot = Driven([address(nginx.port)], url_tables(nginx.port), users=2, quota=10,
                      keepalive=False).run(lambda: False)
    after = nginx.status()
    assert snapshot["completed"] == 10 and after["requests"] - before["requests"] - 1 == 10
    assert after["accepts"] - before["accepts"] - 1 == 10            # none opened once -n is spent
    assert snapshot["handshakes"] is None and snapshot["tls_handshake"] is None and snapshot["tls_session"] is None


# ---- client certificates -------------------------------------------------------------------
def test_mtls_without_a_certificate_is_answered_400_and_with_one_200(nginx_tls, tls_certs):
    server = nginx_tls(verify_client=True)
    hosts = [address(server.tls_port) + (verified(tls_certs),)]
    assert Driven(hosts, url_tables(server.tls_port), quota=4).run(lambda: False)["statuses"] == {400: 4}
    with_cert = verified(tls_certs, cert=str(tls_certs.client.cert), key=str(tls_certs.client.key))
    hosts = [address(server.tls_port) + (with_cert,)]
    assert Driven(hosts, url_tables(server.tls_port), quota=4).run(lambda: False)["statuses"] == {200: 4}


# ---- failures are counted, and the engine goes on --------------------------------------------
def test_a_certificate_that_fails_verification_is_counted_as_tls_with_its_reason(nginx_tls, tls_certs):
    server = nginx_tls("self_signed")
    driven = Driven([address(server.tls_port) + (verified(tls_certs),)], url_tables(server.tls_port), users=2)
    snapshot = driven.run(lambda: driven.engine.snapshot()["errors"]["tls"] >= 6)
    assert snapshot["completed"] == 0
    assert snapshot["tls_errors"] == {"certificate verify failed (self-signed certificate)": snapshot["errors"]["tls"]}
    assert snapshot["errors"]["tls"] >= 6 and snapshot["connections_opened"] == 0


@pytest.mark.parametrize("kind, error", [("tls_garbage", "tls"), ("tls_reset", "read"), ("tls_silent", "timeout")])
def test_a_server_that_breaks_the_handshake_is_counted_and_the_engine_goes_on(kind, error):
    context = TlsContext(server_name="127.0.0.1", verify=False)
    with FaultyServer(kind) as server:
        driven = Driven([address(server.port) + (context,)], url_tables(server.port), users=2,
                        timeout_ns=200_000_000)
        snapshot = driven.run(lambda: driven.engine.snapshot()["errors"][error] >= 4)
        hellos = server.client_hellos
    others = {k: n for k, n in snapshot["errors"].items() if k != error and n}
    assert snapshot["errors"][error] >= 4 and not others, snapshot["errors"]
    assert hellos >= 4                           # it kept reconnecting: one ClientHello per attempt
    if error == "tls":
        assert set(snapshot["tls_errors"]) <= {"wrong version number", "packet length too long"}
        assert sum(snapshot["tls_errors"].values()) == snapshot["errors"]["tls"]
    else:
        assert snapshot["tls_errors"] == {}


def test_a_record_error_mid_stream_is_counted_as_tls_and_the_connection_replaced(tls_certs):
    """A record that does not decrypt, after two good responses on the connection."""
    server = BigBodyServer(tls_certs.leaf, 100, garbage_after=3)
    try:
        driven = Driven([address(server.port) + (verified(tls_certs),)], url_tables(server.port), users=1)
        snapshot = driven.run(lambda: driven.engine.snapshot()["errors"]["tls"] >= 3)
    finally:
        server.close()
    assert snapshot["errors"]["tls"] >= 3 and snapshot["completed"] >= 6
    assert {k for k, n in snapshot["errors"].items() if n} == {"tls"}
    assert list(snapshot["tls_errors"]) == ["decryption failed or bad record mac"], snapshot["tls_errors"]
    assert snapshot["handshakes"]["full"] + snapshot["handshakes"]["resumed"] == snapshot["connections_opened"] >= 3


def test_ktls_asked_for_reports_whether_the_kernel_took_the_records(nginx_tls, tls_certs):
    """--ktls: where the kernel has no `tls` ULP (this machine's usual case) OpenSSL
    keeps the records in user space, and says so; the load is served either way."""
    with open("/proc/sys/net/ipv4/tcp_available_ulp") as ulps:
        kernel_tls = "tls" in ulps.read().split()
    server = nginx_tls()
    before = server.requests()
    snapshot = Driven([address(server.tls_port) + (verified(tls_certs, ktls=True),)], url_tables(server.tls_port),
                      quota=50).run(lambda: False)
    assert snapshot["completed"] == 50 == server.requests() - before
    if not kernel_tls:
        assert snapshot["tls_session"]["ktls"] is False


# ---- plans: hosts of either kind --------------------------------------------------------------
PLAN = """\
name: two hosts
target: http://127.0.0.1:{plain}
load: {{model: closed, vus: 1, duration: 1s}}
scenarios:
  - name: both
    steps:
      - {{name: one, request: GET /}}
      - {{name: two, request: "GET http://127.0.0.1:{secure}/"}}
"""


def plan_tables(tmp_path, text: str) -> FlowTables:
    """The engine tables of a plan written as `text`."""
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return FlowTables(compile_plan(load_plan(str(path))))


def test_a_plan_mixes_http_and_https_hosts(nginx_tls, tls_certs, tmp_path):
    """Each host's transport is its own: the plan's second host is TLS (the
    plan says http: the scheme is the Python side's business)."""
    server = nginx_tls()
    tables = plan_tables(tmp_path, PLAN.format(plain=server.port, secure=server.tls_port))
    ports = [host.port for host in tables.hosts]
    assert sorted(ports) == sorted([server.port, server.tls_port]), tables.hosts
    contexts = {server.port: None, server.tls_port: verified(tls_certs)}
    before = server.requests()
    hosts = [address(port) + (contexts[port],) for port in ports]
    driven = Driven(hosts, tables, users=2)
    snapshot = driven.run(lambda: min(step[0] for step in driven.engine.flow_snapshot()["steps"]) >= 10)
    steps = snapshot["flows"]["steps"]
    assert steps[0][0] >= 10 and steps[1][0] >= 10
    assert snapshot["handshakes"]["full"] == 2          # one TLS connection per VU, none for the plain host
    assert server.requests() - before >= snapshot["completed"]
    assert sum(snapshot["errors"].values()) == 0


ONE_HOST_PLAN = """\
name: one https host
target: http://127.0.0.1:{port}
load: {{model: closed, vus: 1, duration: 1s}}
scenarios:
  - name: only
    steps:
      - {{name: get, request: GET /}}
      - {{name: again, request: GET /}}
"""


def test_a_plan_whose_handshakes_fail_backs_off_instead_of_spinning(nginx_tls, tls_certs, tmp_path):
    """A virtual user whose connection never got through its handshake waits the
    retry back-off (50 ms) before its next attempt, as after a refused connect.
    Over WINDOW_S, 2 users can make at most 2 x (WINDOW_S / 50 ms + 1) attempts;
    without the back-off each retries at once, ~1 ms per handshake on loopback.
    (A slow machine makes fewer attempts, never more.)"""
    WINDOW_S = 0.5
    server = nginx_tls("self_signed")
    tables = plan_tables(tmp_path, ONE_HOST_PLAN.format(port=server.tls_port))
    driven = Driven([address(server.tls_port) + (verified(tls_certs),)], tables, users=2)
    started = []

    def window_over() -> bool:
        started.append(time.monotonic())
        return started[-1] - started[0] >= WINDOW_S

    snapshot = driven.run(window_over)
    attempts = snapshot["errors"]["tls"]
    assert attempts >= 2, snapshot["errors"]                     # each user tried at least once
    assert attempts <= 2 * (WINDOW_S / 0.05 + 1) + 2, attempts   # +2: the window is measured from the start
    assert snapshot["connections_opened"] == 0 and snapshot["completed"] == 0


def test_one_context_per_options_and_host_until_it_has_carried_load(nginx_tls, tls_certs):
    """TlsOptions.context hands out one context per (options, host): the build's
    check, the probe and the workers (through the fork) share it instead of each
    loading the trust store.  Once it holds a session it is not handed out again,
    so another run in this process starts with full handshakes."""
    from surge.plan.tls import TlsOptions

    server = nginx_tls()
    options = TlsOptions(cacert=str(tls_certs.ca))
    context = options.context("127.0.0.1")
    assert options.context("127.0.0.1") is context
    assert options.context("localhost") is not context            # another server name, another context
    context.probe(*address(server.tls_port), 5.0)
    assert not context.has_session and options.context("127.0.0.1") is context    # a probe keeps none
    Driven([address(server.tls_port) + (context,)], url_tables(server.tls_port), users=1, quota=5).run(lambda: False)
    assert context.has_session
    fresh = options.context("127.0.0.1")
    assert fresh is not context and not fresh.has_session
