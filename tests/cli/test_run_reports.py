"""`surge run` writes reports and gates on a baseline."""
import json

from hdrh.log import HistogramLogReader

from tests.helpers import assert_one_line_error, run_surge


def test_run_writes_html_csv_and_hlog(surge_server, tmp_path):
    server = surge_server()
    html, csv, hlog = tmp_path / "r.html", tmp_path / "r.csv", tmp_path / "r.hlog"
    run = run_surge("run", server.url, "-d", "3s", "-c", "4", "-w", "2", "-q",
                    "--html", str(html), "--csv", str(csv), "--hlog", str(hlog))
    assert run.code == 0, run.stderr
    assert html.stat().st_size < 5_000_000 and b"plotly" in html.read_bytes()
    assert len(csv.read_text().splitlines()) == len(run.result["timeseries"]) + 1
    reader = HistogramLogReader(str(hlog), None)
    total = 0
    while (interval := reader.get_next_interval_histogram()) is not None:
        if interval.get_tag() is None:      # latency; Tag=connect lines are the connections' connect times
            total += interval.get_total_count()
    assert total == run.result["totals"]["requests"]


def test_baseline_gate(surge_server, tmp_path):
    # 3 s runs: the gate compares quarter-second samples (12 a side), and a 50%
    # slower target is far outside their spread.
    fast = surge_server(delay="2ms")
    baseline = run_surge("run", fast.url, "-d", "3s", "-c", "4", "-w", "1", "-q")
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline.result))
    slow = surge_server(delay="3ms")
    gated = run_surge("run", slow.url, "-d", "3s", "-c", "4", "-w", "1", "-q", "--baseline", str(path))
    assert gated.code == 3, gated.stdout + gated.stderr
    assert "regression" in gated.stdout.lower()
    assert gated.result is not None                # the result is still written
    assert gated.result["gate"]["passed"] is False and gated.result["gate"]["baseline"] == "baseline.json"
    assert "REGRESSION" in gated.result["gate"]["verdict"]


def test_an_inconclusive_baseline_gate_fails_unless_allowed_and_the_report_says_so(surge_server, tmp_path):
    # -n 200 over two connections lasts well under a second: no change can be significant.
    server = surge_server()
    baseline = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q")
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline.result))
    page = tmp_path / "report.html"
    gated = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q", "--baseline", str(path),
                      "--html", str(page))
    assert gated.code == 3, gated.stdout + gated.stderr
    assert "INCONCLUSIVE" in gated.result["gate"]["verdict"] and gated.result["gate"]["passed"] is False
    assert "Baseline gate against baseline.json: INCONCLUSIVE" in page.read_text()
    allowed = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q", "--baseline", str(path),
                        "--allow-inconclusive")
    assert allowed.code == 0, allowed.stdout + allowed.stderr
    assert "INCONCLUSIVE" in allowed.result["gate"]["verdict"] and allowed.result["gate"]["passed"] is True


def test_bad_baseline_exits_2_before_load(surge_server, tmp_path):
    server = surge_server()
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "surge"}')
    before = server.served()
    assert_one_line_error(run_surge("run", server.url, "-d", "1s", "--baseline", str(bad), json_result=False),
                          2, "--baseline")
    assert server.served() == before


def test_watch_pid_of_missing_process_exits_2():
    assert_one_line_error(run_surge("run", "http://127.0.0.1:1/", "--watch-pid", "999999999", json_result=False),
                          2, "--watch-pid", "999999999")
