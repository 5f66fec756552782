"""Live progress while a run goes on: a rich panel on a terminal, one plain line
per interval elsewhere (CI logs), nothing when quiet.

It runs in the supervisor, once per second, never in a worker: the rich panel
is redrawn only when a second's point arrives (no refresh thread).
"""
from __future__ import annotations

import math
import sys

from surge.report.numbers import format_rate, format_us, plural
from surge.result.failed import error_rate, errors_total, failed_count


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _workers_cpu(point: dict) -> list[tuple[int, float]]:
    # A worker is one thread: a sample above one core is tick-edge jitter, shown as 100%.
    return [(w.get("index", i), min(w["cpu_percent"], 100.0)) for i, w in enumerate(point.get("workers") or ())
            if w.get("cpu_percent") is not None]


def banner(config: dict) -> str | None:
    """One line saying what runs (the summary's first lines, joined); None when
    the config is too sparse to say it."""
    from surge import __version__
    from surge.report.summary import _head_lines
    try:
        head = _head_lines({"config": config, "surge_version": __version__})
    except (KeyError, TypeError, ValueError):
        return None
    return head[0] + "  (" + "; ".join(line.strip() for line in head[1:]) + ")"


def _latency(point: dict, key: str) -> str:
    """A point's percentile; '-' for a second without a response (not '0us')."""
    return format_us(point.get(key)) if point.get("requests") else "-"


def _failed_text(point: dict) -> str:
    failed = failed_count(point)
    return f"failed {failed} ({error_rate(point) * 100:.1f}%)" if failed else f"failed {failed}"


class LiveProgress:
    """`update(second, point)` once per second, `close()` at the end."""

    def __init__(self, config: dict, quiet: bool = False, stream=None, request_quota: int | None = None):
        self.config = config or {}
        self.stream = stream if stream is not None else sys.stderr
        self.mode = "off" if quiet else ("rich" if _isatty(self.stream) else "plain")
        self.duration_s = self.config.get("duration_s")
        # -n: what this instance sends (a segment's share; else the config's)
        self.request_quota = request_quota or self.config.get("requests")
        self.requests_done = 0
        self.dropped_total = 0
        self.previous_t = 0.0
        self._live = None
        line = banner(self.config) if self.mode != "off" else None
        # Plain: written with the first second, so that a run refused before its
        # start still ends in its one-line error alone.
        self._pending_banner = line if self.mode == "plain" else None
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live
            self._console = Console(file=self.stream, highlight=False)
            if line:
                self._console.print(line, markup=False)
            self._live = Live(self._render(0, None, None), console=self._console, auto_refresh=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()

    # ---- numbers shared by both modes ----------------------------------------------------------
    def _rate(self, point: dict) -> float | None:
        t = float(point.get("t", self.previous_t + 1))
        length = t - self.previous_t
        self.previous_t = t
        return point.get("requests", 0) / length if length > 0 else None

    @property
    def _target_unit(self) -> str:
        """A plan's open model schedules iterations (of one or more requests), a URL run requests."""
        return "iterations/s" if self.config.get("plan") else "req/s"

    def _target(self, point: dict) -> float | None:
        """Open model: the requests/s (plans: iterations/s) due; a closed model's target counts connections."""
        if self.config.get("model") != "open":
            return None
        if point.get("target") is not None:
            return float(point["target"])
        return self.config.get("rate")

    def update(self, second: int, point: dict | None) -> None:
        """Show second `second` (1-based) and its merged point (None: nothing reported yet)."""
        if self.mode == "off":
            return
        rate = None
        if point:
            rate = self._rate(point)
            self.requests_done += point.get("requests", 0)
            self.dropped_total += point.get("dropped", 0) or 0
        if self.mode == "plain":
            if self._pending_banner:
                self.stream.write(self._pending_banner + "\n")
                self._pending_banner = None
            self.stream.write(self.plain_line(second, point, rate) + "\n")
            self.stream.flush()
        else:
            self._live.update(self._render(second, point, rate), refresh=True)

    def finish(self, result: dict) -> None:
        """Show the seconds that came only with the workers' final reports (the
        last one, often partial: a run's end is a final report, not a tick)."""
        if self.mode == "off":
            return
        for point in result.get("timeseries") or []:
            t = float(point.get("t", 0))
            if t > self.previous_t + 1e-6:
                self.update(max(1, math.ceil(t - 1e-6)), point)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- plain: one line per interval ----------------------------------------------------------
    def _remaining(self, second: int) -> str:
        if self.duration_s:
            return f"/{self.duration_s:g}s"
        if self.request_quota:
            return f" {self.requests_done / self.request_quota * 100:3.0f}%"
        return ""

    def _dropped_text(self, point: dict) -> str:
        # The point's count is this second's; the summary's is the run's: say which is which.
        return f"dropped {point['dropped']} this second, {self.dropped_total} in all"

    def plain_line(self, second: int, point: dict | None, rate: float | None = None) -> str:
        t = float(point["t"]) if point and "t" in point else float(second)
        when = f"{second:>4}s" if t == int(t) else f"{t:.3f}s"       # a partial last second: its end
        head = f"  {when}{self._remaining(second)}"
        if not point:
            return head
        parts = [f"{format_rate(rate):>9} req/s"]
        target = self._target(point)
        if target is not None:
            parts.append(f"target {format_rate(target)} {self._target_unit}")
        parts.append(f"p50 {_latency(point, 'p50'):>8}")
        parts.append(f"p99 {_latency(point, 'p99'):>8}")
        if point.get("p99_uncorrected") is not None:
            parts.append(f"(uncorrected p99 {_latency(point, 'p99_uncorrected')})")
        parts.append(_failed_text(point))
        parts.append(f"errors {errors_total(point.get('errors'))}")
        if "dropped" in point:
            parts.append(self._dropped_text(point))
        cpu = _workers_cpu(point)
        if cpu:
            parts.append("cpu " + " ".join(f"w{i}:{c:.0f}%" for i, c in cpu))
        return head + "  " + "  ".join(parts)

    # ---- rich: a bar and two lines, redrawn in place -------------------------------------------
    def _render(self, second: int, point: dict | None, rate: float | None):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        if self.duration_s:
            total, done = float(self.duration_s), float(min(second, self.duration_s))
            left = max(self.duration_s - second, 0)
            where = f"{second}s / {self.duration_s:g}s, {left:g}s left"
        elif self.request_quota:
            total, done = float(self.request_quota), float(min(self.requests_done, self.request_quota))
            where = f"{self.requests_done:,} / {plural(self.request_quota, 'request')}, {second}s"
        else:
            total, done, where = None, 0.0, f"{second}s"
        bar = Table.grid(padding=(0, 2))
        bar.add_row(ProgressBar(total=total, completed=done, width=40), Text(where))
        lines = [bar]
        if point:
            stats = Text()
            stats.append(f"{format_rate(rate)} req/s", style="bold")
            target = self._target(point)
            if target is not None:
                stats.append(f" (target {format_rate(target)} {self._target_unit})")
            stats.append(f"   p50 {_latency(point, 'p50')}   p99 {_latency(point, 'p99')}")
            if point.get("p99_uncorrected") is not None:
                stats.append(f" (uncorrected {_latency(point, 'p99_uncorrected')})")
            stats.append(f"   {_failed_text(point)}", style="bold red" if failed_count(point) else None)
            errors = errors_total(point.get("errors"))
            stats.append(f"   errors {errors}", style="bold red" if errors else None)
            if "dropped" in point:
                stats.append(f"   {self._dropped_text(point)}", style="bold red" if point["dropped"] else None)
            lines.append(stats)
            cpu = _workers_cpu(point)
            if cpu:
                cpu_line = Text("client CPU ")
                for index, percent in cpu:
                    cpu_line.append(f" w{index} {percent:.0f}%", style="bold red" if percent >= 90 else None)
                lines.append(cpu_line)
        return Group(*lines)
