"""The Prometheus exporter: its /metrics over real HTTP, and a real Prometheus
server scraping it, asked through its HTTP API."""
import json
import random
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from surge.core._histogram import Histogram
from surge.report.prometheus import (DURATION_BUCKETS_S, AddressError, ExporterError, PrometheusExporter,
                                     parse_address)
from tests.report.synthetic import make_result

ACTIVE_CONNECTIONS = 64
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "surge.json"


def replay(exporter: PrometheusExporter, result: dict, start: int = 0, stop: int | None = None) -> None:
    """Feed the exporter as the supervisor does: each second's point (those in
    [start, stop)) and the cumulative totals up to it."""
    statuses, timeouts, dropped, opened = {}, 0, 0, 0
    for i, point in enumerate(result["timeseries"][:stop]):
        for status, n in point["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
        timeouts += point["errors"]
        dropped += point.get("dropped", 0)
        opened += point.get("connections_opened", 0)
        totals = {"responses_by_status": dict(statuses), "dropped": dropped,
                  "errors": {**{k: 0 for k in result["totals"]["errors"]}, "timeout": timeouts},
                  **({"connections_opened": opened} if "connections_opened" in result["totals"] else {})}
        if i >= start:
            exporter.update({**point, "active_connections": ACTIVE_CONNECTIONS}, totals)


def expected_buckets(result: dict) -> dict[float, int]:
    """Cumulative count at or below each bound, from the per-second histograms."""
    total = Histogram()
    for point in result["timeseries"]:
        total.add(Histogram.decode(point["hdr"]))
    out = {}
    for bound in DURATION_BUCKETS_S:
        bound_us = round(bound * 1_000_000)
        out[bound] = sum(n for low, _, n in total.iter_recorded() if low <= bound_us)
    return out


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def exporter():
    started = []

    def start(**kwargs):
        e = PrometheusExporter(**{"address": "127.0.0.1:0", **kwargs}).start()
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def test_metrics_over_http_equal_the_result(exporter):
    result = make_result(20, seed=11)
    e = exporter(config=result["config"])
    replay(e, result)
    samples = scrape(e.url)
    totals = result["totals"]
    for status, n in totals["responses_by_status"].items():
        assert samples[("surge_requests_total", (("scenario", ""), ("status", status), ("step", "")))] == n
    assert samples[("surge_errors_total", (("kind", "timeout"),))] == totals["errors"]["timeout"]
    assert samples[("surge_errors_total", (("kind", "connect"),))] == 0
    assert samples[("surge_dropped_total", ())] == totals["dropped"]
    assert samples[("surge_target_rate", ())] == result["config"]["rate"]
    assert samples[("surge_active_connections", ())] == ACTIVE_CONNECTIONS
    assert samples[("surge_request_duration_seconds_count", ())] == result["latency"]["count"]
    mean_s = samples[("surge_request_duration_seconds_sum", ())] / result["latency"]["count"]
    assert mean_s == pytest.approx(result["latency"]["mean"] / 1e6, rel=0.002)
    for bound, count in expected_buckets(result).items():
        assert samples[("surge_request_duration_seconds_bucket", (("le", repr(bound)),))] == count
    assert samples[("surge_request_duration_seconds_bucket", (("le", "+Inf"),))] == result["latency"]["count"]


def test_connections_opened_is_a_counter_only_when_the_result_counts_them(exporter):
    from tests.report.synthetic import add_connection_costs
    result = add_connection_costs(make_result(6, seed=5), keepalive=False)
    e = exporter(config=result["config"])
    replay(e, result)
    assert scrape(e.url)[("surge_connections_opened_total", ())] == result["totals"]["connections_opened"]
    old = exporter(config=result["config"])
    replay(old, make_result(6, seed=5))
    assert not any(name.startswith("surge_connections_opened") for name, _ in scrape(old.url))


def test_finish_sets_the_final_numbers(exporter):
    """Live updates may miss the last, partial second; finish() makes the metrics the result's."""
    result = make_result(10, seed=13)
    e = exporter(config=result["config"])
    replay(e, result, stop=8)
    before = scrape(e.url)[("surge_request_duration_seconds_count", ())]
    assert before < result["latency"]["count"]
    e.finish(result)
    samples = scrape(e.url)
    assert samples[("surge_request_duration_seconds_count", ())] == result["latency"]["count"]
    assert samples[("surge_errors_total", (("kind", "timeout"),))] == result["totals"]["errors"]["timeout"]
    assert samples[("surge_dropped_total", ())] == result["totals"]["dropped"]


class WatchedCondition(threading.Condition):
    """The exporter's "a scrape was delivered" condition, telling the test when
    stop() begins to wait on it and how that wait ended: the test awaits that
    event instead of guessing how long stop() takes to get there."""

    def __init__(self, lock):
        super().__init__(lock)
        self.waiting = threading.Event()
        self.waits = []                             # (timeout asked, whether a scrape ended it)

    def wait_for(self, predicate, timeout=None):
        self.waiting.set()
        ended_by_scrape = super().wait_for(predicate, timeout)
        self.waits.append((timeout, ended_by_scrape))
        return ended_by_scrape


def watched_exporter() -> tuple[PrometheusExporter, WatchedCondition]:
    e = PrometheusExporter("127.0.0.1:0")
    e.state.scraped = condition = WatchedCondition(e.state.lock)
    return e.start(), condition


def test_stop_waits_for_one_more_scrape():
    e, condition = watched_exporter()
    stopper = threading.Thread(target=e.stop, kwargs={"wait_for_scrape_s": 60})
    stopper.start()
    assert condition.waiting.wait(30), "stop() never waited for a scrape"
    assert stopper.is_alive()                       # waiting, and still serving:
    assert ("surge_dropped_total", ()) in scrape(e.url)
    stopper.join(30)                                # the bound is only against a hang
    assert not stopper.is_alive() and condition.waits == [(60, True)]
    with pytest.raises(OSError):                    # stopped once that scrape was delivered
        scrape(e.url)


def test_stop_gives_up_waiting_when_nobody_scrapes():
    e, condition = watched_exporter()
    e.stop(wait_for_scrape_s=0.3)
    assert condition.waits == [(0.3, False)]        # waited that long, for a scrape that never came
    with pytest.raises(OSError):
        scrape(e.url)


def test_own_registry_only(exporter):
    e = exporter()
    names = {name for name, _ in scrape(e.url)}
    assert not any(n.startswith(("python_", "process_")) for n in names)
    # Nothing reported yet: zero counters, no target (closed model), no connection gauge.
    assert ("surge_dropped_total", ()) in scrape(e.url)
    assert not any(n in names for n in ("surge_target_rate", "surge_active_connections"))


def test_port_in_use_fails_at_start():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(ExporterError) as info:
            PrometheusExporter(f"127.0.0.1:{port}").start()
        message = str(info.value)
        assert "\n" not in message and f"127.0.0.1:{port}" in message and "already in use" in message
    finally:
        busy.close()


def test_stop_frees_the_port(exporter):
    e = PrometheusExporter("127.0.0.1:0").start()
    port = e.port
    e.stop()
    again = PrometheusExporter(f"127.0.0.1:{port}").start()     # ExporterError if the port were still held
    try:
        assert again.port == port
    finally:
        again.stop()


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("9464", ("127.0.0.1", 9464)), (":9464", ("127.0.0.1", 9464)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9464", ("::1", 9464)), ("localhost:1", ("localhost", 1)),
])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:http", "1:2:3", "127.0.0.1:70000", ""])
def test_parse_address_errors(text):
    with pytest.raises(AddressError, match="--prometheus"):
        parse_address(text)


# ---- a real Prometheus ------------------------------------------------------------------------
def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reserved_port() -> int:
    """A port free now and below the kernel's ephemeral range, so that no socket the
    session opens meanwhile (a client connection, a port-0 server) is given it: it
    stays free while it waits to be bound, minutes later, by a test of this session."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, max(low, 10_001))
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    return free_port()


def api(base: str, query: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(predicate, timeout_s: float, what: str):
    """Poll `predicate` until it is true. A poll, not a sleep as synchronisation:
    Prometheus's HTTP API has nothing to wait on (no push when a scrape lands);
    the deadline is only against a hang, and generous for a loaded 2-core machine
    (scrapes come every 1 s)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def wait_until_scraping(base: str, job: str) -> None:
    """Prometheus starts scraping a new target some seconds after it is ready
    (discovery updates are batched): wait until it has tried the target of `job`."""
    def scraping():
        with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        return any(t["labels"].get("job") == job and not t["lastScrape"].startswith("0001") for t in targets)
    wait_for(scraping, 20, f"Prometheus to start scraping the {job} target")


class SharedPrometheus:
    """One real Prometheus for the session's tests (tests/report/conftest.py starts it).

    Its scrape targets are declared up front, TARGETS of them, each its own job
    (`surge-0`, `surge-1`, ...) on a reserved_port(): Prometheus takes
    some seconds to begin scraping a target added later, so a test takes one of
    these (`target()`: its port and job) and binds the exporter there.  Every test
    selects its series by that job, so one test never reads another's."""

    TARGETS = 4

    def __init__(self, binary: str, folder: Path):
        self.binary, self.folder = binary, folder
        self.procs: list[subprocess.Popen] = []
        self.free: list[tuple[int, str]] = []
        self.base = ""

    def target(self) -> tuple[int, str]:
        if not self.free:                            # (a further server, should the session need more)
            self._start()
        return self.free.pop(0)

    def _start(self) -> None:
        n = len(self.procs)
        folder = self.folder / f"server-{n}"
        folder.mkdir()
        targets = [(reserved_port(), f"surge-{n * self.TARGETS + i}") for i in range(self.TARGETS)]
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n" + "".join(
                f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
                for port, job in targets))
        port = free_port()
        proc = subprocess.Popen([self.binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {proc.stderr.read().decode()[-2000:]}")
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                return response.status == 200
        wait_for(ready, 20, "prometheus to be ready")
        self.base, self.free = base, targets

    def stop(self) -> None:
        """Stop every server started; a later target() starts a new one."""
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.free = []


def value(results: list, **labels) -> float:
    for r in results:
        if all(r["metric"].get(k) == v for k, v in labels.items()):
            return float(r["value"][1])
    raise AssertionError(f"no series with {labels} in {results}")


def test_real_prometheus_scrapes_what_the_result_says(exporter, prometheus_server):
    result = make_result(30, seed=12)
    port, job = prometheus_server.target()
    e = exporter(config=result["config"], address=f"127.0.0.1:{port}")
    base = prometheus_server.base
    of_job = f'{{job="{job}"}}'
    half = len(result["timeseries"]) // 2
    replay(e, result, stop=half)                     # a scrape or more of a run in progress...
    wait_for(lambda: api(base, f"surge_requests_total{of_job}"), 15, "the first scrape")
    replay(e, result, start=half)                    # ...then the rest of it
    totals = result["totals"]

    def final_scraped():
        return api(base, f"sum(surge_requests_total{of_job})") and \
            float(api(base, f"sum(surge_requests_total{of_job})")[0]["value"][1]) == totals["requests"]
    wait_for(final_scraped, 15, "a scrape of the final values")

    requests = api(base, f"surge_requests_total{of_job}")
    for status, n in totals["responses_by_status"].items():
        assert value(requests, status=status, job=job) == n
    errors = api(base, f"surge_errors_total{of_job}")
    assert value(errors, kind="timeout") == totals["errors"]["timeout"]
    assert value(api(base, f"surge_dropped_total{of_job}"), job=job) == totals["dropped"]
    assert value(api(base, f"surge_target_rate{of_job}"), job=job) == result["config"]["rate"]
    assert value(api(base, f"surge_active_connections{of_job}"), job=job) == ACTIVE_CONNECTIONS
    assert value(api(base, f"surge_request_duration_seconds_count{of_job}"), job=job) == result["latency"]["count"]
    buckets = api(base, f"surge_request_duration_seconds_bucket{of_job}")
    for bound, count in expected_buckets(result).items():
        assert value(buckets, le=repr(bound)) == count
    # Prometheus' own quantile estimate lands in the bucket that holds surge's exact p50.
    p50_s = result["latency"]["percentiles"]["50"] / 1e6
    estimate = float(api(base, f"histogram_quantile(0.5, surge_request_duration_seconds_bucket{of_job})")[0]
                     ["value"][1])
    upper = min(b for b in DURATION_BUCKETS_S if b >= p50_s)
    lower = max([b for b in DURATION_BUCKETS_S if b < p50_s] or [0.0])
    assert lower <= estimate <= upper

    # Every query of the Grafana dashboard is valid PromQL on these metrics and finds data.
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = (target["expr"].replace("$__rate_interval", "1m").replace('"$job"', f'"{job}"')
                    .replace('"$instance"', '".*"'))
            assert api(base, expr), (panel["title"], expr)


def test_a_real_open_model_run_replayed(exporter, surge_server):
    """A real run's points (with their interval histograms) give the result file's numbers."""
    from tests.helpers import run_surge
    server = surge_server()
    run = run_surge("run", server.url, "-d", "2s", "--rate", "2k", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    result = run.result
    e = exporter(config=result["config"])
    for point in result["timeseries"]:
        e.update(point, result["totals"])
    samples = scrape(e.url)
    assert samples[("surge_request_duration_seconds_count", ())] == result["latency"]["count"]
    assert samples[("surge_requests_total", (("scenario", ""), ("status", "200"), ("step", "")))] == \
        result["totals"]["responses_by_status"]["200"]
    assert samples[("surge_dropped_total", ())] == result["totals"]["dropped"]
    assert samples[("surge_target_rate", ())] == 2000


def test_surge_run_scraped_by_real_prometheus(prometheus_server, surge_server, tmp_path):
    """End to end: `surge run --prometheus` is scraped by a real Prometheus during
    the run; afterwards Prometheus' API gives the result file's numbers."""
    import json as _json
    import sys as _sys

    server = surge_server()
    port, job = prometheus_server.target()
    base = prometheus_server.base
    of_job = f'{{job="{job}"}}'
    path = tmp_path / "r.json"

    wait_until_scraping(base, job)
    proc = subprocess.Popen([_sys.executable, "-m", "surge", "run", server.url, "--rate", "1500", "-d", "4s",
                             "-w", "2", "-q", "--prometheus", f"127.0.0.1:{port}", "--json", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # While the run goes on, Prometheus already sees requests.  (Queries use
    # max_over_time: once surge exits, its series are marked stale.)
    seen_during_run = False
    while True:
        try:
            seen_during_run = seen_during_run or bool(api(base, f"sum(surge_requests_total{of_job}) > 0"))
        except OSError:
            pass
        try:                # between queries, wait for surge's exit itself (it ends the loop at once)
            proc.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            pass
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen_during_run
    result = _json.loads(path.read_text())
    totals = result["totals"]
    wait_for(lambda: api(base, f"sum(max_over_time(surge_requests_total{of_job}[5m])) == {totals['requests']}"),
             15, "Prometheus to hold the final count")
    requests = api(base, f"max_over_time(surge_requests_total{of_job}[5m])")
    assert value(requests, status="200") == totals["responses_by_status"]["200"]
    assert value(api(base, f"max_over_time(surge_request_duration_seconds_count{of_job}[5m])"), job=job) == \
        result["latency"]["count"]
    assert value(api(base, f"max_over_time(surge_target_rate{of_job}[5m])"), job=job) == 1500
    assert value(api(base, f"max_over_time(surge_dropped_total{of_job}[5m])"), job=job) == totals["dropped"]


def test_surge_run_prometheus_port_in_use_fails_before_load(surge_server):
    from tests.helpers import assert_one_line_error, run_surge

    server = surge_server()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        before = server.served()
        run = run_surge("run", server.url, "-d", "2s", "-q", "--prometheus", f"127.0.0.1:{busy.getsockname()[1]}",
                        json_result=False)
        assert_one_line_error(run, 1, "--prometheus")
        assert server.served() == before           # no load was sent
    finally:
        busy.close()


def test_an_instance_of_a_distributed_run_labels_every_series_with_its_segment(exporter):
    """`surge run --segment 2/3 --prometheus ...` (the pods of `surge k8s`): each
    series carries segment="2", with the same values as without the label."""
    result = make_result(10, seed=3)
    plain, labelled = exporter(config=result["config"]), exporter(config=result["config"], segment=2)
    replay(plain, result)
    replay(labelled, result)
    without, with_segment = scrape(plain.url), scrape(labelled.url)
    assert with_segment and all(dict(labels).get("segment") == "2" for _, labels in with_segment)
    assert {(name, tuple(kv for kv in labels if kv[0] != "segment")): v for (name, labels), v in
            with_segment.items()} == without


def test_the_dashboard_sums_over_segments():
    """Every panel's query aggregates (sum, or sum by a label other than segment),
    so the pods of one run show as one run."""
    import re
    exprs = re.findall(r'"expr": "([^"\\]*(?:\\.[^"\\]*)*)"', DASHBOARD.read_text())
    assert exprs
    for expr in exprs:
        for selector in re.finditer(r"surge_[a-z_]+", expr):
            before = expr[:selector.start()]
            assert "sum" in before, expr          # inside an aggregation
        assert "segment" not in expr, expr        # never grouped by it
