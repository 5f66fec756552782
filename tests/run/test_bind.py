"""Issue 15 item 6: `--bind ADDR[,ADDR...]` spreads connections over source
addresses, and running out of descriptors or ports is one line naming what ran
out, the limit and the fix: before the start when it can be known, at the end
when it happened during the run."""
import json
import os
import resource
import socket
import subprocess
import sys
import threading
from collections import Counter

import pytest

from surge.run.limits import fd_hard_limit, ports_per_source
from tests.helpers import assert_one_line_error, run_surge

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class PeerRecorder:
    """Answers every request with 200 and records the source address of each
    connection that carried a request (the supervisor's address-choice probe
    connects once and sends nothing)."""

    def __enter__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.peers = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                sock, peer = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(sock, peer[0]), daemon=True).start()

    def _serve(self, sock, peer):
        sock.settimeout(0.05)
        buffer, counted = b"", False
        with sock:
            while not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if not counted:
                    with self.lock:
                        self.peers[peer] += 1
                    counted = True
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _, _, buffer = buffer.partition(b"\r\n\r\n")
                    sock.sendall(RESPONSE)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bind_spreads_connections_evenly_over_the_source_addresses(workers):
    binds = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    with PeerRecorder() as server:
        run = run_surge("run", server.url, "-c", "12", "-w", workers, "-n", "120", "-q", "--bind", ",".join(binds))
        peers = dict(server.peers)
    assert run.code == 0, run.stderr
    assert peers == {address: 4 for address in binds}, peers
    assert run.result["config"]["bind"] == binds
    assert run.result["totals"]["requests"] == 120


def test_bind_with_keepalive_off_uses_every_address():
    binds = ["127.0.0.5", "127.0.0.6"]
    with PeerRecorder() as server:
        run = run_surge("run", server.url, "-c", "4", "-w", "1", "-n", "200", "-q", "--disable-keepalive",
                        "--bind", ",".join(binds))
        peers = dict(server.peers)
    assert run.code == 0, run.stderr
    assert set(peers) == set(binds) and sum(peers.values()) >= 200 and min(peers.values()) >= 90, peers


@pytest.mark.parametrize("value, fragment", [
    ("10.255.255.77", "cannot use 10.255.255.77 as a source address"),
    ("localhost", "is not an IP address"),
    ("127.0.0.2,,127.0.0.3", "empty address"),
    ("127.0.0.2,127.0.0.2", "given twice"),
    ("0.0.0.0", "the unspecified address"),
    ("127.0.0.2,::", "the unspecified address"),
    ("224.0.0.1", "a multicast address"),
])
def test_a_bad_bind_is_one_line_exit_2(value, fragment):
    assert_one_line_error(run_surge("run", "http://127.0.0.1:9/", "-n", "1", "--bind", value, json_result=False),
                          2, "--bind", fragment)


def test_more_connections_than_descriptors_is_refused_before_the_start():
    hard = fd_hard_limit()
    if hard is None or hard > 2_000_000:
        pytest.skip(f"the descriptor limit ({hard}) is too large to go past in a test")
    connections = hard - 10                   # + the worker's own: past the limit
    ports = ports_per_source() or 28232
    binds = ",".join(f"127.0.1.{i}" for i in range(1, connections // ports + 2))   # so ports are not short
    run = run_surge("run", "http://127.0.0.1:9/", "-c", str(connections), "-w", "1", "-d", "1s",
                    "--bind", binds, json_result=False)
    assert_one_line_error(run, 2, f"-c {connections:,}", "file descriptors", f"the limit is {hard:,}",
                          "ulimit -n", "-w 2")


def test_more_connections_than_source_ports_is_refused_before_the_start():
    ports = ports_per_source()
    if ports is None:
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range")
    connections = ports + 1
    hard = fd_hard_limit()
    workers = 1 if hard is None else (connections // (hard - 100)) + 1
    run = run_surge("run", "http://127.0.0.1:9/", "-c", str(connections), "-w", str(workers), "-d", "1s",
                    json_result=False)
    assert_one_line_error(run, 2, f"-c {connections:,}", "source port", f"{ports:,}", "--bind",
                          "ip_local_port_range")


def test_running_out_of_descriptors_during_the_run_is_one_line_at_the_end(tmp_path):
    """The worker inherits 120 open descriptors it did not count, under a limit of
    250: some of its 150 connections cannot get a socket (EMFILE)."""
    inherited = [os.open(os.devnull, os.O_RDONLY) for _ in range(120)]
    result_path = tmp_path / "r.json"
    try:
        with PeerRecorder() as server:
            proc = subprocess.run(
                [sys.executable, "-m", "surge", "run", server.url, "-c", "150", "-w", "1", "-d", "1s", "-q",
                 "--json", str(result_path)],
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (250, 250)), pass_fds=inherited,
                capture_output=True, text=True, timeout=60)
    finally:
        for fd in inherited:
            os.close(fd)
    lines = [line for line in proc.stderr.splitlines() if "ran out of" in line]
    assert len(lines) == 1 and "file descriptors" in lines[0] and "the limit is 250" in lines[0], proc.stderr
    totals = json.loads(result_path.read_text())["totals"]
    assert totals["connect_exhausted"]["fds"] > 0 and totals["errors"]["connect"] >= totals["connect_exhausted"]["fds"]
    assert totals["requests"] > 0              # the connections that got a socket worked


# ---- --bind of the other address family than the target (an IPv6 source cannot reach an IPv4 target) ----

def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")


@needs_ipv6
def test_a_bind_of_only_the_other_family_is_one_line_exit_2_before_any_load():
    with PeerRecorder() as server:
        run = run_surge("run", server.url, "-c", "2", "-w", "1", "-n", "20", "--bind", "::1", json_result=False)
        peers = dict(server.peers)
    assert_one_line_error(run, 2, "--bind ::1", "no IPv4 address", f"127.0.0.1:{server.port} is IPv4",
                          "e.g. 127.0.0.2")
    assert peers == {}, peers                  # no request was sent


@needs_ipv6
def test_a_bind_of_only_ipv4_for_an_ipv6_target_is_refused_too():
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    listener.listen(8)
    try:
        run = run_surge("run", f"http://[::1]:{listener.getsockname()[1]}/", "-n", "1", "--bind", "127.0.0.2",
                        json_result=False)
    finally:
        listener.close()
    assert_one_line_error(run, 2, "--bind 127.0.0.2", "no IPv6 address", "is IPv6", "e.g. ::1")


@needs_ipv6
def test_a_mixed_bind_warns_of_the_skipped_address_and_uses_only_the_others():
    binds = ["127.0.0.2", "::1", "127.0.0.3"]
    with PeerRecorder() as server:
        run = run_surge("run", server.url, "-c", "8", "-w", "2", "-n", "80", "-q", "--bind", ",".join(binds))
        peers = dict(server.peers)
    assert run.code == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "--bind: ::1 skipped" in warnings[0] and "127.0.0.2, 127.0.0.3" in warnings[0], \
        run.stderr
    # every connection took an IPv4 source of the list (none went out unbound from 127.0.0.1)
    assert peers == {"127.0.0.2": 4, "127.0.0.3": 4}, peers
    assert run.result["totals"]["requests"] == 80
