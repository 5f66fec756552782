"""The run's policy without a command line (issue 10 item 5): exit-code
precedence, the abort-on-fail decision, and what a finished run says."""
import dataclasses
import json

import pytest

from surge.plan.build import url_workload
from surge.plan.objective import parse_objective
from surge.plan.options import RunOptions
from surge.core._histogram import Histogram
from surge.report.outputs import requested
from surge.run.merge import latency_summary
from surge.outcome import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, worst_exit
from surge.run.session import AbortOnFail, Ending, conclude
from tests.report.synthetic import make_result

S = 1_000_000_000


@pytest.mark.parametrize("codes, worst", [
    ((), EXIT_OK),
    ((EXIT_OK, EXIT_GATE), EXIT_GATE),
    ((EXIT_GATE, EXIT_RUNTIME), EXIT_RUNTIME),
    ((EXIT_GATE, EXIT_USAGE), EXIT_USAGE),
    ((EXIT_RUNTIME, EXIT_INTERRUPTED, EXIT_GATE), EXIT_INTERRUPTED),
    ((EXIT_GATE, 7), 7),                     # an unknown code ranks just after a runtime error
    ((EXIT_RUNTIME, 7), EXIT_RUNTIME),
])
def test_exit_precedence(codes, worst):
    assert worst_exit(*codes) == worst


def workload(*objectives):
    return dataclasses.replace(url_workload("http://127.0.0.1:9/", RunOptions()).workload,
                               objectives=tuple(objectives))


def result(**changes):
    out = make_result(5, model="closed", objectives=False, steps=False, scenarios=False, error_every=0)
    out.update(changes)
    return out


def conclude_with(res, work, **ending):
    said = []
    code = conclude(res, work, Ending(**ending), lambda text, err: said.append((text, err)))
    return code, said


def test_a_clean_run_exits_0_after_its_summary():
    code, said = conclude_with(result(), workload())
    assert code == EXIT_OK
    assert len(said) == 1 and not said[0][1]          # the summary, on stdout


def test_failed_objectives_exit_3_and_are_named():
    res = result()
    code, said = conclude_with(res, workload(parse_objective("p99 < 1us"), parse_objective("requests > 0")))
    assert code == EXIT_GATE
    assert [o["passed"] for o in res["objectives"]] == [False, True]
    assert said[-1] == ("surge run: objective failed: p99 < 1us", True)


def test_stopped_early_exits_3():
    code, said = conclude_with(result(aborted_by="objective failed at 2s: p99 < 1us"), workload())
    assert code == EXIT_GATE
    assert said[-1] == ("surge run: stopped early: objective failed at 2s: p99 < 1us", True)


def test_a_dead_worker_outranks_a_failed_objective():
    res = result(workers_failed=[{"index": 1, "cause": "killed by SIGKILL"}])
    code, said = conclude_with(res, workload(parse_objective("p99 < 1us")))
    assert code == EXIT_RUNTIME
    assert ("surge run: error: worker 1 (killed by SIGKILL) died during the run; the other's results are kept",
            True) in said


def test_a_report_not_written_exits_1_and_the_others_are_written(tmp_path):
    files = requested(str(tmp_path / "r.json"), str(tmp_path / "missing" / "r.html"), None, None)
    code, said = conclude_with(result(), workload(parse_objective("p99 < 1us")), files=files)
    assert code == EXIT_RUNTIME
    assert json.loads((tmp_path / "r.json").read_text())["objectives"][0]["passed"] is False
    assert any("r.html" in text for text, _ in said)


def test_interrupted_outranks_everything():
    res = result(workers_failed=[{"index": 0, "cause": "killed by SIGKILL"}])
    code, _ = conclude_with(res, workload(parse_objective("p99 < 1us")), interrupted=True)
    assert code == EXIT_INTERRUPTED


def test_json_to_stdout_sends_the_summary_to_stderr(capsys):
    code, said = conclude_with(result(), workload(), files=requested("-", None, None, None))
    assert code == EXIT_OK
    assert said and all(err for _, err in said)
    assert json.loads(capsys.readouterr().out)["totals"]


def live(latency_us):
    """A live result whose every request took latency_us."""
    hist = Histogram()
    for _ in range(100):
        hist.record(latency_us)
    return {"totals": {"requests": 100, "duration_s": 1.0, "errors": {}, "failed": {"count": 0, "by_reason": {}}},
            "latency": latency_summary(hist)}


def test_abort_waits_for_the_grace_without_merging():
    abort = AbortOnFail([parse_objective("p99 < 1ms", abort_on_fail=True, grace_ns=3 * S)])

    def never():
        raise AssertionError("the live result is merged only once an objective is watched")
    assert abort.reason(2, never) is None


def test_abort_after_the_grace_names_the_objective():
    abort = AbortOnFail([parse_objective("p99 < 1ms", abort_on_fail=True, grace_ns=3 * S)])
    assert abort.reason(3, lambda: live(500)) is None
    assert abort.reason(4, lambda: live(5000)) == "objective failed at 4s: p99 < 1ms"


def test_only_abort_on_fail_objectives_stop_a_run():
    abort = AbortOnFail([parse_objective("p99 < 1ms")])
    assert abort.objectives == []
    assert abort.reason(10, lambda: live(5000)) is None
