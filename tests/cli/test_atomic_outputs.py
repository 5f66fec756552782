"""Issue 15 item 3: every file surge writes is written atomically (a temporary
beside it, then a rename), so a reader or a run killed mid-write sees the old
file or the whole new one, never a half-written one.

How a test can tell: each output path already exists as a second name (a hard
link) of a file holding OLD.  A writer that opens the path and writes into it
truncates that shared file, so the second name would read the new text; a
rename gives the path a new file and leaves the second name holding OLD."""
import json
import os
import subprocess
import sys

SURGE = [sys.executable, "-m", "surge"]
OLD = "old contents\n"


def _prelinked(tmp_path, names):
    """{name: path}, each path a hard link of its own `<name>.keep` holding OLD."""
    paths = {}
    for name in names:
        keep = tmp_path / f"{name}.keep"
        keep.write_text(OLD)
        os.link(keep, tmp_path / name)
        paths[name] = tmp_path / name
    return paths


def _assert_replaced(tmp_path, paths):
    for name, path in paths.items():
        assert (tmp_path / f"{name}.keep").read_text() == OLD, f"{name} was written in place, not renamed over"
        assert path.read_text() != OLD and path.stat().st_size > 0, f"{name} was not written"
        assert path.stat().st_nlink == 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], "a temporary was left behind"


def test_every_output_of_a_plan_run_is_renamed_into_place(surge_server, tmp_path):
    server = surge_server(app="demo")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""name: atomic
target: {server.url}
load: {{model: closed, vus: 2, duration: 1s}}
scenarios:
  - name: browse
    steps:
      - name: search
        request: GET /search?q=x
      - name: item
        request: GET /items/7
""")
    names = ["r.json", "r.html", "r.csv", "r.steps.csv", "r.hlog", "r.junit.xml", "r.summary.json"]
    paths = _prelinked(tmp_path, names)
    run = subprocess.run([*SURGE, "run", str(plan), "-q", "-w", "1", "--json", "r.json", "--html", "r.html",
                          "--csv", "r.csv", "--hlog", "r.hlog", "--junit", "r.junit.xml",
                          "--summary-json", "r.summary.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    _assert_replaced(tmp_path, paths)
    assert json.loads(paths["r.summary.json"].read_text())["passed"] is True
    assert paths["r.junit.xml"].read_text().startswith("<?xml")
    assert "search" in paths["r.steps.csv"].read_text()


def test_report_and_convert_outputs_are_renamed_into_place(tmp_path, surge_server):
    server = surge_server()
    run = subprocess.run([*SURGE, "run", server.url, "-n", "20", "-c", "1", "-w", "1", "-q", "--json", "in.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    paths = _prelinked(tmp_path, ["out.html", "out.csv", "out.hlog", "plan.yaml"])
    made = subprocess.run([*SURGE, "report", "in.json", "--html", "out.html", "--csv", "out.csv",
                           "--hlog", "out.hlog"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    curl = f"curl {server.url.rstrip('/')}/items/7"
    converted = subprocess.run([*SURGE, "convert", "--curl", curl, "-o", "plan.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert converted.returncode == 0, converted.stderr
    _assert_replaced(tmp_path, paths)


def test_a_writer_that_fails_leaves_the_old_file_whole(tmp_path):
    """A report that raises half-way (here: a row the CSV writer cannot take)
    leaves the file as it was, and no temporary beside it."""
    import pytest

    from surge.report.csv_export import _write

    path = tmp_path / "r.csv"
    path.write_text(OLD)

    class Unwritable:
        def __str__(self):
            raise RuntimeError("cannot be shown")

    rows = [{"t": i, "v": i} for i in range(1000)] + [{"t": 1000, "v": Unwritable()}]
    with pytest.raises(RuntimeError):
        _write(rows, str(path))
    assert path.read_text() == OLD
    assert os.listdir(tmp_path) == ["r.csv"]
