"""Derived numbers every report shows the same way (error rate, per-interval
rates, units), so the HTML page, the CSV, compare and live progress agree."""
from __future__ import annotations

from surge.core._histogram import Histogram, HistogramDecodeError

# A last interval shorter than this is too short to stand for a per-second
# rate (the run stopped a few ms past a whole second).
MIN_INTERVAL_S = 0.5


def format_us(value_us: float | None, us_digits: int | None = None) -> str:
    """Microseconds -> '412us' / '1.25ms' / '2.10s' ('-' when unknown): the one
    duration formatter of every report.

    Below a millisecond: whole or one decimal ('412us', '412.5us'), or, with
    `us_digits`, that many decimals always (the terminal summary's fixed
    columns, as wrk prints them: '412.00us')."""
    if value_us is None:
        return "-"
    if value_us < 1000:
        if us_digits is not None:
            return f"{value_us:.{us_digits}f}us"
        return f"{value_us:.0f}us" if value_us == int(value_us) else f"{value_us:.1f}us"
    if value_us < 1_000_000:
        return f"{value_us / 1000:.2f}ms"
    return f"{value_us / 1_000_000:.2f}s"


def format_bytes(n: float) -> str:
    """12345678 -> '11.77MiB' (binary units, as wrk prints transfer)."""
    for limit, suffix in ((1024 ** 3, "GiB"), (1024 ** 2, "MiB"), (1024, "KiB")):
        if abs(n) >= limit:
            return f"{n / limit:.2f}{suffix}"
    return f"{n:.0f}B"


def format_rate(per_s: float | None) -> str:
    """A rate with thousands separators: whole numbers from 100/s up ('68,737'),
    one decimal below, where the fraction still says something ('40.5')."""
    if per_s is None:
        return "-"
    return f"{per_s:,.0f}" if abs(per_s) >= 100 else f"{per_s:,.1f}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 worker', '2 workers', '1,234 requests'."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def format_percent(fraction: float | None, digits: int = 2) -> str:
    return "-" if fraction is None else f"{fraction * 100:.{digits}f}%"


def is_open_model(result: dict) -> bool:
    return result.get("config", {}).get("model") == "open"


def interval_lengths_s(timeseries: list[dict]) -> list[float]:
    """Length of each point's interval: t is the end of it, the previous t its start."""
    lengths, previous_t = [], 0.0
    for point in timeseries:
        t = float(point["t"])
        lengths.append(max(t - previous_t, 0.0))
        previous_t = t
    return lengths


def interval_starts_s(timeseries: list[dict]) -> list[float]:
    starts, previous_t = [], 0.0
    for point in timeseries:
        starts.append(previous_t)
        previous_t = float(point["t"])
    return starts


def per_second_rates(timeseries: list[dict], key: str = "requests") -> list[float | None]:
    """points[key] / interval length; None for an interval too short to be a rate."""
    return [point.get(key, 0) / length if length >= MIN_INTERVAL_S else None
            for point, length in zip(timeseries, interval_lengths_s(timeseries))]


# A worker busier than this (of one core) was likely pacing the run itself.
SATURATED_CPU_FRACTION = 0.9


# A steady second is a whole one (the last, partial interval is left out) that
# is not the first (start-up: connecting, warming caches, forking).
_WHOLE_SECOND_SLACK_S = 0.02


def steady_points(timeseries: list[dict]) -> list[dict]:
    """The points of whole, non-first seconds."""
    return [point for i, (point, length) in enumerate(zip(timeseries, interval_lengths_s(timeseries)))
            if i > 0 and abs(length - 1.0) <= _WHOLE_SECOND_SLACK_S]


def client_cpu_by_worker(result: dict) -> dict[int, float]:
    """Each worker's CPU as a fraction of one core (at most 1.0): the median of
    its per-second samples in steady seconds. Empty when the run had no such
    second: a whole-run average of a short run is mostly start-up CPU divided
    by a few milliseconds (it read 1282% for `-n 1`), so it says nothing."""
    samples: dict[int, list[float]] = {}
    for point in steady_points(result.get("timeseries") or []):
        for worker in point.get("workers") or ():
            if isinstance(worker, dict) and isinstance(worker.get("cpu_percent"), (int, float)):
                samples.setdefault(worker.get("index", 0), []).append(worker["cpu_percent"] / 100)
    # One worker is one thread: above one core is sampling jitter (tick edges), not work.
    return {index: min(sorted(values)[len(values) // 2], 1.0) for index, values in sorted(samples.items())}


def saturated_workers(result: dict, threshold: float = SATURATED_CPU_FRACTION) -> list[tuple[int, float]]:
    """(worker index, CPU fraction) of the workers at or above `threshold`."""
    return [(index, cpu) for index, cpu in client_cpu_by_worker(result).items() if cpu >= threshold]


def merged_histogram(points: list[dict], hdr_key: str = "hdr") -> Histogram | None:
    """The exact histogram of these seconds (each point's encoded histogram
    added), or None when a point lacks one or any of them does not decode."""
    if not points or not all(isinstance(p.get(hdr_key), str) for p in points):
        return None
    try:
        total = Histogram()
        for point in points:
            total.add(Histogram.decode(point[hdr_key]))
    except (HistogramDecodeError, ValueError):
        return None
    return total
