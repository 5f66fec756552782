"""`--summary-json FILE`: a small machine-readable verdict of a run, apart from
the full result file, for CI scripts (`jq .passed summary.json`).

    {"version": 1, "surge_version": "0.1.0", "passed": false, "exit_code": 3,
     "interrupted": false, "aborted_by": null, "plan": "shop", "url": "http://127.0.0.1:8080",
     "objectives": [{"name": "p95 < 2s", "value": 2310.5, "limit": 2000.0, "op": "<",
                     "unit": "ms", "passed": false}],
     "gate": {"verdict": "...", "baseline": "base.json", "passed": true} | null,
     "requests": 1200, "rps": 119.8, "error_rate": 0.0, "p50_ms": 1.2, "p95_ms": 3.4, "p99_ms": 5.6,
     "duration_s": 10.02}

Latencies are in milliseconds here (the result file keeps microseconds);
rates are fractions.  Made from the result dict after the run was judged
(surge.run.session.conclude adds "objectives" and "gate") and the exit code,
so it says what the process exits with.  It holds no header, body or URL
password: only names the plan's author wrote, counts and the redacted URL.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

from surge.plan.redact import redact_url
from surge.result.failed import error_rate

SUMMARY_VERSION = 1
US_PER_MS = 1000.0


def objective_rows(result: dict, objectives=()) -> list[dict]:
    """Each evaluated objective of the result with its limit and comparison,
    latencies in ms.  `objectives` are the plan's (surge.plan.plan.Objective),
    in the order surge.result.objectives.evaluate wrote them."""
    limits = {o.text: o for o in objectives}
    rows = []
    for outcome in result.get("objectives") or []:
        objective = limits.get(outcome["name"])
        unit, value = outcome["unit"], outcome["value"]
        limit = objective.value if objective is not None else None
        if unit == "us":
            unit = "ms"
            value = None if value is None else value / US_PER_MS
            limit = None if limit is None else limit / US_PER_MS
        rows.append({"name": outcome["name"], "value": value, "limit": limit,
                     "op": objective.op if objective is not None else None, "unit": unit,
                     "passed": bool(outcome["passed"]), "abort_on_fail": bool(outcome.get("abort_on_fail"))})
    return rows


def headline(result: dict) -> dict:
    """The numbers a CI job shows next to the verdict."""
    totals = result["totals"]
    percentiles = result["latency"].get("percentiles", {})

    def ms(key: str):
        value = percentiles.get(key)
        return None if value is None else round(value / US_PER_MS, 3)

    return {"requests": totals["requests"], "rps": round(totals["rps"], 3), "error_rate": error_rate(totals),
            "p50_ms": ms("50"), "p95_ms": ms("95"), "p99_ms": ms("99"),
            "duration_s": round(totals["duration_s"], 3)}


def what_ran(result: dict) -> dict:
    """{"plan": name or None, "url": the target, its password masked}."""
    config = result["config"]
    return {"plan": config.get("plan"), "url": redact_url(str(config.get("url", "")))}


def summary(result: dict, exit_code: int, objectives=()) -> dict:
    """The verdict file's content."""
    gate = result.get("gate")
    return {"version": SUMMARY_VERSION, "surge_version": result.get("surge_version"),
            "passed": exit_code == 0, "exit_code": exit_code,
            "interrupted": bool(result.get("interrupted")), "aborted_by": result.get("aborted_by"),
            **what_ran(result),
            "objectives": objective_rows(result, objectives),
            "gate": dict(gate) if gate else None,
            "workers_failed": len(result.get("workers_failed") or []),
            **headline(result)}


def write_summary(result: dict, path: str, exit_code: int, objectives=()) -> None:
    from surge.report.outputs import write_text_atomically
    write_text_atomically(path, json.dumps(summary(result, exit_code, objectives), indent=1) + "\n")


@dataclass(frozen=True)
class VerdictFiles:
    """`--junit` and `--summary-json` of one run: checked before any load
    (surge.report.outputs.check_paths), written after the run was judged,
    whatever its end (thresholds failed, interrupted, a worker died)."""
    junit_path: str | None = None
    summary_path: str | None = None

    def outputs(self) -> list:
        from surge.report.outputs import Output
        return [Output(option, os.fspath(path)) for option, path in
                (("--junit", self.junit_path), ("--summary-json", self.summary_path)) if path]

    def write(self, result: dict, exit_code: int, objectives, command: str,
              echo: Callable[[str, bool], None]) -> int:
        """Write both; returns the exit code, made worse (1) when one cannot be
        written.  The JUnit file first, so the summary can say that code."""
        from surge.outcome import EXIT_RUNTIME, worst_exit

        writers = []
        if self.junit_path:
            from surge.report.junit import write_junit     # (xml.etree: only for --junit)
            writers.append(("--junit", self.junit_path,
                            lambda code: write_junit(result, self.junit_path, code, objectives)))
        if self.summary_path:
            writers.append(("--summary-json", self.summary_path,
                            lambda code: write_summary(result, self.summary_path, code, objectives)))
        for option, path, write in writers:
            try:
                write(exit_code)
            except OSError as exc:
                echo(f"{command}: error: cannot write {option} {path}: {exc.strerror or exc}", True)
                exit_code = worst_exit(exit_code, EXIT_RUNTIME)
            except Exception as exc:  # noqa: BLE001 - a bug here must not hide the run's own verdict
                echo(f"{command}: error: cannot write {option} {path}: internal error: "
                     f"{type(exc).__name__}: {exc} (please report it)", True)
                exit_code = worst_exit(exit_code, EXIT_RUNTIME)
            else:
                echo(f"wrote {path}", True)
        return exit_code
