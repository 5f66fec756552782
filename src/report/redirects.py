"""The summary's lines about redirects (the result's totals and steps: surge.run.redirects)."""
from __future__ import annotations


def redirect_lines(result: dict) -> list[str]:
    """The summary's redirect lines: hops by status, and each step whose
    chains hit follow_redirects (a failed check: "redirect limit N exceeded")."""
    totals = result.get("totals") or {}
    if not totals.get("redirects") and not totals.get("redirect_limit_exceeded"):
        return []
    by_status = ", ".join(f"{code}: {n}" for code, n in (totals.get("redirects_by_status") or {}).items())
    lines = [f"  Redirects followed: {totals.get('redirects', 0)} ({by_status or 'none'}), each a request above "
             f"(the latency above is each request's own; a plan step's covers its whole chain)"]
    limit = (result.get("config") or {}).get("follow_redirects")
    for step in result.get("steps") or []:
        if step.get("redirect_limit_exceeded"):
            lines.append(f"  {step['scenario']}/{step['step']}: redirect limit {limit} exceeded "
                         f"{step['redirect_limit_exceeded']} times (failed checks)")
    if not result.get("steps") and totals.get("redirect_limit_exceeded"):
        lines.append(f"  redirect limit {limit} exceeded {totals['redirect_limit_exceeded']} times (failed checks)")
    return lines
