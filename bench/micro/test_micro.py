"""Micro-benchmarks (pytest-benchmark): histogram recording and response framing.

    make bench          (or: .venv/bin/python -m pytest bench/micro --benchmark-only)

Framing is measured against httptools' parser on the same bytes: the reason
the engine frames responses in Cython instead of calling httptools per
response (see bench/RESULTS.md)."""
import httptools
import numpy as np
import pytest

from surge.core._engine import ResponseFramer
from surge.core._histogram import Histogram

VALUES = np.random.default_rng(1).lognormal(6, 1.5, size=1_000_000).astype(np.int64)
NGINX_RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 19:21:49 GMT\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
CHUNKED_RESPONSE = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
REPEAT = 10_000


def test_histogram_record_1m_values(benchmark):
    """Bar: <= 10 ns per value (this records 1M values per round)."""
    hist = Histogram()
    benchmark(hist.record_many, VALUES)
    per_value_ns = benchmark.stats.stats.min / len(VALUES) * 1e9
    benchmark.extra_info["ns_per_value"] = round(per_value_ns, 2)
    assert hist.total_count % len(VALUES) == 0


@pytest.mark.parametrize("name, data", [("nginx", NGINX_RESPONSE), ("chunked", CHUNKED_RESPONSE)], ids=["nginx", "chunked"])
def test_frame_surge(benchmark, name, data):
    framer = ResponseFramer()
    done = benchmark(framer.feed_count, data, REPEAT)
    benchmark.extra_info["ns_per_response"] = round(benchmark.stats.stats.min / REPEAT * 1e9, 1)
    assert done == REPEAT


class _Sink:
    """The fewest callbacks httptools allows for framing: message complete only."""
    __slots__ = ("done",)

    def __init__(self):
        self.done = 0

    def on_message_complete(self):
        self.done += 1


@pytest.mark.parametrize("name, data", [("nginx", NGINX_RESPONSE), ("chunked", CHUNKED_RESPONSE)], ids=["nginx", "chunked"])
def test_frame_httptools(benchmark, name, data):
    sink = _Sink()
    parser = httptools.HttpResponseParser(sink)
    blob = data * REPEAT

    def feed():
        parser.feed_data(blob)
        return parser.get_status_code()

    assert benchmark(feed) == 200
    benchmark.extra_info["ns_per_response"] = round(benchmark.stats.stats.min / REPEAT * 1e9, 1)
    assert sink.done >= REPEAT
