"""Each step's redirect hops in the result (src/core/redirect.pxi counts them).

A step's `requests` and `responses_by_status` count its final responses (one
per time the step ran); the hops before them are apart: `redirects` (hops
followed), `redirects_by_status` (each hop's status) and
`redirect_limit_exceeded` (chains that hit follow_redirects: their last
3xx was the step's response, and a failed check).  The totals count every
request on the wire, hops included, as the server's access log does.
"""
from __future__ import annotations


def add_redirects(steps: list[dict], flows: dict) -> None:
    """Add one worker's last per-step redirect counters (its snapshot's
    flows["redirects"]; None when no step follows redirects) to `steps`."""
    per_step = flows.get("redirects")
    if per_step is None:
        return
    for out, (hops, limited, by_status) in zip(steps, per_step):
        out["redirects"] = out.get("redirects", 0) + hops
        out["redirect_limit_exceeded"] = out.get("redirect_limit_exceeded", 0) + limited
        counts = out.setdefault("redirects_by_status", {})
        for status, n in by_status.items():
            counts[str(status)] = counts.get(str(status), 0) + n
    for out in steps:
        if "redirects_by_status" in out:
            out["redirects_by_status"] = dict(sorted(out["redirects_by_status"].items()))


def redirect_totals(steps: list[dict]) -> dict:
    """The totals' `redirects` and `redirects_by_status` (every step's hops;
    {} when no step follows redirects): a URL run with --follow lists no steps."""
    followed = [step for step in steps if "redirects" in step]
    if not followed:
        return {}
    by_status: dict[str, int] = {}
    for step in followed:
        for status, n in step["redirects_by_status"].items():
            by_status[status] = by_status.get(status, 0) + n
    return {"redirects": sum(step["redirects"] for step in followed),
            "redirects_by_status": dict(sorted(by_status.items())),
            "redirect_limit_exceeded": sum(step["redirect_limit_exceeded"] for step in followed)}

