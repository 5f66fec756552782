"""Derived numbers every report shows the same way (error rate, per-interval
rates, units), so the HTML page, the CSV, compare and live progress agree."""
from __future__ import annotations

from surge.core._histogram import Histogram, HistogramDecodeError

# A last interval shorter than this is too short to stand for a per-second
# rate (the run stopped a few ms past a whole second).
MIN_INTERVAL_S = 0.5


def format_us(value_us: float | None) -> str:
    """Microseconds -> '412us' / '1.25ms' / '2.10s' ('-' when unknown)."""
    if value_us is None:
        return "-"
    if value_us < 1000:
        return f"{value_us:.0f}us" if value_us == int(value_us) else f"{value_us:.1f}us"
    if value_us < 1_000_000:
        return f"{value_us / 1000:.2f}ms"
    return f"{value_us / 1_000_000:.2f}s"


def format_rate(per_s: float | None) -> str:
    """Requests per second with thousands separators."""
    return "-" if per_s is None else f"{per_s:,.1f}"


def format_percent(fraction: float | None, digits: int = 2) -> str:
    return "-" if fraction is None else f"{fraction * 100:.{digits}f}%"


def errors_total(errors) -> int:
    """Errors are a dict by kind in totals, a plain count in time-series points."""
    if isinstance(errors, dict):
        return sum(int(v) for v in errors.values())
    return int(errors or 0)


def error_rate(requests: int, errors) -> float:
    """Failed attempts over all attempts (completed responses of any status + errors)."""
    failed = errors_total(errors)
    attempts = requests + failed
    return failed / attempts if attempts else 0.0


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


def percentile_key(percentile: float) -> str:
    """99.0 -> '99', 99.9 -> '99.9' (the result file's percentile keys)."""
    return str(int(percentile)) if percentile == int(percentile) else str(percentile)


# A worker busier than this (of one core) was likely pacing the run itself.
SATURATED_CPU_FRACTION = 0.9


def client_cpu_by_worker(result: dict) -> dict[int, float]:
    """Each worker's CPU as a fraction of one core: the median of its per-second
    samples when the time series has them, else its whole-run average."""
    samples: dict[int, list[float]] = {}
    for point in result.get("timeseries", []):
        for worker in point.get("workers") or ():
            if worker.get("cpu_percent") is not None:
                samples.setdefault(worker.get("index", 0), []).append(worker["cpu_percent"] / 100)
    if samples:
        return {index: sorted(values)[len(values) // 2] for index, values in sorted(samples.items())}
    duration = result.get("totals", {}).get("duration_s") or 0
    if duration <= 0:
        return {}
    return {w.get("index", i): (w.get("user_s", 0) + w.get("sys_s", 0)) / duration
            for i, w in enumerate((result.get("resources") or {}).get("workers") or [])}


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
