"""Prometheus in plan runs: per-step `scenario`/`step` labels (issue 9 item 6) and
the failed-requests counter by reason (item 2), over /metrics and through a real
Prometheus scraping `surge run plan.yaml --prometheus`."""
import json
import subprocess
import sys

from tests.report.test_prometheus import api, exporter, scrape, value, wait_for, wait_until_scraping  # noqa: F401


def _step(scenario, step, statuses, reasons):
    return {"scenario": scenario, "step": step, "responses_by_status": statuses,
            "failed": {"count": sum(reasons.values()), "by_reason": reasons}}


def test_plan_steps_get_their_own_series(exporter):
    steps = [_step("browse", "item", {"200": 90}, {}),
             _step("browse", "missing", {"404": 40}, {"status 404": 40}),
             _step("picky", "search", {"200": 7, "503": 3}, {"status 200": 7, "status 503": 3, "timeout": 1})]
    totals = {"responses_by_status": {"200": 97, "404": 40, "503": 3},
              "errors": {"timeout": 1, "connect": 0},
              "failed": {"count": 51, "by_reason": {"status 404": 40, "status 200": 7, "status 503": 3, "timeout": 1}}}
    e = exporter(config={"model": "closed", "plan": "p"})
    e.update({"t": 1.0}, totals, steps)
    samples = scrape(e.url)

    def labels(**kw):
        return tuple(sorted(kw.items()))
    requests = {k[1]: v for k, v in samples.items() if k[0] == "surge_requests_total"}
    assert requests == {labels(scenario="browse", step="item", status="200"): 90,
                        labels(scenario="browse", step="missing", status="404"): 40,
                        labels(scenario="picky", step="search", status="200"): 7,
                        labels(scenario="picky", step="search", status="503"): 3}
    failed = {k[1]: v for k, v in samples.items() if k[0] == "surge_failed_requests_total"}
    assert failed == {labels(scenario="browse", step="missing", reason="status 404"): 40,
                      labels(scenario="picky", step="search", reason="status 200"): 7,
                      labels(scenario="picky", step="search", reason="status 503"): 3,
                      labels(scenario="picky", step="search", reason="timeout"): 1}
    assert samples[("surge_errors_total", (("kind", "timeout"),))] == 1


def test_url_run_failed_counter_has_empty_step_labels(exporter):
    e = exporter()
    e.update({"t": 1.0}, {"responses_by_status": {"500": 98}, "errors": {"timeout": 2},
                          "failed": {"count": 100, "by_reason": {"status 500": 98, "timeout": 2}}})
    samples = scrape(e.url)
    assert samples[("surge_failed_requests_total", (("reason", "status 500"), ("scenario", ""), ("step", "")))] == 98
    assert samples[("surge_failed_requests_total", (("reason", "timeout"), ("scenario", ""), ("step", "")))] == 2
    # An old result (no "failed"): its transport errors are its failed requests.
    e.finish({"totals": {"responses_by_status": {"200": 5}, "errors": {"read": 1}}, "timeseries": [{}]})
    assert scrape(e.url)[("surge_failed_requests_total", (("reason", "read"), ("scenario", ""), ("step", "")))] == 1


def test_plan_run_scraped_by_real_prometheus(prometheus_server, surge_server, tmp_path):
    server = surge_server(app="demo")
    port, job = prometheus_server.target()
    base = prometheus_server.base
    of_job = f'{{job="{job}"}}'
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""
name: labels
target: {server.url}
load: {{model: closed, vus: 2, duration: 3s}}
scenarios:
  - name: browse
    steps:
      - {{name: item, request: GET /items/5}}
      - {{name: missing, request: GET /no-such-route}}
""")
    path = tmp_path / "r.json"

    wait_until_scraping(base, job)
    proc = subprocess.run([sys.executable, "-m", "surge", "run", str(plan), "-q", "--prometheus", f"127.0.0.1:{port}",
                           "--json", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(path.read_text())
    steps = {s["step"]: s for s in result["steps"]}
    total = result["totals"]["requests"]
    wait_for(lambda: api(base, f"sum(max_over_time(surge_requests_total{of_job}[5m])) == {total}"), 15,
             "Prometheus to hold the final count")
    requests = api(base, f"max_over_time(surge_requests_total{of_job}[5m])")
    assert value(requests, scenario="browse", step="item", status="200") == steps["item"]["requests"]
    assert value(requests, scenario="browse", step="missing", status="404") == steps["missing"]["requests"]
    assert not any(r["metric"].get("step", "") == "" for r in requests)      # no run-wide duplicate
    failed = api(base, f"max_over_time(surge_failed_requests_total{of_job}[5m])")
    assert value(failed, scenario="browse", step="missing", reason="status 404") == steps["missing"]["requests"]
    assert len(failed) == 1                                                  # item's 200s are not failed
