"""Resource samples of processes: a worker's own memory (rss_kb) and, each
second, a process that is not ours (`--watch-pid`), so a reader can tell
whether the client or the target was the bottleneck."""
from __future__ import annotations

import os
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kb(pid: int | str = "self") -> int:
    """Resident memory now (not the peak) of a process, from /proc/PID/statm.
    Raises OSError, ValueError or IndexError when it cannot be read."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


class WatchError(ValueError):
    """The process to watch does not exist or cannot be read."""


class WatchedProcess:
    """CPU % (of one core) and RSS of one process, sampled on demand."""

    def __init__(self, pid: int):
        self.pid = pid
        self._last = None
        self.sample()                    # fails now, before any load, if the pid is wrong

    def _read(self) -> tuple[float, int]:
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                stat = f.read()
            resident_kb = rss_kb(self.pid)
        except (OSError, ValueError, IndexError):
            raise WatchError(f"--watch-pid: no readable process {self.pid}") from None
        fields = stat[stat.rindex(b")") + 2:].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS     # utime + stime
        return cpu_s, resident_kb

    def sample(self) -> dict:
        """{"pid", "cpu_percent" since the previous sample, "rss_kb"}."""
        now = time.monotonic()
        cpu_s, resident_kb = self._read()
        cpu_percent = None
        if self._last is not None and now > self._last[0]:
            cpu_percent = round((cpu_s - self._last[1]) / (now - self._last[0]) * 100, 1)
        self._last = (now, cpu_s)
        return {"pid": self.pid, "cpu_percent": cpu_percent, "rss_kb": resident_kb}
