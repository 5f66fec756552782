"""The workload of `surge run --targets FILE [--order round-robin|random]`.

Each target of the file (surge.plan.targets) becomes a URL run's literal step
(surge.plan.request.url_step) in a scenario of its own, `t1`, `t2`, ... in file
order, so the result counts each target apart and an iteration is one request:
-c, -d, -n, --rate, --stages mean what they mean for one URL.  Round-robin
takes the scenarios in turn (Workload.scenario_order "rotate"); random picks
one per iteration, all weighted alike.  -H headers go on every target (a
target's own header of the same name wins); --auth and URL credentials are
Basic auth and --follow as for one URL; the TLS flags apply to the https targets.
"""
from __future__ import annotations

from dataclasses import replace

from surge.plan.build import (Built, Problem, _url_duration_ns, _with_tls, _workers, credential_conflicts,
                              keepalive_conflicts, option_secrets, url_users)
from surge.plan.errors import PlanError
from surge.plan.options import RunOptions, load_profile
from surge.plan.plan import Scenario
from surge.plan.request import parse_auth, parse_header, url_step
from surge.plan.targets import ORDERS, read_targets, step_names
from surge.plan.workload import LoadModel, TargetsSource, Workload

# URL-run options that a targets file says in its own way.
TARGETS_INSTEAD = {
    "method": "each target line names its method (METHOD URL)",
    "body": "each target gives its own body (an @FILE line)",
    "pipeline": "several targets take turns on each connection, one request at a time",
    "pipeline_timing": "several targets take turns on each connection, one request at a time",
}


def targets_workload(argument: str | None, o: RunOptions) -> Built:
    """`surge run --targets FILE`: one scenario of one literal step per target."""
    if o.targets is None:
        return Built(None, (Problem("give a URL, a plan file (.yaml, .toml), or --targets FILE"),))
    problems = []
    if argument is not None:
        problems.append(f"--targets and the argument {argument!r} exclude each other: give a URL, a plan, "
                        f"or --targets FILE")
    order = o.order or "round-robin"
    if order not in ORDERS:
        problems.append(f"--order: got {order!r}, allowed: {', '.join(ORDERS)}")
    problems += [f"{o.explicit.get(name, name)} does not apply to --targets: {why}"
                 for name, why in TARGETS_INSTEAD.items() if o.given(name)]
    profile, load_problems = load_profile(o)
    problems += load_problems
    headers = auth = None
    try:
        headers = tuple(parse_header(h) for h in o.headers)
        auth = parse_auth(o.auth)
    except PlanError as exc:
        problems.append(str(exc))
    if headers is not None:
        problems += keepalive_conflicts(o, headers)
    specs, file_problems = read_targets(o.targets)
    if problems or file_problems or headers is None:
        return Built(None, tuple(Problem(p) for p in problems)
                     + tuple(Problem(p, in_plan_file=True) for p in file_problems))
    steps = _steps(specs, headers, auth, o, problems)
    if problems:
        return Built(None, tuple(Problem(p) for p in dict.fromkeys(problems)))
    scenarios = tuple(Scenario(f"t{n}", 1.0, (step,)) for n, step in enumerate(steps, 1))
    load = LoadModel(users=url_users(o, profile), profile=profile, duration_ns=_url_duration_ns(o, profile),
                     requests=o.requests, schedule_grid_ns=o.schedule_grid_ns, keepalive=not o.disable_keepalive)
    source = TargetsSource(path=o.targets, order=order, count=len(steps),
                           methods=",".join(dict.fromkeys(step.method for step in steps)))
    secrets = option_secrets(headers, auth, [spec.target.path for spec in specs])
    for spec in specs:          # each target's own secret headers and URL password
        credentials = (spec.target.username, spec.target.password or "") if spec.target.username else None
        secrets.update(option_secrets(spec.headers, credentials))
    return Built(Workload(source=source, target=steps[0].host, scenarios=scenarios, load=load,
                          timeout_ns=o.timeout_ns, workers=_workers(o), secrets=secrets,
                          scenario_order="rotate" if order == "round-robin" else "weighted"), ())


def _steps(specs, cli_headers, auth, o: RunOptions, problems: list[str]):
    """Each target as a URL run's step, named for the result (problems appended)."""
    names = step_names(specs)
    https = [s for s in specs if s.target.scheme == "https"]
    if o.tls_flags_given and not https:
        problems.append(f"{', '.join(o.tls_flags_given)}: TLS options apply to https:// targets only, and every "
                        f"target of {o.targets} is plain HTTP")
        return []
    steps = []
    for spec, name in zip(specs, names):
        own = {n.lower() for n, _ in spec.headers}
        headers = tuple(h for h in cli_headers if h[0].lower() not in own) + spec.headers
        target = spec.target
        where = f"{o.targets}:{spec.line}"
        for problem in credential_conflicts(target, auth, headers):
            problems.append(f"{where}: {problem}")
        if target.scheme == "https":
            target = _with_tls(target, o, target.url, problems)
        credentials = auth if auth is not None else (
            (target.username, target.password or "") if target.username is not None else None)
        step = url_step(target, spec.method, headers, spec.body, credentials, keepalive=not o.disable_keepalive)
        steps.append(replace(step, name=name, follow_redirects=o.follow or 0))     # --follow N, as for one URL
    return steps
