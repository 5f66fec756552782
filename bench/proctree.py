"""Waiting for a benchmarked tool and measuring its memory, Linux only.

Why not just ru_maxrss: Linux records, at exec, the high-water RSS of the
memory image being replaced, and for a child spawned by fork/vfork + exec that
image is the *parent's*. So the ru_maxrss that wait4 reports for wrk spawned
from a 25 MiB Python harness is at least 25 MiB, whatever wrk itself uses.
VmHWM in /proc/PID/status is the high-water mark of the current image only,
so it is sampled here for the tool and each of its descendants while they run.

CPU is another matter: ru_utime/ru_stime from wait4 are exact and include
every descendant the tool reaped, so `wait_for_exit` returns them.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

SAMPLE_INTERVAL_S = 0.1   # ~1 ms of harness CPU per sample on a quiet machine


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid for every process visible in /proc."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue  # exited while we looked
        # The command name (field 2) may hold spaces and ')'; fields after its last ')' are plain.
        fields_after_name = stat[stat.rindex(b")") + 2:].split()
        parents[int(entry.name)] = int(fields_after_name[1])
    return parents


def process_tree(root_pid: int) -> list[int]:
    """root_pid and all its living descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parent_pids().items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set of the process's current image (KiB), or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as status_file:
            for line in status_file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class PeakRss:
    """Running maximum of VmHWM per process of a tree, refreshed by `sample()`."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.peak_kib_by_pid: dict[int, int] = {}

    def sample(self) -> None:
        for pid in process_tree(self.root_pid):
            hwm_kib = vm_hwm_kib(pid)
            if hwm_kib is not None:
                self.peak_kib_by_pid[pid] = max(hwm_kib, self.peak_kib_by_pid.get(pid, 0))

    @property
    def largest_kib(self) -> int:
        """The largest single process (what ru_maxrss would mean if it were exact)."""
        return max(self.peak_kib_by_pid.values(), default=0)

    @property
    def sum_kib(self) -> int:
        """Sum of the per-process peaks: an upper bound of the tree's footprint
        (peaks need not coincide; pages shared after fork count twice)."""
        return sum(self.peak_kib_by_pid.values())


def wait_for_exit(process: subprocess.Popen, deadline_s: float, peak_rss: PeakRss):
    """Wait for `process`, sampling `peak_rss`; kill it after `deadline_s`.

    Returns (wait status, rusage, overran, ended_monotonic_s). The end time is
    taken when the kernel reports the exit (pidfd), not at the next poll, so
    wall times are exact. os.wait4 is used rather than Popen.wait because only
    wait4 hands back the rusage.
    """
    started_s = time.monotonic()
    overran = False
    pidfd = os.pidfd_open(process.pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while True:
            peak_rss.sample()
            if poller.poll(SAMPLE_INTERVAL_S * 1000):
                break
            if not overran and time.monotonic() - started_s > deadline_s:
                overran = True
                # Through the pidfd: cannot hit another process that reused the pid.
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        ended_s = time.monotonic()
    finally:
        os.close(pidfd)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
    return status, usage, overran, ended_s
