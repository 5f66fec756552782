"""`surge capacity` end to end against `surge serve --service-time` (a known capacity).

Steps are kept short (--warmup 1s --step 2s). What is asserted holds on a
busy machine: a loaded machine adds latency (so steps fail earlier, never
pass where an overload fails), so the found rate is bounded from above by
the target's capacity, and the exit codes, the files and the bad-input lines
do not depend on timing."""
import html
import json
import os
import subprocess
import sys

import pytest

SHORT = ["--warmup", "1s", "--step", "2s", "-w", "1"]
SMOKE_PLAN = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "smoke.yaml")


def capacity(*args, timeout_s=300):
    return subprocess.run([sys.executable, "-m", "surge", "capacity", *args], capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.mark.parametrize("args, culprit", [
    (["--slo", "p99 << 5ms"], "--slo 'p99 << 5ms'"),
    (["--slo", "p99 < 5ms", "--from", "1000", "--to", "500"], "--from 1000 must be below --to 500"),
    (["--slo", "p99 < 5ms", "--precision", "0"], "--precision"),
    (["--slo", "p99 < 5ms", "--precision", "50%"], "--precision"),
    (["--slo", "p99 < 5ms", "--growth", "1"], "--growth"),
    (["--model", "closed", "--concurrency", "4,2,8"], "--concurrency: got '4,2,8', the values must be increasing"),
    (["--model", "closed", "--concurrency", "0..8"], "--concurrency"),
    (["--slo", "p99 < 5ms", "--confidence", "120%"], "--confidence"),
    ([], "give at least one --slo"),
])
def test_bad_input_is_one_line_naming_it_exit_2(args, culprit):
    result = capacity("http://127.0.0.1:9/", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_plan_without_an_open_model_cannot_have_its_rate_searched():
    result = capacity(SMOKE_PLAN)
    assert result.returncode == 2, result.stderr
    assert "has no open model" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_search_finds_a_rate_no_higher_than_the_capacity_and_writes_every_step(surge_server, tmp_path):
    server = surge_server(service_time="5ms", concurrency=2)            # 400 req/s
    out, page = tmp_path / "capacity.json", tmp_path / "capacity.html"
    result = capacity(server.url + "/", "--slo", "p99 < 200ms", "--from", "200", "--precision", "10%", *SHORT,
                      "--json", str(out), "--html", str(page), "--expect-at-least", "100k")
    assert result.returncode == 3, result.stderr          # below --expect-at-least: the CI gate
    assert "below --expect-at-least" in result.stderr
    document = json.loads(out.read_text())["capacity"]
    assert document["limited_by"] == "slo" and document["slos"] == ["p99 < 200ms"]
    lo, hi = document["bracket"]
    assert document["max_rate"] == lo and hi is not None and hi - lo <= 0.1 * lo
    assert lo <= 1.15 * 400, document["answer"]           # above the capacity the queue grows past 200ms
    verdicts = {step["rate"]: step["verdict"] for step in document["steps"]}
    assert verdicts[lo] == "pass" and verdicts[hi] in ("fail", "inconclusive")
    for step in document["steps"]:
        assert step["result"]["config"]["model"] == "open"
        assert step["result"]["config"]["rate"] == step["rate"]   # each step's full run result
    assert f"max sustainable rate: {lo:,.0f} req/s" in result.stdout
    assert html.escape(document["answer"]) in page.read_text() and "Plotly.newPlot" in page.read_text()
    assert_surge_report_remakes_it(out, document, tmp_path)


def report(*args):
    return subprocess.run([sys.executable, "-m", "surge", "report", *args], capture_output=True, text=True,
                          timeout=120)


def assert_surge_report_remakes_it(path, document, tmp_path):
    """surge report reads a capacity result: its table and answer, its page, any one step's reports."""
    shown = report(str(path))
    assert shown.returncode == 0, shown.stderr
    assert document["answer"] in shown.stdout and "offered/s" in shown.stdout
    rows = [line for line in shown.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [row.split()[0] for row in rows] == [str(i) for i in range(1, len(document["steps"]) + 1)]
    page = tmp_path / "again.html"
    remade = report(str(path), "--html", str(page))
    assert remade.returncode == 0, remade.stderr
    assert html.escape(document["answer"]) in page.read_text()
    step_page, last = tmp_path / "step.html", len(document["steps"])
    one = report(str(path), "--step", str(last), "--html", str(step_page))
    assert one.returncode == 0, one.stderr
    assert step_page.stat().st_size > 0
    one_summary = report(str(path), "--step", "1")
    assert one_summary.returncode == 0 and "Requests/sec" in one_summary.stdout, one_summary.stderr
    for args, culprit in ((["--step", str(last + 1)], f"has steps 1 to {last}"),
                          (["--csv", str(tmp_path / "x.csv")], "give --step N")):
        refused = report(str(path), *args)
        assert refused.returncode == 2 and culprit in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_an_slo_failing_already_at_from_exits_3(surge_server):
    server = surge_server(service_time="50ms", concurrency=1)          # 20 req/s
    result = capacity(server.url + "/", "--slo", "p99 < 20ms", "--from", "100", *SHORT)
    assert result.returncode == 3, result.stderr
    assert "fails already at --from 100 req/s" in result.stdout


def test_the_closed_sweep_fits_a_ceiling_as_contention(surge_server, tmp_path):
    server = surge_server(service_time="10ms", concurrency=2)          # 200 req/s, reached at 2 users
    out = tmp_path / "sweep.json"
    result = capacity(server.url + "/", "--model", "closed", "--concurrency", "1..16", *SHORT,
                      "--json", str(out))
    assert result.returncode == 0, result.stderr
    usl = json.loads(out.read_text())["capacity"]["usl"]
    assert [p["concurrency"] for p in usl["points"]] == [1, 2, 4, 8, 16]
    assert max(p["throughput"] for p in usl["points"]) <= 200 * 1.02   # the server's hard ceiling
    assert usl["x_max"] <= 200 * 1.2
    assert usl["limited_by"] == "contention"
    assert "contention" in result.stdout
