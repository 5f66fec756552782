"""`--prometheus ADDRESS`: /metrics during a run, for Prometheus to scrape.

The supervisor calls `update(point, totals)` once a second with the merged
time-series point and the cumulative totals; a scrape reads the last update.
The exporter keeps its own registry (nothing of the process's default one
leaks in), and its collector builds the metric families from that state on
each scrape, so counters are exactly the result file's cumulative totals.

The duration histogram is fed from each second's HDR histogram (`point["hdr"]`),
bucket by bucket, never one observe() per request; a value is counted in the
first Prometheus bucket whose bound is >= the HDR bucket's lowest value (the
HDR bucket is at most 0.1% wide).
"""
from __future__ import annotations

import errno
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from surge.core._histogram import Histogram, HistogramDecodeError
from surge.result.failed import failed_reasons

DEFAULT_ADDRESS = "127.0.0.1:9464"
# Seconds: 100 µs to 10 s, about three per decade (wide enough for a LAN, fine enough for SLOs).
DURATION_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                      1.0, 2.5, 5.0, 10.0)
_BUCKET_BOUNDS_US = tuple(round(b * 1_000_000) for b in DURATION_BUCKETS_S)


class ExporterError(RuntimeError):
    """The exporter cannot serve (port in use, address not local); one line."""


class AddressError(ExporterError):
    """The --prometheus value does not parse (a usage error, exit 2)."""


def parse_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464', ':9464' or '9464' -> (host, port); loopback unless a host is given."""
    value = str(text).strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"--prometheus {text!r}: write an IPv6 address in brackets, like [::1]:9464")
    try:
        port = int(port_text)
    except ValueError:
        raise AddressError(f"--prometheus {text!r}: expected HOST:PORT like {DEFAULT_ADDRESS}") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"--prometheus {text!r}: port must be from 0 to 65535, got {port}")
    return host or "127.0.0.1", port


class _State:
    """What the last update said, plus the cumulative duration histogram."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.failed: dict[str, int] = {}            # run totals' failed requests by reason
        # Plan runs: (scenario, step, statuses, failed by reason) per step; the
        # request and failed counters are then per step (never also run-wide:
        # a sum over the family would count every request twice).
        self.steps: list[tuple[str, str, dict[str, int], dict[str, int]]] = []
        self.dropped = 0
        self.target_rate: float | None = None
        self.active_connections: int | None = None
        self.connections_opened: int | None = None   # None: a result without the count (before issue 11)
        self.bucket_counts = [0] * (len(DURATION_BUCKETS_S) + 1)     # the last is +Inf only
        self.duration_sum_s = 0.0
        self.scrapes = 0                # /metrics responses written out in full
        self.scraped = threading.Condition(self.lock)


class _Collector:
    def __init__(self, state: _State, segment: str | None = None):
        self.state = state
        self.segment = segment

    def collect(self):
        """Every family; an instance of a distributed run (--segment I/N) labels
        each series with its `segment` (I), so the pods' series stay apart and
        a dashboard sums them (`sum without (segment)`, or `sum` over all)."""
        for family in self._families():
            if self.segment is not None:
                family.samples = [sample._replace(labels={**sample.labels, "segment": self.segment})
                                  for sample in family.samples]
            yield family

    def _families(self):
        s = self.state
        with s.lock:
            statuses, errors, failed = dict(s.statuses), dict(s.errors), dict(s.failed)
            steps = list(s.steps)
            dropped, target, active = s.dropped, s.target_rate, s.active_connections
            opened = s.connections_opened
            counts, total_s = list(s.bucket_counts), s.duration_sum_s
        per_step = steps or [("", "", statuses, failed)]
        requests = CounterMetricFamily("surge_requests", "Completed responses, by HTTP status (plans: per step).",
                                       labels=["status", "scenario", "step"])
        for scenario, step, step_statuses, _ in per_step:
            for status, n in sorted(step_statuses.items()):
                requests.add_metric([status, scenario, step], n)
        yield requests
        failed_family = CounterMetricFamily(
            "surge_failed_requests", "Failed requests (a transport error, or a status >= 400 unless the plan "
            "step's expect.status allows it), by reason: a transport error kind or 'status NNN'.",
            labels=["reason", "scenario", "step"])
        for scenario, step, _, step_failed in per_step:
            for reason, n in sorted(step_failed.items()):
                failed_family.add_metric([reason, scenario, step], n)
        yield failed_family
        errors_family = CounterMetricFamily("surge_errors", "Transport errors (no response), by kind.",
                                            labels=["kind"])
        for kind, n in sorted(errors.items()):
            errors_family.add_metric([kind], n)
        yield errors_family
        yield CounterMetricFamily("surge_dropped", "Open model: requests not sent because they were due "
                                  "while no connection was free.", value=dropped)
        cumulative, buckets = 0, []
        for bound, n in zip(DURATION_BUCKETS_S, counts):
            cumulative += n
            buckets.append((_bound_label(bound), cumulative))
        buckets.append(("+Inf", cumulative + counts[-1]))
        yield HistogramMetricFamily("surge_request_duration_seconds",
                                    "Request latency (corrected in the open model), from surge's HDR histograms.",
                                    buckets=buckets, sum_value=total_s)
        if target is not None:
            yield GaugeMetricFamily("surge_target_rate", "Open model: requests per second due by the schedule.",
                                    value=target)
        if active is not None:
            yield GaugeMetricFamily("surge_active_connections", "Connections open to the target.", value=active)
        if opened is not None:
            yield CounterMetricFamily("surge_connections_opened", "Connections established (TCP up and, over "
                                      "TLS, the handshake done); with keep-alive off, one per request.", value=opened)


def _bound_label(bound: float) -> str:
    return repr(float(bound))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):       # no access log on the user's terminal
        pass


class _Delivered:
    """A WSGI response body whose close() (called by the server after the last
    byte is written) counts a delivered scrape: stop() waits for one, and must
    not shut down while that response is still on its way."""

    def __init__(self, body, state: _State):
        self.body, self.state = body, state

    def __iter__(self):
        return iter(self.body)

    def close(self):
        with self.state.lock:
            self.state.scrapes += 1
            self.state.scraped.notify_all()


def _metrics_server(host: str, port: int, registry: CollectorRegistry, state: _State):
    """A threaded WSGI server for /metrics that counts delivered scrapes."""
    metrics_app = make_wsgi_app(registry)

    def app(environ, start_response):
        body = metrics_app(environ, start_response)
        return body if environ.get("PATH_INFO") == "/favicon.ico" else _Delivered(body, state)

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("MetricsServer", (ThreadingMixIn, WSGIServer),
                        {"daemon_threads": True, "address_family": family})
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="surge-metrics", daemon=True)
    thread.start()
    return server, thread


class PrometheusExporter:
    """Serves /metrics on `address` (loopback by default) from its own registry."""

    def __init__(self, address: str = DEFAULT_ADDRESS, config: dict | None = None, segment: int | None = None):
        """`segment`: this instance's index in a distributed run (`segment` label), None for a whole run."""
        self.address = address
        self.host, self.port = parse_address(address)
        self.config = config or {}
        self.state = _State()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self.state, None if segment is None else str(segment)))
        self._server = None
        self._thread = None
        if self.config.get("model") == "open" and self.config.get("rate"):
            self.state.target_rate = float(self.config["rate"])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> "PrometheusExporter":
        """Bind and serve; ExporterError (before any load is sent) when the address is unusable."""
        try:
            self._server, self._thread = _metrics_server(self.host, self.port, self.registry, self.state)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ExporterError(f"--prometheus {self.address}: cannot serve /metrics: {reason}") from None
        self.port = self._server.server_address[1]          # the real one when 0 was asked
        return self

    def update(self, point: dict, totals: dict, steps: list[dict] | None = None) -> None:
        """One second's merged point and the cumulative totals (called by the
        supervisor), and in plan runs each step's cumulative counters (the
        result file's `steps` shape: scenario, step, responses_by_status, failed)."""
        added = _bucketed_hdr(point.get("hdr") if point else None)
        s = self.state
        with s.lock:
            s.statuses = {str(k): int(v) for k, v in (totals.get("responses_by_status") or {}).items()}
            errors = totals.get("errors")
            if isinstance(errors, dict):
                s.errors = {str(k): int(v) for k, v in errors.items()}
            s.failed = failed_reasons(totals)
            if steps:
                s.steps = [(str(st.get("scenario", "")), str(st.get("step", "")),
                            {str(k): int(v) for k, v in (st.get("responses_by_status") or {}).items()},
                            failed_reasons(st)) for st in steps]
            s.dropped = int(totals.get("dropped", 0) or 0)
            # Only the open model's target is a rate (a closed model's counts connections).
            if point and point.get("target") is not None and self.config.get("model") == "open":
                s.target_rate = float(point["target"])
            # Exported only when the run reports it: a configured count is not an observed one.
            active = (point or {}).get("active_connections", totals.get("active_connections"))
            if active is not None:
                s.active_connections = int(active)
            if isinstance(totals.get("connections_opened"), int):
                s.connections_opened = int(totals["connections_opened"])
            if added is not None:
                counts, sum_s = added
                s.bucket_counts = [a + b for a, b in zip(s.bucket_counts, counts)]
                s.duration_sum_s += sum_s

    def finish(self, result: dict) -> None:
        """Set every metric to the result's final numbers (the last, partial second
        included), the histogram from the whole run's `latency.hdr`."""
        whole = _bucketed_hdr((result.get("latency") or {}).get("hdr"))
        last_point = (result.get("timeseries") or [{}])[-1]
        self.update({k: v for k, v in last_point.items() if k != "hdr"}, result.get("totals") or {},
                    result.get("steps") or None)
        if whole is not None:
            with self.state.lock:
                self.state.bucket_counts, self.state.duration_sum_s = whole

    def stop(self, wait_for_scrape_s: float = 0.0) -> None:
        """Stop serving; with `wait_for_scrape_s`, first wait (that long at most) for
        one more scrape to be delivered, so that Prometheus sees the final numbers."""
        if self._server is not None and wait_for_scrape_s > 0:
            with self.state.lock:
                seen = self.state.scrapes
                self.state.scraped.wait_for(lambda: self.state.scrapes > seen, timeout=wait_for_scrape_s)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _bucketed_hdr(hdr) -> tuple[list[int], float] | None:
    """_bucketed() of an encoded HDR histogram; None when absent or undecodable."""
    if not isinstance(hdr, str):
        return None
    try:
        return _bucketed(Histogram.decode(hdr))
    except (HistogramDecodeError, ValueError):
        return None


def _bucketed(hist: Histogram) -> tuple[list[int], float]:
    """Per-bucket (non-cumulative) counts of a µs histogram, and its sum in seconds."""
    counts = [0] * (len(_BUCKET_BOUNDS_US) + 1)
    total_us = 0.0
    for low, high, n in hist.iter_recorded():
        total_us += (low + high) / 2 * n
        for i, bound in enumerate(_BUCKET_BOUNDS_US):
            if low <= bound:
                counts[i] += n
                break
        else:
            counts[-1] += n
    return counts, total_us / 1_000_000
