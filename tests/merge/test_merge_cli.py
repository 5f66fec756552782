"""`surge merge`'s checks and inputs: parts of different runs (exit 2), a
segment missing or given twice (exit 1, or merged with --allow-partial),
logs holding SURGE-RESULT lines with prefixes and standard input, a cut
line, the baseline gate, and no engine loaded to merge.

The parts are real runs against `surge serve`, one after the other (a shared
--run-id makes them parts of one run without a common start)."""
import json
import subprocess
import sys

import pytest

from bench.nginx import free_port
from surge.result.emit import encode_result_line
from tests.helpers import SurgeRun, assert_one_line_error, run_surge
from tests.result.test_no_engine import forbidden, modules_after


def surge(*args: str, stdin: str | None = None, timeout_s: float = 60) -> SurgeRun:
    done = subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout_s)
    return SurgeRun(done.returncode, done.stdout, done.stderr, None)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """{run id: [part files]}: run-a in 3 segments, run-b's segment 2, and a whole run."""
    folder = tmp_path_factory.mktemp("parts")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "surge", "serve", "--port", str(port), "-w", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from bench.nginx import _accepts
        import time
        deadline = time.monotonic() + 20
        while not _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"
        out = {}
        for run_id, segments in (("run-a", range(3)), ("run-b", [2]), ("whole", [None])):
            for i in segments:
                launch = ["--segment", f"{i}/3", "--run-id", run_id] if i is not None else []
                run = run_surge("run", url, "-n", "300", "-c", "3", "-w", "1", "-q", *launch)
                assert run.code == 0, run.stderr
                path = folder / f"{run_id}-{i}.json"
                path.write_text(json.dumps(run.result))
                out.setdefault(run_id, []).append(str(path))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return out


def test_parts_of_different_runs_exit_2_naming_them(parts):
    run = surge("merge", *parts["run-a"][:2], parts["run-b"][0])
    assert_one_line_error(run, 2, "parts from different runs", "run run-a", "run run-b", parts["run-b"][0])


def test_a_whole_run_is_not_a_part(parts):
    assert_one_line_error(surge("merge", parts["whole"][0]), 2, parts["whole"][0], "a whole run")


def test_a_missing_segment_exits_1_naming_it(parts):
    assert_one_line_error(surge("merge", *parts["run-a"][:2]), 1, "segment 2 of 3 missing", "--allow-partial")


def test_a_duplicated_segment_exits_1_naming_it(parts):
    run = surge("merge", *parts["run-a"], parts["run-a"][1])
    assert_one_line_error(run, 1, "segment given twice: segment 1")


def test_allow_partial_merges_what_is_there_and_says_what_is_missing(parts, tmp_path):
    out = tmp_path / "m.json"
    run = surge("merge", parts["run-a"][0], parts["run-a"][2], parts["run-a"][2], "--allow-partial", "--json",
                str(out))
    assert run.code == 0, run.stderr
    merged = json.loads(out.read_text())
    assert merged["merge"]["missing"] == [1] and merged["merge"]["merged"] == [0, 2]
    assert merged["totals"]["requests"] == 200
    assert "segment 1 of 3 missing" in run.stderr and "left out segment 2" in run.stderr
    assert "MISSING 1" in run.stdout


def log_text(paths: list[str], prefix: str) -> str:
    """A log as `kubectl logs --prefix --timestamps` would show it: other lines
    around, each result line after a prefix."""
    lines = []
    for i, path in enumerate(paths):
        with open(path) as f:
            lines += [f"{prefix}{i} surge run: starting", f"{prefix}{i} {encode_result_line(json.load(f))}"]
    return "\n".join(lines) + "\n"


def test_one_log_of_every_pod_with_prefixes_and_stdin(parts, tmp_path):
    log = tmp_path / "all.log"
    log.write_text(log_text(parts["run-a"], "2026-12-02T14:30:00.123Z [pod/shop-"))
    for source in ([str(log)], ["-"]):
        out = tmp_path / "m.json"
        run = surge("merge", *source, "--json", str(out), stdin=log.read_text() if source == ["-"] else None)
        assert run.code == 0, run.stderr
        merged = json.loads(out.read_text())
        assert merged["totals"]["requests"] == 300 and merged["latency"]["count"] == 300
        assert merged["merge"]["parts"][1]["source"] == ("standard input:4" if source == ["-"] else f"{log}:4")


def test_a_cut_line_or_a_foreign_file_is_one_line_exit_2(parts, tmp_path):
    text = log_text(parts["run-a"], "")
    cut = tmp_path / "cut.log"
    cut.write_text(text[: text.index("SURGE-RESULT") + 300])
    assert_one_line_error(surge("merge", str(cut)), 2, f"{cut}:2", "cut")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\n")
    assert_one_line_error(surge("merge", str(foreign)), 2, str(foreign), "no SURGE-RESULT line")
    other = tmp_path / "other.json"
    other.write_text('{"k6": true}')
    assert_one_line_error(surge("merge", str(other)), 2, str(other), "not a surge result")
    assert_one_line_error(surge("merge", str(tmp_path / "absent.json")), 2, "absent.json", "no such file")


def test_the_baseline_gate_judges_the_whole(parts, tmp_path):
    # runs of 0.1 s are too short for any change to be significant: inconclusive, exit 3 ...
    run = surge("merge", *parts["run-a"], "--baseline", parts["whole"][0])
    assert run.code == 3, run.stderr
    assert "INCONCLUSIVE" in run.stdout + run.stderr
    # ... unless allowed, and the merged result records the gate
    out = tmp_path / "m.json"
    run = surge("merge", *parts["run-a"], "--baseline", parts["whole"][0], "--allow-inconclusive", "--json", str(out))
    assert run.code == 0, run.stderr
    assert json.loads(out.read_text())["gate"]["baseline"].startswith("whole")


def test_reports_of_the_merged_result(parts, tmp_path):
    """HTML with the per-instance table; surge report reads the merged file back."""
    out, page = tmp_path / "m.json", tmp_path / "m.html"
    run = surge("merge", *parts["run-a"], "--json", str(out), "--html", str(page))
    assert run.code == 0, run.stderr
    assert "Per instance" in page.read_text()
    again = surge("report", str(out))
    assert again.code == 0 and "Instances" in again.stdout


def test_merging_loads_no_engine(parts, tmp_path):
    argv = ["merge", *parts["run-a"], "--json", str(tmp_path / "m.json")]
    loaded = modules_after(f"""
from surge.cli.main import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code == 0, exc.code
""")
    assert "surge.result.combine" in loaded
    assert "surge.core._engine" not in loaded
    # conclude() is the run's judging code (surge.run.session); nothing that runs load comes with it
    assert not {"surge.run.supervisor", "surge.run.worker", "surge.run.merge"} & set(forbidden(loaded))


def test_a_part_that_started_late_is_shifted_on_the_common_clock(parts):
    """A part up to a second late carries its own run.started_at_unix_ns: its
    points land that much later on the common clock (whole slots), the whole
    lasts that much longer, and nothing is lost or counted twice."""
    from surge.result.combine import Part, combine, select
    results = []
    for path in parts["run-a"]:
        with open(path) as f:
            results.append(json.load(f))
    late = json.loads(json.dumps(results[2]))
    late["run"]["started_at_unix_ns"] = results[0]["run"]["started_at_unix_ns"] + 1_000_000_000   # 1 s late
    for r in results[:2]:           # the others as if they had shared the first one's instant
        r["run"]["started_at_unix_ns"] = results[0]["run"]["started_at_unix_ns"]
    merged = combine(select([Part(r, f"p{i}") for i, r in enumerate([*results[:2], late])]))
    assert merged["merge"]["parts"][2]["start_offset_ms"] == 1000.0
    assert merged["totals"]["duration_s"] == pytest.approx(1 + late["totals"]["duration_s"])
    points = merged["timeseries"]
    assert sum(p["requests"] for p in points) == 300
    import math
    expected: dict[int, int] = {}
    for shift, r in ((0, results[0]), (0, results[1]), (1, late)):
        for p in r["timeseries"]:
            slot = max(1, math.ceil(p["t"] - 1e-6)) + shift
            expected[slot] = expected.get(slot, 0) + p["requests"]
    assert [p["requests"] for p in points] == [expected[k] for k in sorted(expected)]
    first_late = min(max(1, math.ceil(p["t"] - 1e-6)) for p in late["timeseries"]) + 1
    assert 2 in {w["segment"] for w in points[first_late - 1]["workers"]}
    assert all(w["segment"] != 2 for w in points[0]["workers"])        # nothing of it before its start


def test_a_dead_workers_time_is_kept_on_the_common_clock(parts):
    """workers_failed keeps when the worker went (at_s) and its last reported
    second (last_report_s), moved by its part's start offset like its points."""
    from surge.result.combine import Part, combine, select
    results = []
    for path in parts["run-a"]:
        with open(path) as f:
            results.append(json.load(f))
    start_ns = results[0]["run"]["started_at_unix_ns"]
    for r in results[:2]:
        r["run"]["started_at_unix_ns"] = start_ns
    results[2]["run"]["started_at_unix_ns"] = start_ns + 1_000_000_000          # 1 s late
    results[2]["workers_failed"] = [{"index": 0, "cause": "killed by signal 9", "at_s": 2.25, "last_report_s": 2}]
    merged = combine(select([Part(r, f"p{i}") for i, r in enumerate(results)]))
    (failed,) = merged["workers_failed"]
    assert failed["segment"] == 2 and failed["index"] == 2          # after segments 0 and 1's one worker each
    assert (failed["at_s"], failed["last_report_s"]) == (3.25, 3)


def test_an_objective_this_surge_cannot_read_is_one_line_exit_2(parts, tmp_path):
    """Not left out: the whole would then pass an objective nobody judged."""
    with open(parts["run-a"][1]) as f:
        result = json.load(f)
    result["objectives"] = [{"name": "frobnication < 3 widgets", "passed": True, "value": 1.0, "unit": "x"}]
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(result))
    run = surge("merge", parts["run-a"][0], str(odd), parts["run-a"][2])
    assert_one_line_error(run, 2, str(odd), "frobnication < 3 widgets", "cannot be judged")
