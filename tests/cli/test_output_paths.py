"""`surge run` / `surge report` outputs, end to end against `surge serve`: bad
paths refused before any load (exit 2, one line), every report written that can
be (a failed one is named after, exit 1), `--json -`, and interrupted runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, run_surge

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _surge(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "surge", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_load(server, proc, before=0, timeout_s=30.0):
    """Until the target has answered more than `before` requests (the run has started)."""
    deadline = time.monotonic() + timeout_s
    while server.served() <= before:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)


@pytest.mark.parametrize("option", ["--json", "--html", "--csv", "--hlog"])
def test_a_bad_output_path_is_refused_before_any_load(surge_server, tmp_path, option):
    server = surge_server()
    path = tmp_path / "nonexistent" / "dir" / "x.out"
    run = run_surge("run", server.url, "-d", "30s", "-c", "2", "-w", "1", "-q", option, str(path),
                    json_result=False)
    assert_one_line_error(run, 2, f"surge run: error: {option} {path}: directory {path.parent} does not exist")
    assert server.served() == 0


def test_a_plan_run_checks_its_outputs_too(tmp_path):
    run = run_surge("run", str(EXAMPLES / "smoke.yaml"), "-q", "--html", str(tmp_path / "no" / "r.html"),
                    json_result=False)
    assert_one_line_error(run, 2, f"--html {tmp_path / 'no' / 'r.html'}: directory")


def test_report_checks_its_outputs_before_writing(tmp_path):
    from tests.report.synthetic import make_result
    source = tmp_path / "r.json"
    source.write_text(json.dumps(make_result(3, model="closed")))
    run = run_surge("report", str(source), "--html", str(tmp_path / "r.html"), "--hlog", str(tmp_path),
                    json_result=False)
    assert_one_line_error(run, 2, f"surge report: error: --hlog {tmp_path}: is a directory")
    assert not (tmp_path / "r.html").exists()
    run = run_surge("report", str(source), "--csv", str(source), json_result=False)
    assert_one_line_error(run, 2, f"--csv {source}: the same file as RESULT.json")


def test_a_report_that_cannot_be_written_does_not_lose_the_others(surge_server, tmp_path):
    server = surge_server()
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    proc = _surge("run", server.url, "-d", "3s", "-c", "2", "-w", "1", "-q", "--json", str(doomed / "r.json"),
                  "--html", str(tmp_path / "r.html"), "--csv", str(tmp_path / "r.csv"))
    _wait_for_load(server, proc)
    shutil.rmtree(doomed)               # the directory goes away during the run
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in out + err
    assert f"surge run: error: cannot write --json {doomed / 'r.json'}: No such file or directory" in err.splitlines()
    assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "r.csv").stat().st_size > 0
    assert "requests in" in out                 # the summary is still printed


def test_an_interrupted_run_writes_every_report_it_can(surge_server, tmp_path):
    server = surge_server()
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    proc = _surge("run", server.url, "-d", "60s", "-c", "2", "-w", "1", "-q", "--json", str(tmp_path / "r.json"),
                  "--html", str(tmp_path / "r.html"), "--hlog", str(tmp_path / "r.hlog"),
                  "--csv", str(doomed / "r.csv"))
    _wait_for_load(server, proc)
    shutil.rmtree(doomed)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err          # interrupted outranks a report not written
    assert f"surge run: error: cannot write --csv {doomed / 'r.csv'}: No such file or directory" in err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["interrupted"] is True and result["totals"]["requests"] > 0
    assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "r.hlog").stat().st_size > 0


def test_json_to_stdout_sends_everything_else_to_stderr(surge_server, tmp_path):
    server = surge_server()
    run = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "--json", "-",
                    "--html", str(tmp_path / "r.html"), json_result=False)
    assert run.code == 0, run.stderr
    result = json.loads(run.stdout)             # stdout is the result file alone
    assert result["totals"]["requests"] == 200
    assert "requests in" in run.stderr and f"wrote {tmp_path / 'r.html'}" in run.stderr


def test_a_gate_verdict_on_stdout_moves_to_stderr_with_json_to_stdout(surge_server, tmp_path):
    server = surge_server()
    baseline = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q")
    assert baseline.code == 0, baseline.stderr
    path = tmp_path / "base.json"
    path.write_text(json.dumps(baseline.result))
    run = run_surge("run", server.url, "-n", "200", "-c", "2", "-w", "1", "-q", "--baseline", str(path),
                    "--json", "-", json_result=False)
    json.loads(run.stdout)
    assert "surge compare:" in run.stderr


@pytest.mark.parametrize("address", ["9090x", "99999"])
def test_prometheus_errors_name_the_option_once(address):
    run = run_surge("run", "http://127.0.0.1:1/", "-q", "--prometheus", address, json_result=False)
    assert_one_line_error(run, 2, f"surge run: error: --prometheus {address!r}: ")
    assert run.stderr.count("--prometheus") == 1


def test_a_busy_prometheus_port_names_the_option_once():
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = run_surge("run", "http://127.0.0.1:1/", "-q", "--prometheus", str(port), json_result=False)
    assert_one_line_error(run, 1, "surge run: error: --prometheus ", "cannot serve /metrics")
    assert run.stderr.count("--prometheus") == 1


@pytest.mark.parametrize("options, says", [
    (["-c", "5"], "-c/--connections does not apply to a test plan ({plan}): it sets its virtual users in load: vus"),
    (["-d", "5s"], "-d/--duration does not apply to a test plan ({plan}): its length is load: duration"),
    (["-n", "5"], "-n/--requests does not apply to a test plan ({plan}): it runs for a time"),
    (["-m", "POST"], "-m/--method does not apply to a test plan ({plan}): each step names its method"),
    (["--body", "x"], "--body does not apply to a test plan ({plan}): each step sends its own body"),
    (["--rate", "10"], "--rate does not apply to a test plan ({plan}): its open model sets iterations started "
                       "per second in load: rate"),
    (["--max-connections", "10"], "--max-connections does not apply to a test plan ({plan}): its open model "
                                  "sets the most virtual users in load: max_vus"),
    (["--stages", "1s:1"], "--stages does not apply to a test plan ({plan}): it sets them in load: stages"),
    (["--shape", "ramp:1:1s"], "--shape does not apply to a test plan ({plan}): it has no named shapes"),
])
def test_plan_refuses_url_options_saying_what_the_plan_has(options, says):
    plan = EXAMPLES / "smoke.yaml"
    run = run_surge("run", str(plan), *options, "-q", json_result=False)
    assert_one_line_error(run, 2, says.format(plan=plan))
    assert "is set by the plan" not in run.stderr


def test_every_refused_option_is_an_option_of_run():
    from surge.cli.run_cmd import run_command
    from surge.plan.build import PLAN_INSTEAD
    assert set(PLAN_INSTEAD) <= {p.name for p in run_command.params}


@pytest.mark.parametrize("failed, workers, says", [
    ([1], 2, "worker 1 (killed by SIGKILL) died during the run; the other's results are kept"),
    ([1], 3, "worker 1 (killed by SIGKILL) died during the run; the others' results are kept"),
    ([0], 1, "worker 0 (killed by SIGKILL) died during the run; what it reported before is kept"),
    ([0, 1], 2, "worker 0 (killed by SIGKILL), worker 1 (killed by SIGKILL) died during the run; "
                "what they reported before is kept"),
])
def test_a_dead_worker_message_counts_in_words(failed, workers, says):
    from surge.run.session import died
    assert died([{"index": i, "cause": "killed by SIGKILL"} for i in failed], workers) == says


def test_a_report_not_written_outranks_a_failed_objective(surge_server, tmp_path):
    """Exit 1 (the outputs are incomplete) rather than 3, and both are said."""
    server = surge_server()
    plan, short = tmp_path / "gate.yaml", tmp_path / "gate-1s.yaml"
    for path, duration in ((plan, "3s"), (short, "1s")):
        path.write_text(f"name: gate\ntarget: {server.url.rstrip('/')}\nobjectives: ['requests > 1000000000']\n"
                        f"load: {{model: closed, vus: 1, duration: {duration}}}\n"
                        "scenarios:\n  - name: s\n    steps:\n      - {name: home, request: GET /}\n")
    # Alone, the objective fails whatever the length (1 s is plenty); the run below
    # keeps 3 s so that its --json folder can be removed while it is under load.
    alone = run_surge("run", str(short), "-q", "-w", "1", json_result=False)
    assert alone.code == 3, alone.stderr
    assert "surge run: objective failed: requests > 1000000000" in alone.stderr.splitlines()
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    before = server.served()
    proc = _surge("run", str(plan), "-q", "-w", "1", "--json", str(doomed / "r.json"),
                  "--html", str(tmp_path / "r.html"))
    _wait_for_load(server, proc, before)
    shutil.rmtree(doomed)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "surge run: objective failed: requests > 1000000000" in err.splitlines()
    assert f"surge run: error: cannot write --json {doomed / 'r.json'}: No such file or directory" in err.splitlines()
    assert (tmp_path / "r.html").stat().st_size > 0
