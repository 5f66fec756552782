"""`--junit` and `--summary-json` (surge.report.junit, surge.report.verdict),
end to end against `surge serve --app demo`: the JUnit file validates against
tests/data/junit.xsd (the format Jenkins reads), a failing objective is a
failing test case with the measured value and the limit, and both files are
written when thresholds fail, an objective stops the run, or it is interrupted."""
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from tests.helpers import assert_one_line_error, run_surge

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "data" / "junit.xsd"))
SECRET = "s3cret-token-never-written"


def _plan(tmp_path, url: str, objectives: list, duration: str = "1s") -> Path:
    path = tmp_path / "plan.yaml"
    lines = [f"name: ci.check", f"target: {url}", "objectives:"]
    lines += [f"  - {json.dumps(o)}" for o in objectives]
    lines += [f"load: {{model: closed, vus: 2, duration: {duration}}}",
              "scenarios:",
              "  - name: browse",
              "    steps:",
              "      - name: item",
              "        request: GET /items/7",
              f"        headers: {{Authorization: 'Bearer {SECRET}', X-Api: '1'}}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cases(junit: Path) -> dict:
    SCHEMA.validate(str(junit))             # raises with the reason when it does not validate
    root = ET.parse(junit).getroot()
    return {case.get("name"): case for case in root.iter("testcase")}


def test_junit_validates_and_a_failing_objective_is_a_failing_test_case(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = _plan(tmp_path, server.url, ["error_rate < 1%", "p99{step=item} < 1us"])
    junit, summary = tmp_path / "out" / "junit.xml", tmp_path / "out" / "summary.json"
    junit.parent.mkdir()
    run = run_surge("run", str(plan), "-q", "--junit", str(junit), "--summary-json", str(summary))
    assert run.code == 3, run.stderr
    cases = _cases(junit)
    assert set(cases) == {"run", "error_rate < 1%", "p99{step=item} < 1us"}
    assert cases["run"].find("failure") is None and cases["run"].find("error") is None
    assert cases["error_rate < 1%"].find("failure") is None
    failure = cases["p99{step=item} < 1us"].find("failure")
    measured_us = run.result["objectives"][1]["value"]
    assert failure is not None and failure.get("type") == "objective"
    assert failure.get("message").startswith("p99{step=item} measured ") and "limit < 1us" in failure.get("message")
    assert all(case.get("classname") == "ci_check" for case in cases.values())   # dots split packages in CI
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")

    verdict = json.loads(summary.read_text())
    assert verdict["passed"] is False and verdict["exit_code"] == 3 and verdict["plan"] == "ci.check"
    assert verdict["requests"] == run.result["totals"]["requests"] > 0
    rows = {row["name"]: row for row in verdict["objectives"]}
    assert rows["p99{step=item} < 1us"] == {"name": "p99{step=item} < 1us", "value": measured_us / 1000,
                                            "limit": 0.001, "op": "<", "unit": "ms", "passed": False,
                                            "abort_on_fail": False}
    assert rows["error_rate < 1%"]["passed"] is True and rows["error_rate < 1%"]["limit"] == 0.01
    assert verdict["p99_ms"] == round(run.result["latency"]["percentiles"]["99"] / 1000, 3)
    for path in (junit, summary):
        assert SECRET not in path.read_text()


def test_a_run_stopped_by_an_objective_says_so_in_both_files(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = _plan(tmp_path, server.url, [{"threshold": "p99 < 1us", "abort_on_fail": True, "grace": "1s"}],
                 duration="20s")
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.json"
    run = run_surge("run", str(plan), "-q", "--junit", str(junit), "--summary-json", str(summary))
    assert run.code == 3, run.stderr
    assert run.result["totals"]["duration_s"] < 10          # it stopped long before 20 s
    cases = _cases(junit)
    assert "stopped early: objective failed at" in cases["run"].find("failure").get("message")
    assert "the run stopped early" in cases["p99 < 1us"].find("failure").get("message")
    verdict = json.loads(summary.read_text())
    assert verdict["aborted_by"].endswith(": p99 < 1us") and verdict["exit_code"] == 3


def test_an_interrupted_run_writes_both_files_and_says_it_is_partial(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = _plan(tmp_path, server.url, ["error_rate < 1%"], duration="30s")
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.json"
    proc = subprocess.Popen([sys.executable, "-m", "surge", "run", str(plan), "-q", "--junit", str(junit),
                             "--summary-json", str(summary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    error = _cases(junit)["run"].find("error")
    assert error is not None and error.get("type") == "interrupted"
    verdict = json.loads(summary.read_text())
    assert verdict["interrupted"] is True and verdict["exit_code"] == 130 and verdict["passed"] is False


def test_the_baseline_gate_is_a_test_case_in_run_and_compare(surge_server, tmp_path):
    # -n 200 lasts well under a second: the gate is inconclusive, which fails it (exit 3).
    server = surge_server()
    baseline = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q")
    assert baseline.code == 0
    base = tmp_path / "base.json"
    base.write_text(json.dumps(baseline.result))
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.json"
    gated = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q", "--baseline", str(base),
                      "--junit", str(junit), "--summary-json", str(summary))
    assert gated.code == 3, gated.stderr
    cases = _cases(junit)
    assert set(cases) == {"run", "regression gate (base.json)"}
    assert "INCONCLUSIVE" in cases["regression gate (base.json)"].find("failure").get("message")
    assert cases["run"].get("classname") == "surge"
    verdict = json.loads(summary.read_text())
    assert verdict["gate"]["passed"] is False and verdict["objectives"] == [] and verdict["plan"] is None

    current = tmp_path / "current.json"
    current.write_text(json.dumps(gated.result))
    compared = tmp_path / "compare.xml"
    proc = subprocess.run([sys.executable, "-m", "surge", "compare", str(base), str(current), "--junit",
                           str(compared)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    cases = _cases(compared)
    assert list(cases) == ["regression gate (base.json)"]
    gate = cases["regression gate (base.json)"]
    assert "INCONCLUSIVE" in gate.find("failure").get("message") and gate.find("system-out").text.strip()
    allowed = subprocess.run([sys.executable, "-m", "surge", "compare", str(base), str(current), "--junit",
                              str(compared), "--allow-inconclusive"], capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
    assert _cases(compared)["regression gate (base.json)"].find("failure") is None


def test_a_passing_url_run_is_one_passing_case(surge_server, tmp_path):
    server = surge_server()
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.json"
    run = run_surge("run", server.url, "-n", "100", "-c", "2", "-w", "1", "-q", "--junit", str(junit),
                    "--summary-json", str(summary))
    assert run.code == 0, run.stderr
    cases = _cases(junit)
    assert list(cases) == ["run"] and len(cases["run"]) == 0
    verdict = json.loads(summary.read_text())
    assert verdict["passed"] is True and verdict["requests"] == 100 and verdict["gate"] is None


def test_an_unwritable_junit_path_is_a_usage_error_before_any_load(surge_server, tmp_path):
    server = surge_server()
    missing = tmp_path / "no-such-dir" / "junit.xml"
    run = run_surge("run", server.url, "-n", "10", "-q", "--junit", str(missing), json_result=False)
    assert_one_line_error(run, 2, "--junit", "does not exist")
    assert server.served() == 0
    same = tmp_path / "same.json"
    run = run_surge("run", server.url, "-n", "10", "-q", "--summary-json", str(same), "--json", str(same),
                    json_result=False)
    assert_one_line_error(run, 2, "the same file")
    assert not os.path.exists(same)


def test_the_schema_refuses_what_a_junit_reader_would_not_take():
    # The checks above mean something only if the schema can fail.
    good = '<testsuites><testsuite name="a" tests="1"><testcase name="x"/></testsuite></testsuites>'
    assert SCHEMA.is_valid(good)
    for bad in ('<testsuites><testsuite tests="1"><testcase name="x"/></testsuite></testsuites>',    # no name
                '<testsuites><testsuite name="a" tests="one"/></testsuites>',                       # count
                '<testsuites><testsuite name="a" tests="1"><testcase/></testsuite></testsuites>',    # case name
                '<testsuites><testsuite name="a" tests="1"><testcase name="x" time="-1"/></testsuite></testsuites>',
                '<testsuites><testsuite name="a" tests="1"><testcase name="x"><system-out/><failure/>'
                '</testcase></testsuite></testsuites>',                                              # order
                '<testsuites><testsuite name="a" tests="1" timestamp="2026-12-02T07:00:00+00:00"/></testsuites>'):
        assert not SCHEMA.is_valid(bad), bad
