"""`surge run URL` pays only for what a URL run uses (its fixed cost is in every
benchmark's CPU per request), and the quick exit after it keeps everything an
ordinary exit does that matters.

Each check runs the real entry point (`surge.cli.main.main()`, as `python -m
surge` does) in a fresh interpreter and reads that interpreter's sys.modules
from an atexit handler: the quick exit must run those too."""
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from surge.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]

# The entry point as the console script calls it (argv None: this process ends
# there); the atexit handler writes the modules then loaded to MODULES_FILE.
HARNESS = """
import atexit, json, sys
def record():
    with open({modules_file!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(record)
{prelude}
sys.argv = ["surge", *{args!r}]
from surge.cli.main import main
main()
"""

# Modules of other commands and of options this run does not use.  Each is
# imported only when its command or option is (surge.cli.main.LazyGroup,
# surge.cli.run_cmd, surge.report.outputs).
NOT_FOR_A_URL_RUN = [
    "surge.report.html", "surge.report.charts", "surge.report.prometheus", "surge.report.csv_export",
    "surge.report.junit", "surge.report.compare", "surge.report.significance", "surge.capacity",
    "surge.k8s", "surge.convert", "surge.serve", "surge.cli.serve_cmd", "surge.cli.capacity_cmd",
    "surge.cli.k8s_cmd", "surge.cli.convert_cmd", "surge.cli.report_cmd", "surge.cli.merge_cmd",
    # plan files, data files and --targets files only
    "surge.plan.loader", "surge.plan.checker", "surge.plan.validate", "surge.plan.scenarios",
    "surge.plan.hosts", "surge.plan.data", "surge.plan.targets", "surge.plan.defaults",
    # reading result files (--baseline), distributed runs (--barrier)
    "surge.result.load", "surge.result.schema", "surge.run.barrier",
    # the standard library's heavier parts nothing on this path needs
    "yaml", "tomllib", "csv", "xml.etree.ElementTree", "http.server", "multiprocessing",
]


def run_entry_point(tmp_path, *args, prelude=""):
    """(completed process, modules loaded at exit) of `surge ARGS` run as the console script."""
    modules_file = tmp_path / "modules.json"
    code = HARNESS.format(modules_file=str(modules_file), prelude=prelude, args=list(args))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    loaded = set(json.loads(modules_file.read_text())) if modules_file.exists() else None
    return proc, loaded


def loaded_from(loaded: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_the_check_sees_a_module_that_was_imported(tmp_path, surge_server):
    """The detector itself: an import before the run shows up (else the test below proves nothing)."""
    server = surge_server()
    proc, loaded = run_entry_point(tmp_path, "run", server.url, "-n", "1", "-q", "-w", "1",
                                   prelude="import surge.k8s, csv")
    assert proc.returncode == 0, proc.stderr
    assert loaded_from(loaded, NOT_FOR_A_URL_RUN) == ["csv", "surge.k8s"]


def test_a_url_run_does_not_import_what_it_does_not_use(tmp_path, surge_server):
    server = surge_server()
    result_file = tmp_path / "result.json"
    proc, loaded = run_entry_point(tmp_path, "run", server.url, "-n", "3", "-q", "-w", "1",
                                   "--json", str(result_file))
    assert proc.returncode == 0, proc.stderr
    assert "surge.run.supervisor" in loaded and "surge.core._engine" in loaded     # it did run
    assert loaded_from(loaded, NOT_FOR_A_URL_RUN) == []
    assert json.loads(result_file.read_text())["totals"]["requests"] == 3


def test_the_quick_exit_flushes_stdout_and_keeps_the_exit_code(tmp_path, surge_server):
    """`--json -`: the whole result on stdout (still buffered when main() ends), and the code."""
    server = surge_server(status=503)
    proc, loaded = run_entry_point(tmp_path, "run", server.url, "-n", "2", "-q", "-w", "1", "--json", "-")
    assert proc.returncode == 0, proc.stderr        # a 503 is a response, not a failure of the run
    assert json.loads(proc.stdout)["totals"]["responses_by_status"] == {"503": 2}
    proc, _ = run_entry_point(tmp_path, "run", server.url, "-n", "1", "-q", "-c", "0")
    assert proc.returncode == 2 and "--connections" in proc.stderr


def test_a_call_with_arguments_raises_systemexit_and_leaves_the_collector_on():
    """Tests (and embedders) call main(argv): no quick exit, and the collector
    main() pauses for the start-up is running again afterwards."""
    assert gc.isenabled()
    with pytest.raises(SystemExit) as raised:
        cli_main.main(["--version"])
    assert raised.value.code == 0
    assert gc.isenabled()
    with pytest.raises(SystemExit) as raised:
        cli_main.main(["run", "http://127.0.0.1/", "-c", "0"])
    assert raised.value.code == 2
    assert gc.isenabled()
