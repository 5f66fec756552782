"""The failed-request rule (k6's http_req_failed), applied where the result
is made: a request failed when it got no response (a transport error) or a
failed status: >= 400, or, in a plan step with `expect.status`, a status
outside that list.  It runs on the per-status counts the engine reports, so
the engine has no rule of its own; surge.result.failed reads the counts back.
"""
from __future__ import annotations


def is_failed_status(status: int, allowed: tuple[int, ...] = ()) -> bool:
    """A response failed when its status is >= 400, unless the step lists the
    statuses it expects (`expect.status`): then only those are fine."""
    return int(status) not in allowed if allowed else int(status) >= 400


def failed_requests(statuses: dict, errors: dict, allowed: tuple[int, ...] = ()) -> dict:
    """{"count", "by_reason"}: transport errors by kind, failed statuses as
    "status NNN"; only non-zero reasons, the most frequent first."""
    reasons = {kind: int(n) for kind, n in errors.items() if n}
    for status, n in statuses.items():
        if n and is_failed_status(status, allowed):
            reasons[f"status {int(status)}"] = reasons.get(f"status {int(status)}", 0) + int(n)
    ordered = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return {"count": sum(ordered.values()), "by_reason": ordered}


def add_failed(into: dict, other: dict) -> dict:
    """The sum of two {"count", "by_reason"} (a scenario's steps, a plan's totals)."""
    reasons = dict(into["by_reason"])
    for reason, n in other["by_reason"].items():
        reasons[reason] = reasons.get(reason, 0) + n
    ordered = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return {"count": into["count"] + other["count"], "by_reason": ordered}


def failed_fraction(failed: dict, responses: int, errors: dict) -> float:
    """failed / attempts, attempts = responses of any status + transport errors."""
    attempts = responses + sum(errors.values())
    return round(failed["count"] / attempts, 9) if attempts else 0.0


def no_failed() -> dict:
    """A fresh "nothing failed" (each result part gets its own dict)."""
    return {"count": 0, "by_reason": {}}


def step_failed_counts(flows: dict | None, allowed: list[tuple[int, ...]]) -> int:
    """Failed requests so far in one worker's cumulative flow counters (all steps)."""
    if not flows:
        return 0
    total = 0
    for (_, _, _, errors, statuses, _), ok in zip(flows["steps"], allowed):
        total += sum(errors) + sum(n for status, n in statuses.items() if is_failed_status(status, ok))
    return total
