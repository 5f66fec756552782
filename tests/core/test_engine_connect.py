"""How the engine opens connections: a connect that the kernel completed within
connect() (loopback) is served in the same call, without waiting for epoll; one
still in progress, or refused, goes through epoll as before."""
import select
import socket
import time

from surge.core._engine import Engine
from surge.plan.build import url_workload
from surge.plan.options import RunOptions
from surge.run.addresses import pack_sockaddr
from surge.run.flows import FlowTables


def engine_for(port: int, users: int) -> Engine:
    workload = url_workload(f"http://127.0.0.1:{port}/", RunOptions()).workload
    address = (socket.AF_INET, pack_sockaddr(socket.AF_INET, ("127.0.0.1", port)))
    return Engine([address], FlowTables(workload), users=users, pipeline=1, quota=-1, timeout_ns=10 * 10**9,
                  on_event=lambda name: None)


def pump_until(e: Engine, done, limit_s: float = 10.0) -> None:
    """Serve the engine's epoll set (as the worker's loop would) until done() or the limit."""
    poller = select.epoll()
    poller.register(e.epoll_fd, select.EPOLLIN)
    end = time.monotonic() + limit_s
    try:
        while not done() and time.monotonic() < end:
            if poller.poll(0.05):
                e.on_ready()
            e.sweep()
    finally:
        poller.close()


def test_loopback_connects_complete_within_connect_all_without_a_wake_up():
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        e = engine_for(listener.getsockname()[1], users=8)
        e.connect_all()
        opened = e.snapshot()["connections_opened"]
        e.stop()
        assert opened == 8          # none waited for an EPOLLOUT event (on_ready was never called)
    finally:
        listener.close()


def test_a_refused_connect_counts_as_a_connect_error_and_nothing_else():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))              # bound, not listening: refused
    try:
        e = engine_for(holder.getsockname()[1], users=3)
        e.connect_all()
        e.start()
        pump_until(e, lambda: e.snapshot()["errors"]["connect"] >= 3, limit_s=5)
        snap = e.snapshot()
        e.stop()
        assert snap["errors"]["connect"] >= 3
        assert sum(v for k, v in snap["errors"].items() if k != "connect") == 0
        assert snap["connections_opened"] == 0
    finally:
        holder.close()


def test_connects_the_kernel_could_not_complete_at_once_complete_through_epoll():
    """A full accept queue makes the kernel drop SYNs: those connects are still
    in progress after connect(), and open later (the SYN retransmitted) once
    the queue is drained: epoll reports them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    accepted = []
    try:
        e = engine_for(listener.getsockname()[1], users=6)
        e.connect_all()
        early = e.snapshot()["connections_opened"]
        listener.setblocking(False)

        def all_open():
            try:
                while True:
                    accepted.append(listener.accept()[0])
            except BlockingIOError:
                pass
            return e.snapshot()["connections_opened"] == 6
        pump_until(e, all_open, limit_s=15)
        opened = e.snapshot()["connections_opened"]
        e.stop()
        assert early < 6            # some had to wait (the queue was full)
        assert opened == 6
    finally:
        for s in accepted:
            s.close()
        listener.close()
