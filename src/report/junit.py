"""`--junit FILE`: a run's verdicts as a JUnit XML report, the format Jenkins
(JUnit plugin), GitLab (artifacts:reports:junit) and GitHub test-report
actions read.

    <testsuites name="surge" tests="3" failures="1" errors="0" time="10.021">
      <testsuite name="shop" tests="3" failures="1" errors="0" skipped="0" time="10.021"
                 timestamp="2026-12-02T07:00:00" hostname="...">
        <properties><property name="exit_code" value="3"/> ...</properties>
        <testcase classname="shop" name="run" time="10.021"/>
        <testcase classname="shop" name="p95 &lt; 2s" time="0">
          <failure type="objective" message="p95 measured 2.31s, limit &lt; 2s">...</failure>
        </testcase>
        <testcase classname="shop" name="regression gate (base.json)" time="0"/>
      </testsuite>
    </testsuites>

One test case per objective (its text as the name, the measured value and
the limit in a failing one's message), one for the baseline gate, and one
named `run` that says how the run itself ended: an `<error>` when it was
interrupted or a worker died (the numbers are partial), a `<failure>` when an
objective stopped it early (abort_on_fail).  A run with neither objectives nor
a gate still reports one case, so CI never reads "no tests" as a pass.  The
classname is the plan's name (`surge` for a URL run, whose URL is the suite's
`url` property): CI tools split classnames at dots, so dots become `_`.

Nothing from a request's headers or body is written; the URL's password is
masked (surge.plan.redact).
"""
from __future__ import annotations

import datetime as _dt
import re
import socket
import xml.etree.ElementTree as ET

from surge.report.numbers import format_percent, format_rate, format_us
from surge.report.verdict import headline, what_ran

# XML 1.0 forbids most control characters even escaped; a message never needs them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return _NOT_XML.sub("?", str(value))


def _shown(value, unit: str) -> str:
    """A measured value or a limit in the unit its objective is written in."""
    if value is None:
        return "no data"
    if unit == "us":
        return format_us(value)
    if unit == "fraction":
        return format_percent(value)
    if unit == "req/s":
        return f"{format_rate(value)}/s"
    return f"{value:g}"


def _seconds(value: float) -> str:
    return f"{max(0.0, float(value)):.3f}"


def _timestamp(started_at: str | None) -> str | None:
    """ISO 8601 without a zone, in UTC, as Ant's JUnit task writes it."""
    if not started_at:
        return None
    try:
        moment = _dt.datetime.fromisoformat(started_at)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _classname(result: dict) -> str:
    name = result["config"].get("plan") or "surge"
    return _text(name).replace(".", "_")


def _case(suite, classname: str, name: str, time_s: float = 0.0):
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": _text(name), "time": _seconds(time_s)})


def _run_case(suite, result: dict, classname: str) -> str | None:
    """The `run` case; returns "failure", "error" or None."""
    case = _case(suite, classname, "run", result["totals"]["duration_s"])
    died = result.get("workers_failed") or []
    if result.get("interrupted"):
        ET.SubElement(case, "error", {"type": "interrupted", "message":
                      "the run was interrupted; its numbers (and the verdicts on them) are partial"})
        return "error"
    if died:
        causes = ", ".join(f"worker {w['index']} ({w['cause']})" for w in died)
        ET.SubElement(case, "error", {"type": "worker died", "message": _text(f"{causes} died during the run")})
        return "error"
    if result.get("aborted_by"):
        ET.SubElement(case, "failure", {"type": "aborted", "message": _text(f"stopped early: {result['aborted_by']}")})
        return "failure"
    return None


def _objective_cases(suite, result: dict, classname: str, objectives) -> int:
    """One case per objective; returns how many failed."""
    limits = {o.text: o for o in objectives}
    aborted_by = result.get("aborted_by") or ""
    failed = 0
    for outcome in result.get("objectives") or []:
        case = _case(suite, classname, outcome["name"])
        if outcome["passed"]:
            continue
        failed += 1
        objective = limits.get(outcome["name"])
        measured = _shown(outcome["value"], outcome["unit"])
        limit = f"{objective.op} {_shown(objective.value, objective.unit)}" if objective is not None else "?"
        name = outcome["name"]
        metric = name[:name.find(objective.op)].strip() if objective is not None and objective.op in name \
            else name.split()[0]
        message = f"{metric} measured {measured}, limit {limit}"
        if aborted_by.endswith(f": {outcome['name']}"):
            message += f"; {aborted_by.partition(':')[0]} (abort_on_fail), so the run stopped early"
        failure = ET.SubElement(case, "failure", {"type": "objective", "message": _text(message)})
        failure.text = _text(f"objective {outcome['name']}: {message}")
    return failed


def _gate_case(suite, gate: dict, classname: str, details: str | None = None) -> bool:
    """The baseline gate's case; True when it failed."""
    name = f"regression gate ({gate['baseline']})" if gate.get("baseline") else "regression gate"
    case = _case(suite, classname, name)
    failed = not gate.get("passed", True)
    if failed:
        failure = ET.SubElement(case, "failure", {"type": "regression gate", "message": _text(gate["verdict"])})
        failure.text = _text(gate["verdict"])
    if details:             # after the failure: the format puts the output last
        ET.SubElement(case, "system-out").text = _text(details)
    return failed


def _properties(suite, result: dict, exit_code: int) -> None:
    props = ET.SubElement(suite, "properties")
    ran = what_ran(result)
    values = {"exit_code": exit_code, **({"plan": ran["plan"]} if ran["plan"] else {}), "url": ran["url"],
              **headline(result), "interrupted": bool(result.get("interrupted"))}
    for name, value in values.items():
        shown = "" if value is None else (str(value).lower() if isinstance(value, bool) else value)
        ET.SubElement(props, "property", {"name": name, "value": _text(shown)})


def junit_tree(result: dict, exit_code: int, objectives=(), gate_details: str | None = None,
               run_case: bool = True) -> ET.ElementTree:
    """The report as an element tree (see the module's docstring); `run_case`:
    whether to report how the run ended (not for `surge compare`, which ran nothing)."""
    classname = _classname(result)
    duration_s = result["totals"]["duration_s"]
    root = ET.Element("testsuites", {"name": "surge"})
    suite_attrs = {"name": classname, "tests": "0", "failures": "0", "errors": "0", "skipped": "0",
                   "time": _seconds(duration_s)}
    timestamp = _timestamp(result.get("started_at"))
    if timestamp:
        suite_attrs["timestamp"] = timestamp
    suite_attrs["hostname"] = _text(socket.gethostname() or "localhost")
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    _properties(suite, result, exit_code)
    run_outcome = _run_case(suite, result, classname) if run_case else None
    failures = (run_outcome == "failure") + _objective_cases(suite, result, classname, objectives)
    errors = int(run_outcome == "error")
    gate = result.get("gate")
    if gate:
        failures += _gate_case(suite, gate, classname, gate_details)
    tests = len(suite.findall("testcase"))
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    root.set("time", _seconds(duration_s))
    return ET.ElementTree(root)


def write_junit(result: dict, path: str, exit_code: int, objectives=(), gate_details: str | None = None,
                run_case: bool = True) -> None:
    tree = junit_tree(result, exit_code, objectives, gate_details, run_case)
    from surge.report.outputs import atomically
    ET.indent(tree, space=" ")
    atomically(path, lambda temporary: tree.write(temporary, encoding="UTF-8", xml_declaration=True))


def write_gate_junit(path: str, current: dict, gate: dict, exit_code: int, details: str) -> None:
    """`surge compare --junit`: the gate as the one case, the comparison's table in its output."""
    result = dict(current, objectives=[], gate=gate)
    write_junit(result, path, exit_code, gate_details=details, run_case=False)
