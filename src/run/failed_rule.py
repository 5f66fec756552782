"""The failed-request rule (k6's http_req_failed), applied where the result
is made: a request failed when it got no response (a transport error) or a
failed status: >= 400, or, in a plan step with `expect.status`, a status
outside that list.  It runs on the per-status counts the engine reports, so
the engine has no rule of its own; surge.result.failed reads the counts back.
"""
from __future__ import annotations

from surge.core._limits import ERROR_KINDS


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


def snapshot_failed(snapshot: dict, allowed: list[tuple[int, ...]]) -> dict:
    """{"count", "by_reason"} so far in one worker's cumulative snapshot: each
    step's rule on its own counters ("flows", which the engine reports for every
    run).  A snapshot without them (a hand-made one) is one step with the >= 400
    rule on the worker's totals, which is what a one-step run's counters are."""
    flows = snapshot.get("flows")
    if not flows:
        return failed_requests(snapshot["statuses"], snapshot["errors"])
    failed = no_failed()
    for (_, _, _, errors, statuses, _), ok in zip(flows["steps"], allowed):
        failed = add_failed(failed, failed_requests(statuses, dict(zip(ERROR_KINDS, errors)), ok))
    return failed


def failed_count(snapshot: dict, allowed: list[tuple[int, ...]]) -> int:
    """snapshot_failed(...)["count"] without building the reasons (each second's point)."""
    flows = snapshot.get("flows")
    if not flows:
        return (sum(snapshot["errors"].values())
                + sum(n for status, n in snapshot["statuses"].items() if is_failed_status(status)))
    total = 0
    for (_, _, _, errors, statuses, _), ok in zip(flows["steps"], allowed):
        total += sum(errors) + sum(n for status, n in statuses.items() if is_failed_status(status, ok))
    return total
