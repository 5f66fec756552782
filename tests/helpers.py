"""Running the real `surge` command in tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass
class SurgeRun:
    code: int
    stdout: str
    stderr: str
    result: dict | None


def run_surge(*args: str, timeout_s: float = 60.0, json_result: bool = True) -> SurgeRun:
    """Run `python -m surge ARGS` (with --json into a temp file when asked)."""
    with tempfile.TemporaryDirectory(prefix="surge-test-") as tmp:
        path = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", "surge", *args] + (["--json", path] if json_result else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        result = None
        if json_result and os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
        return SurgeRun(proc.returncode, proc.stdout, proc.stderr, result)


def run_surge_together(*runs: list[str], timeout_s: float = 60.0, env: dict | None = None) -> list[SurgeRun]:
    """Several `run_surge(*args)` started at once, each its own process (with --json
    into a temp file); their SurgeRuns in the order given.  For runs whose numbers
    are not compared with each other's, so sharing the CPU changes nothing a test asserts."""
    with tempfile.TemporaryDirectory(prefix="surge-test-") as tmp:
        started = []
        for i, args in enumerate(runs):
            path = os.path.join(tmp, f"result-{i}.json")
            cmd = [sys.executable, "-m", "surge", *args, "--json", path]
            started.append((path, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   text=True, env=env)))
        out = []
        try:
            for path, proc in started:
                stdout, stderr = proc.communicate(timeout=timeout_s)
                result = None
                if os.path.exists(path):
                    with open(path) as f:
                        result = json.load(f)
                out.append(SurgeRun(proc.returncode, stdout, stderr, result))
        finally:
            for _, proc in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return out


def assert_one_line_error(run: SurgeRun, code: int, *fragments: str) -> None:
    """Exit `code`, exactly one line on stderr naming the culprit, no traceback."""
    lines = run.stderr.strip().splitlines()
    assert run.code == code, (run.code, run.stderr)
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
