"""A workload as the result file's `config` shows it.

Presentation only: a URL run shows its request (method, headers, body size,
pipeline, -n); a plan shows its name, file and scenario weights instead.  The
keys and their order are the result file's contract."""
from __future__ import annotations

from surge.plan.redact import MASK, redact_header, redact_query
from surge.plan.units import NS_PER_S
from surge.plan.workload import PlanSource, TargetsSource, UrlSource, Workload


def describe_config(workload: Workload, addresses: dict | None = None) -> dict:
    """The result's "config"; `addresses` (surge.run.supervisor.describe_addresses)
    says which address the target and each host got, and what the probe
    handshake of an https target negotiated ("tls": {..., "probe": {...}})."""
    source, load = workload.source, workload.load
    addresses = addresses or {}
    where = dict(addresses.get("target", {}))
    target = workload.target
    if target.tls is not None:      # what was asked for, and what the probe handshake got
        probe = addresses.get("target_tls_probe")
        where["tls"] = {**target.tls.describe(target.host), **({"probe": probe} if probe else {})}
    if isinstance(source, PlanSource) and "hosts" in addresses:
        where["host_addresses"] = addresses["hosts"]
    request = _url_request(source) if isinstance(source, UrlSource) else {}
    described = {
        "url": redact_query(workload.target.url),
        **{k: request[k] for k in ("method", "headers", "auth") if k in request},
        **where,
        **({"body_bytes": request["body_bytes"]} if request else {}),
        **({"follow_redirects": max(s.follow_redirects for s in workload.steps)}
           if any(s.follow_redirects for s in workload.steps) else {}),
        "connections": load.users,
        "workers": workload.workers,
        "duration_s": load.duration_ns / NS_PER_S if load.duration_ns else None,
        **({"requests": load.requests} if request or _targets(source) else {}),
        "timeout_s": workload.timeout_ns / NS_PER_S,
        **({"pipeline": load.pipeline} if request else {}),
        **({"pipeline_timing": load.pipeline_timing} if load.pipeline > 1 else {}),
        **({"keepalive": False} if not load.keepalive else {}),
        **({"bind": [text for _, _, text in workload.source_addresses]} if workload.source_addresses else {}),
        "model": load.model,
        **_describe_profile(load),
    }
    if isinstance(source, PlanSource):
        described.update({"plan": source.name, "plan_file": source.path,
                          "scenarios": {s.name: s.weight for s in workload.scenarios}})
    if _targets(source):
        described.update({"method": source.methods, "targets_file": source.path, "order": source.order,
                          "targets": source.count})
    return described


def _targets(source) -> bool:
    """`surge run --targets FILE`."""
    return isinstance(source, TargetsSource)


def _url_request(source: UrlSource) -> dict:
    return {
        "method": source.method,
        "headers": [f"{k}: {redact_header(k, v)}" for k, v in source.headers],
        **({"auth": f"{source.auth_user}:{MASK}"} if source.auth_user is not None else {}),
        "body_bytes": source.body_bytes,
    }


def _describe_profile(load) -> dict:
    profile = load.profile
    if profile is None:
        return {}
    described = {"stages": profile.describe(), "start": profile.start}
    if load.model == "open":
        described["rate"] = profile.start if not profile.stages else None
        described["max_connections"] = load.users
        described["schedule_grid_s"] = load.schedule_grid_ns / NS_PER_S if load.schedule_grid_ns else "auto"
        described["peak_rate"] = profile.peak
    return described
