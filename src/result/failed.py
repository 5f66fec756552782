"""Failed requests as a result file records them, read one way everywhere
(the reports, compare, live progress, objectives).

A request failed when it got no response (a transport error: connect, read,
write, timeout, parse, closed) or a failed status (>= 400, or outside a step's
`expect.status`); surge.run.merge applies that rule and writes the count as
"failed". Result files older than the rule have no "failed": there the
transport errors are the failed requests.
"""
from __future__ import annotations


def errors_total(errors) -> int:
    """Errors are a dict by kind in totals, a plain count in time-series points."""
    if isinstance(errors, dict):
        return sum(int(v) for v in errors.values())
    return int(errors or 0)


def failed_count(part) -> int:
    """Failed requests of a totals / step / scenario dict or a time-series point:
    its "failed" (transport errors and failed statuses, see surge.run.merge), or,
    in result files older than that rule, its transport errors only."""
    if not isinstance(part, dict):
        return 0
    failed = part.get("failed")
    if isinstance(failed, dict):
        return int(failed.get("count", 0))
    if isinstance(failed, (int, float)) and not isinstance(failed, bool):
        return int(failed)
    return errors_total(part.get("errors"))


def failed_reasons(part) -> dict[str, int]:
    """{"status 500": 98, "timeout": 2}, the most frequent first ({} when unknown)."""
    failed = part.get("failed") if isinstance(part, dict) else None
    if isinstance(failed, dict) and isinstance(failed.get("by_reason"), dict):
        reasons = failed["by_reason"]
    elif isinstance(part, dict) and isinstance(part.get("errors"), dict):
        reasons = part["errors"]
    else:
        return {}
    return dict(sorted(((str(k), int(v)) for k, v in reasons.items() if v), key=lambda kv: (-kv[1], kv[0])))


def attempts(part) -> int:
    """Requests attempted: responses of any status + transport errors."""
    return int(part.get("requests", 0) or 0) + errors_total(part.get("errors"))


def error_rate(part) -> float:
    """Failed requests over attempts, of a totals / step / scenario dict or a point."""
    tried = attempts(part) if isinstance(part, dict) else 0
    return failed_count(part) / tried if tried else 0.0

