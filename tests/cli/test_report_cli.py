"""`surge report` and `surge compare`: outputs, exit codes, one-line errors.

Until the commands are registered in surge.cli.main's LazyGroup, the runner
registers them for the child process (setdefault: a no-op once they are)."""
import json
import subprocess
import sys

import pytest

from surge.result import RESULT_FORMAT
from tests.helpers import SurgeRun, assert_one_line_error
from tests.report.synthetic import make_result

RUNNER = """
import sys
from surge.cli.main import LazyGroup, main
LazyGroup.COMMANDS.setdefault("report", "surge.cli.report_cmd:report_command")
LazyGroup.COMMANDS.setdefault("compare", "surge.cli.compare_cmd:compare_command")
main(sys.argv[1:])
"""


def surge(*args: str, timeout_s: float = 60) -> SurgeRun:
    proc = subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s)
    return SurgeRun(proc.returncode, proc.stdout, proc.stderr, None)


def write(path, result):
    path.write_text(json.dumps(result))
    return path


@pytest.fixture
def runs(tmp_path):
    def seeded(seed, slowdown=1.0):
        return make_result(30, seed=seed, model="closed", rate=3000, slowdown=slowdown, objectives=False)
    return {"base": write(tmp_path / "base.json", seeded(1)),
            "same": write(tmp_path / "same.json", seeded(2)),
            "slow": write(tmp_path / "slow.json", seeded(3, slowdown=1.10))}


def test_report_prints_the_summary(runs):
    run = surge("report", runs["base"])
    assert run.code == 0, run.stderr
    assert "Requests/sec" in run.stdout and "p99" in run.stdout


def test_report_writes_every_file(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = surge("report", runs["base"], "--html", out / "r.html", "--csv", out / "r.csv", "--hlog", out / "r.hlog")
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r.csv", "r.hlog", "r.html", "r.steps.csv"]
    assert "wrote" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    ('{"surge_version": "0.1.0", "result_format": 1, "config": {', "truncated JSON"),
    ('{"metrics": {}, "root_group": {}}', "not a surge result"),
    (json.dumps({"surge_version": "9.9.9", "result_format": RESULT_FORMAT + 1}), "upgrade surge"),
])
def test_report_bad_file_is_one_line_exit_2(tmp_path, content, fragment):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert_one_line_error(surge("report", path), 2, "surge report", str(path), fragment)


def test_report_unwritable_output_is_refused_before_writing_exit_2(runs, tmp_path):
    target = tmp_path / "missing-dir" / "r.html"
    assert_one_line_error(surge("report", runs["base"], "--html", target), 2, "--html", "r.html",
                          "missing-dir does not exist")


def test_compare_same_configuration_exit_0(runs):
    run = surge("compare", runs["base"], runs["same"])
    assert run.code == 0, run.stdout + run.stderr
    assert "no significant change" in run.stdout and "base.json" in run.stdout


def test_compare_ten_percent_slower_exit_3(runs):
    run = surge("compare", runs["base"], runs["slow"])
    assert run.code == 3, run.stdout + run.stderr
    assert "REGRESSION beyond 5%" in run.stdout


def test_compare_bound_is_an_option(runs):
    run = surge("compare", runs["base"], runs["slow"], "--max-regression", "25%")
    assert run.code == 0, run.stdout


@pytest.mark.parametrize("bound", ["5x", "-5%", "2000%"])
def test_compare_bad_bound_exit_2(runs, bound):
    assert_one_line_error(surge("compare", runs["base"], runs["same"], "--max-regression", bound), 2,
                          "--max-regression")


def test_compare_bad_file_exit_2(runs, tmp_path):
    other = tmp_path / "wrk.json"
    other.write_text("[1, 2, 3]")
    assert_one_line_error(surge("compare", runs["base"], other), 2, "surge compare", "wrk.json",
                          "not a surge result")
