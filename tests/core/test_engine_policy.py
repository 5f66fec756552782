"""The engine picks its fast path and its load policy once, from the tables."""
import gc
import os
import socket

import pytest

from surge.core._engine import Engine
from surge.plan.build import url_workload
from surge.plan.options import RunOptions
from surge.plan.request import parse_target
from surge.run.addresses import pack_sockaddr
from surge.run.flows import FlowTables
from tests.support.tables import literal_tables

TARGET = parse_target("http://127.0.0.1:9/")
ADDRESS = (socket.AF_INET, pack_sockaddr(socket.AF_INET, ("127.0.0.1", 9)))


def url_run_tables() -> FlowTables:
    """A URL run's tables, as the worker builds them (no per-step counters)."""
    workload = url_workload("http://127.0.0.1:9/", RunOptions()).workload
    return FlowTables(workload)


def engine(tables, **kwargs):
    options = dict(users=2, pipeline=1, quota=-1, timeout_ns=10**9, on_event=lambda name: None)
    options.update(kwargs)
    return Engine([ADDRESS], tables, **options)


def two_steps():
    return literal_tables(TARGET, ("GET", (), b""), ("GET", (), b""))


@pytest.mark.parametrize("tables, open_model, policy", [
    (url_run_tables(), False, "closed"),
    (url_run_tables(), True, "open"),
    (two_steps(), False, "flows-closed"),
    (two_steps(), True, "flows-open"),
])
def test_the_policy_is_chosen_from_the_tables_and_the_load_model(tables, open_model, policy):
    e = engine(tables)
    if open_model:
        e.use_open_model([(0.0, 1.0, 10.0, 10.0)], 0, 1, 1)
    assert e.policy_name == policy


def test_a_static_step_pipelines_and_reports_its_one_step_for_a_url_run_too():
    e = engine(url_run_tables(), pipeline=16)
    flows = e.snapshot()["flows"]                         # the fast path's one step, from the totals
    assert flows["steps"][0][0] == 0 and flows["scenarios"] == [(0, 0, 0)]


def test_the_tables_must_name_one_address_per_host():
    with pytest.raises(ValueError, match="one address per host"):
        Engine([ADDRESS, ADDRESS], url_run_tables(), users=1, pipeline=1, quota=1,
               timeout_ns=10**9, on_event=print)


def test_a_refused_set_up_closes_no_descriptor_it_does_not_own():
    """Fields start at 0: an engine refused before its epoll set existed must not close fd 0."""
    before = os.fstat(0)
    for _ in range(3):
        with pytest.raises(ValueError):
            Engine([ADDRESS], url_run_tables(), users=0, pipeline=1, quota=1, timeout_ns=10**9, on_event=print)
    gc.collect()
    after = os.fstat(0)                 # raises if fd 0 was closed
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def open_sockets() -> set[str]:
    """This process's sockets, by inode ("socket:[123]")."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:             # (the listing's own descriptor, closed by now)
            continue
        if link.startswith("socket:"):
            found.add(link)
    return found


def test_a_ramp_set_before_connect_all_opens_each_connection_once():
    """The worker sets a closed ramp's first value (set_active_connections) before
    connect_all(): the connections that opened are not opened again (the first
    socket would leak, left writable in the epoll set: a worker spinning on it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        workload = url_workload(f"http://127.0.0.1:{port}/", RunOptions()).workload
        address = (socket.AF_INET, pack_sockaddr(socket.AF_INET, ("127.0.0.1", port)))
        e = Engine([address], FlowTables(workload), users=4, pipeline=1, quota=-1, timeout_ns=10**9,
                   on_event=lambda name: None)
        before = open_sockets()
        e.set_active_connections(2)
        e.connect_all()
        opened = open_sockets() - before
        e.stop()
        assert len(opened) == 4                 # one socket per connection, none twice
    finally:
        listener.close()
