"""A latency summary from an HDR histogram: the shape of the result file's
`latency`, `connect`, a step's `latency` ... (µs).  The run layer makes them
from the workers' histograms (surge.run.merge), `surge merge` from the parts'
decoded ones (surge.result.combine): one function, so a merged result reads
exactly as one machine's would."""
from __future__ import annotations

from surge.core._histogram import Histogram
from surge.result.format import percentile_key

PERCENTILES = (50, 75, 90, 95, 99, 99.9, 99.99)


def latency_summary(hist: Histogram) -> dict:
    """min/mean/stdev/max, the percentile table and the encoded histogram (µs)."""
    values = hist.values_at_percentiles(PERCENTILES)
    return {
        "unit": "us",
        "count": hist.total_count,
        "min": hist.min,
        "mean": round(hist.mean, 3),
        "stdev": round(hist.stdev, 3),
        "max": hist.max,
        "percentiles": {percentile_key(p): v for p, v in zip(PERCENTILES, values)},
        "hdr": hist.encode(),
    }
