"""Reading or re-reporting a result file never loads the engine or the run layer
(issue 10: `run` produces results, `report` consumes them).

Each check runs in a fresh interpreter (this one has long imported everything)
and reads that interpreter's sys.modules after the work is done."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.synthetic import make_result

ROOT = Path(__file__).resolve().parents[2]

# Prints, as the last line of stdout, the surge modules the snippet left loaded.
HARNESS = """
import json, sys
{body}
print()
print(json.dumps(sorted(m for m in sys.modules if m.startswith("surge"))))
"""


def modules_after(body: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", HARNESS.format(body=body)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def forbidden(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m == "surge.core._engine" or m == "surge.run" or m.startswith("surge.run."))


def planning(loaded: set[str]) -> list[str]:
    """The plan layer: the reports read the result alone, so re-reporting needs none of it."""
    return sorted(m for m in loaded if m == "surge.plan" or m.startswith("surge.plan."))


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    """An open-model plan result with every optional part (steps, scenarios, objectives, samples)."""
    path = tmp_path_factory.mktemp("result") / "result.json"
    path.write_text(json.dumps(make_result(5, seed=4)))
    return path


@pytest.mark.parametrize("module", ["surge.core._engine", "surge.run.merge"])
def test_the_check_sees_what_a_snippet_loads(module):
    """The detector itself: importing the engine or the run layer shows up (else
    the tests below prove nothing)."""
    loaded = modules_after(f"import {module}")
    assert module in loaded and module in forbidden(loaded)


# What `import surge.result` may bring along: the package itself and the two small
# compiled modules it reads (surge.result's docstring says why).
RESULT_NEEDS = {"surge", "surge.core", "surge.core._limits", "surge.core._histogram"}


def test_import_surge_result_and_load_a_file_loads_nothing_else(result_file):
    """issue 10's check, as written: `python -c "import surge.result;
    surge.result.load_result(...)"` leaves no engine, run, plan or report module loaded."""
    loaded = modules_after(f"""
import surge.result
result = surge.result.load_result({str(result_file)!r})
assert result["result_format"] == surge.result.RESULT_FORMAT and result["totals"]["requests"] > 0
""")
    assert "surge.result.load" in loaded and "surge.result.schema" in loaded
    others = [m for m in loaded if m != "surge.result" and not m.startswith("surge.result.")]
    assert sorted(set(others) - RESULT_NEEDS) == []


def test_objectives_on_a_loaded_file_do_not_load_the_engine(result_file):
    loaded = modules_after(f"""
import surge.result
from surge.result.objectives import evaluate
from surge.plan.objective import parse_objective
result = surge.result.load_result({str(result_file)!r})
assert result["result_format"] == surge.result.RESULT_FORMAT
assert evaluate([parse_objective("p99 < 10s"), parse_objective("error_rate < 0.5")], result)[0]["value"] > 0
""")
    assert "surge.result.load" in loaded and "surge.result.schema" in loaded
    assert forbidden(loaded) == []


@pytest.mark.parametrize("args", [[], ["--html", "{out}/r.html", "--csv", "{out}/r.csv", "--hlog", "{out}/r.hlog"]],
                         ids=["summary", "html-csv-hlog"])
def test_surge_report_does_not_load_the_engine(result_file, tmp_path, args):
    argv = ["report", str(result_file), *(a.format(out=tmp_path) for a in args)]
    loaded = modules_after(f"""
from surge.cli.main import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code == 0, exc.code
""")
    assert ("surge.report.html" if args else "surge.report.summary") in loaded
    assert forbidden(loaded) == [] and planning(loaded) == []
    if args:
        assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "r.hlog").stat().st_size > 0


def test_surge_compare_does_not_load_the_engine(result_file, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps(make_result(5, seed=5)))
    loaded = modules_after(f"""
from surge.cli.main import main
try:
    main(["compare", {str(result_file)!r}, {str(other)!r}])
except SystemExit as exc:
    assert exc.code in (0, 3), exc.code
""")
    assert "surge.report.compare" in loaded
    assert forbidden(loaded) == [] and planning(loaded) == []


PLAN = """name: reread
target: {url}
load: {{model: closed, vus: 2, duration: 2s}}
objectives: ["p99 < 10s", "error_rate{{step=item}} < 50%"]
scenarios:
  - name: browse
    steps:
      - {{name: item, request: GET /items/5}}
      - {{name: missing, request: GET /no-such-route}}
"""


def test_a_real_plan_result_is_re_reported_without_the_engine(surge_server, tmp_path):
    """A real run's file has what the synthetic one lacks (quarter-second samples,
    per-step seconds, objectives as evaluated): report and compare it again."""
    from tests.helpers import run_surge
    server = surge_server(app="demo")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(url=server.url.rstrip("/")))
    run = run_surge("run", str(plan), "-w", "1", "-q")
    assert run.code == 0 and run.result is not None, run.stderr
    assert {"samples", "step_timeseries", "objectives"} <= set(run.result)
    path = tmp_path / "real.json"
    path.write_text(json.dumps(run.result))
    loaded = modules_after(f"""
from surge.cli.main import main
for argv in (["report", {str(path)!r}, "--html", {str(tmp_path / "r.html")!r}, "--csv", {str(tmp_path / "r.csv")!r}],
             ["compare", {str(path)!r}, {str(path)!r}]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
""")
    assert {"surge.report.html", "surge.report.compare", "surge.result.load"} <= loaded
    assert forbidden(loaded) == [] and planning(loaded) == []
    assert (tmp_path / "r.steps.csv").exists()          # the per-step CSV of a plan run
