"""`surge run` arguments, exit codes and signals."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.helpers import assert_one_line_error, run_surge


@pytest.mark.parametrize("args, fragments", [
    (["run", "not-a-url"], ["URL", "absolute URL"]),
    (["run", "ftp://127.0.0.1/"], ["scheme 'ftp'", "allowed: http"]),
    (["run", "http://127.0.0.1/", "--cacert", "ca.pem"], ["--cacert", "https:// URLs only"]),
    (["run", "http://127.0.0.1:99999/"], ["invalid port"]),
    (["run", "http://127.0.0.1/", "-d", "10x"], ["--duration", "10x", "500ms"]),
    (["run", "http://127.0.0.1/", "-d", "0s"], ["--duration", "greater than 0"]),
    (["run", "http://127.0.0.1/", "-n", "ten"], ["--requests", "10k"]),
    (["run", "http://127.0.0.1/", "-n", "1.5"], ["--requests", "whole number"]),
    (["run", "http://127.0.0.1/", "-n", "10", "-d", "1s"], ["exclude each other"]),
    (["run", "http://127.0.0.1/", "-c", "0"], ["--connections", "got 0"]),
    (["run", "http://127.0.0.1/", "-w", "0"], ["--workers", "got 0"]),
    (["run", "http://127.0.0.1/", "--pipeline", "0"], ["--pipeline", "1..1024"]),
    (["run", "http://127.0.0.1/", "--pipeline", "4", "--pipeline-timing", "fast"], ["--pipeline-timing", "batch", "each"]),
    (["run", "http://127.0.0.1/", "-H", "NoColon"], ["--header", "'Name: value'"]),
    (["run", "http://127.0.0.1/", "-H", "Bad Name: x"], ["--header"]),
    (["run", "http://127.0.0.1/", "-m", "GE T"], ["--method"]),
    (["run", "http://127.0.0.1/", "--timeout", "soon"], ["--timeout"]),
    (["run", "http://127.0.0.1/", "--body", "@/nonexistent/file"], ["--body", "/nonexistent/file"]),
    (["run", "http://127.0.0.1/", "--bogus"], ["--bogus"]),
    (["run"], ["URL"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_bad_input_is_one_line_and_exit_2(args, fragments):
    assert_one_line_error(run_surge(*args, json_result=False), 2, *fragments)


def test_connection_refused_before_start_exits_1():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                       # nothing listens there now
    assert_one_line_error(run_surge("run", f"http://127.0.0.1:{port}/", "-d", "1s", json_result=False),
                          1, "cannot connect", str(port))


def test_dns_failure_exits_1():
    assert_one_line_error(run_surge("run", "http://no-such-host.invalid/", "-d", "1s", json_result=False),
                          1, "cannot resolve", "no-such-host.invalid")


def _start_surge(url, *args):
    tmp = tempfile.mkdtemp(prefix="surge-sig-")
    path = os.path.join(tmp, "r.json")
    proc = subprocess.Popen([sys.executable, "-m", "surge", "run", url, *args, "--json", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, path


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_partial_result_and_exits_130(surge_server, signum):
    server = surge_server()
    proc, path = _start_surge(server.url, "-d", "30s", "-c", "4", "-w", "2")
    time.sleep(2.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    with open(path) as f:
        result = json.load(f)
    assert result["interrupted"] is True
    assert result["totals"]["requests"] > 0
    assert result["totals"]["duration_s"] < 20
    assert "INTERRUPTED" in out


def test_dead_worker_is_reported_and_others_kept(surge_server):
    server = surge_server()
    proc, path = _start_surge(server.url, "-d", "3s", "-c", "4", "-w", "2")
    deadline = time.time() + 10
    while len(_children(proc.pid)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    victim = _children(proc.pid)[1]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    with open(path) as f:
        result = json.load(f)
    [failed] = result["workers_failed"]
    assert (failed["index"], failed["cause"]) == (1, "killed by SIGKILL")
    assert 0 < failed["at_s"] <= result["totals"]["duration_s"]
    assert failed["last_report_s"] <= failed["at_s"]
    assert result["totals"]["requests"] > 0
    assert "worker 1" in err and "SIGKILL" in err
    assert "Traceback" not in out + err


def test_run_against_surge_serve_counts_match(surge_server):
    server = surge_server()
    before = server.served()
    run = run_surge("run", server.url, "-n", "2000", "-c", "10", "-w", "2", "-q")
    assert run.code == 0, run.stderr
    assert server.served() - before == 2000
    assert run.result["totals"]["requests"] == 2000


def test_post_body_from_file(surge_server, tmp_path):
    server = surge_server()
    body = tmp_path / "body.json"
    body.write_text('{"hello": "world"}')
    run = run_surge("run", server.url, "-n", "50", "-c", "2", "-w", "1", "-m", "POST", "--body", f"@{body}",
                    "-H", "Content-Type: application/json", "-q")
    assert run.code == 0, run.stderr
    assert run.result["totals"]["requests"] == 50
    assert run.result["totals"]["bytes_out"] > 50 * len('{"hello": "world"}')
    assert run.result["config"]["method"] == "POST"


@pytest.mark.parametrize("args, fragments", [
    (["--rate", "0"], ["--rate", "must be > 0"]),
    (["--rate", "-5"], ["--rate"]),
    (["--rate", "fast"], ["--rate", "got 'fast'", "20k"]),
    (["--rate", "100", "-n", "1000"], ["--rate and -n/--requests exclude each other"]),
    (["--rate", "100", "--pipeline", "4"], ["--pipeline applies to the closed model"]),
    (["--rate", "100", "-c", "10"], ["--max-connections"]),
    (["--max-connections", "10"], ["--max-connections applies to the open model"]),
    (["--stages", "30s"], ["--stages: stage 1 is '30s'", "DURATION:TARGET"]),
    (["--stages", "10s:abc"], ["stage 1 target: got 'abc'"]),
    (["--stages", "10s:100", "-d", "5s"], ["--stages sets the run's length"]),
    (["--stages", "10s:100", "--shape", "ramp:10:5s"], ["exclude each other"]),
    (["--shape", "spike:1:2"], ["expected spike:BASE:PEAK:BEFORE:HOLD:AFTER"]),
    (["--shape", "zigzag:1"], ["unknown shape 'zigzag'", "ramp:TARGET:DURATION"]),
    (["--rate", "0", "--stages", "5s:0"], ["every target is 0"]),
    (["--schedule-grid", "1ms"], ["--schedule-grid applies to the open model"]),
    (["--rate", "100", "--schedule-grid", "soon"], ["--schedule-grid"]),
])
def test_open_model_bad_input(args, fragments):
    assert_one_line_error(run_surge("run", "http://127.0.0.1:1/", *args, json_result=False), 2, *fragments)


def test_a_bare_number_as_a_duration_says_the_unit_is_missing():
    run = run_surge("run", "http://127.0.0.1:9/", "--timeout", "5", json_result=False)
    assert_one_line_error(run, 2, "--timeout", "got '5'", "a number needs its unit")
