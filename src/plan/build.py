"""Building the workload of `surge run ARGUMENT` from its options.

    built = build_workload("http://127.0.0.1:8080/", RunOptions(connections=50))
    built.workload            # a Workload, or None when there are problems
    built.problems            # every Problem, in the order surge has always checked them

A URL becomes a one-scenario, one-step workload (surge.plan.request.url_step);
a plan file (.yaml/.yml/.toml, or any existing file) is loaded and validated
by surge.plan.validate and compiled to the same type.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from surge.plan.errors import PlanError
from surge.plan.options import DEFAULT_DURATION_NS, DEFAULT_TIMEOUT_NS, RunOptions, load_profile
from surge.plan.plan import Plan, Scenario
from surge.plan.request import CONNECTION_CLOSE, parse_auth, parse_header, parse_method, parse_target, url_step
from surge.plan.template import static_template
from surge.plan.tls import FILE_FIELDS, FLAG_NAMES, context_problem
from surge.plan.workload import (LoadModel, PlanSource, UrlSource, Workload, default_max_connections,
                                 default_max_vus)

PLAN_SUFFIXES = (".yaml", ".yml", ".toml")
# URL-run options a plan says in its own way (what it has instead), and ones
# that have no meaning for it.
PLAN_INSTEAD = {
    "connections": "it sets its virtual users in load: vus (closed model) or load: max_vus (open model)",
    "duration": "its length is load: duration, or the sum of its load: stages",
    "requests": "it runs for a time (load: duration or load: stages), not a number of requests",
    "method": "each step names its method (request: METHOD /path)",
    "body": "each step sends its own body (a step's body: or json:)",
    "rate": "its open model sets iterations started per second in load: rate (or load: stages)",
    "max_connections": "its open model sets the most virtual users in load: max_vus",
    "stages": "it sets them in load: stages",
    "shape": "it has no named shapes: write the shape as load: stages",
    "pipeline": "each virtual user sends one request at a time",
    "pipeline_timing": "each virtual user sends one request at a time",
}


@dataclass(frozen=True)
class Problem:
    """One reason the run cannot start (exit 2).  A plan file's problems say
    their own `FILE:LINE FIELD:`; the others are about the command's options."""
    text: str
    in_plan_file: bool = False


@dataclass(frozen=True)
class Built:
    workload: Workload | None
    problems: tuple[Problem, ...]


def looks_like_plan(argument: str) -> bool:
    """`surge run plan.yaml`: a file argument instead of a URL."""
    return "://" not in argument and (argument.endswith(PLAN_SUFFIXES) or os.path.isfile(argument))


def build_workload(argument: str | None, options: RunOptions) -> Built:
    """The workload of `surge run ARGUMENT` (or `surge run --targets FILE`), or every problem with it."""
    built = _build_workload(argument, options)
    if options.bind is None:
        return built
    from surge.run.limits import BindError, parse_bind
    try:
        binds = parse_bind(options.bind)
    except BindError as exc:
        return Built(None, built.problems + (Problem(str(exc)),))
    if built.workload is None:
        return built
    return Built(replace(built.workload, source_addresses=binds), ())


def _build_workload(argument: str | None, options: RunOptions) -> Built:
    if options.targets is not None or argument is None:
        from surge.plan.build_targets import targets_workload
        return targets_workload(argument, options)
    if options.order is not None:
        return Built(None, (Problem("--order applies to --targets FILE only; a URL or a plan has one order"),))
    if looks_like_plan(argument):
        return plan_workload(argument, options)
    return url_workload(argument, options)


def _workers(options: RunOptions) -> int:
    return options.workers or os.cpu_count() or 1


# ---- surge run URL ----------------------------------------------------------------------
def url_workload(url: str, o: RunOptions) -> Built:
    """`surge run URL`: one scenario of one literal step."""
    profile, problems = load_profile(o)
    parsed = {}
    for name, parse in (("target", lambda: parse_target(url, allow_credentials=True)),
                        ("method", lambda: parse_method(o.method)),
                        ("headers", lambda: tuple(parse_header(h) for h in o.headers)),
                        ("body", lambda: read_body(o.body)),
                        ("auth", lambda: parse_auth(o.auth))):
        try:
            parsed[name] = parse()
        except PlanError as exc:
            problems.append(str(exc))
    if "target" in parsed and "auth" in parsed and "headers" in parsed:
        problems.extend(credential_conflicts(parsed["target"], parsed["auth"], parsed["headers"]))
    if "headers" in parsed:
        problems.extend(keepalive_conflicts(o, parsed["headers"]))
    if "target" in parsed:
        parsed["target"] = _with_tls(parsed["target"], o, url, problems)
    if problems:
        return Built(None, tuple(Problem(p) for p in problems))
    target, method, headers, body, auth = (parsed[k] for k in ("target", "method", "headers", "body", "auth"))
    credentials = auth if auth is not None else (
        (target.username, target.password or "") if target.username is not None else None)
    step = url_step(target, method, headers, body, credentials, keepalive=not o.disable_keepalive)
    step = replace(step, follow_redirects=o.follow or 0)      # 0: like wrk (and the fast path)
    load = LoadModel(users=url_users(o, profile), profile=profile, duration_ns=_url_duration_ns(o, profile),
                     requests=o.requests, pipeline=o.pipeline, pipeline_timing=o.pipeline_timing,
                     schedule_grid_ns=o.schedule_grid_ns, keepalive=not o.disable_keepalive)
    source = UrlSource(method=method, headers=headers, body_bytes=len(body),
                       auth_user=credentials[0] if credentials is not None else None)
    return Built(Workload(source=source, target=target, scenarios=(Scenario("default", 1.0, (step,)),),
                          load=load, timeout_ns=o.timeout_ns, workers=_workers(o),
                          secrets=option_secrets(headers, credentials, (target.path,))), ())


def option_secrets(headers, credentials, paths=()):
    """-H values of secret headers, a Basic password (--auth or the URL's) and the
    values of secret-named query parameters of `paths` (?token=...), as Secrets."""
    from surge.plan.redact import Secrets, is_secret_header, query_secrets
    secrets = Secrets(value for name, value in headers if is_secret_header(name))
    for path in paths:
        for value in query_secrets(path):
            secrets.add(value)
    for name, value in headers:         # 'Bearer TOKEN': the token alone too
        if is_secret_header(name):
            secrets.add(value.partition(" ")[2])
    if credentials is not None:
        secrets.add(credentials[1])
    return secrets


def _with_tls(target, o: RunOptions, url: str, problems: list[str]):
    """An https target with the TLS flags' options (their problems added);
    TLS flags with an http URL are a problem: they would do nothing."""
    if target.scheme != "https":
        flags = o.tls_flags_given
        if flags:
            problems.append(f"{', '.join(flags)}: TLS options apply to https:// URLs only, "
                            f"and {target.origin(target.path).url} is plain HTTP")
        return target
    tls = o.tls
    found = [f"{FLAG_NAMES[name]}: {message}" for name, message in tls.problems(FLAG_NAMES)]
    if not found:
        problem = context_problem(tls, target.host, FLAG_NAMES)
        found = [problem] if problem else []
    problems.extend(found)
    return replace(target, tls=tls)


def tls_flag_problems(o: RunOptions) -> list[str]:
    """The TLS flags' own problems (files, versions), before a plan is read
    (the defaults have none, so every problem is about a flag given)."""
    return [f"{FLAG_NAMES[name]}: {message}" for name, message in o.tls.problems(FLAG_NAMES)]


def keepalive_conflicts(o: RunOptions, headers) -> list[str]:
    """--disable-keepalive sends its own Connection header; and one request per
    connection cannot be pipelined."""
    problems = []
    if o.disable_keepalive:
        if any(name.lower() == "connection" for name, _ in headers):
            problems.append("-H Connection and --disable-keepalive both set the Connection header: give one")
        if o.pipeline > 1:
            problems.append("--pipeline and --disable-keepalive exclude each other: without keep-alive each "
                            "connection carries one request")
    return problems


def read_body(value: str | None) -> bytes:
    """--body TEXT, or @FILE read as bytes."""
    if value is None:
        return b""
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise PlanError(f"--body: cannot read {path!r}: {exc.strerror}") from None
    return value.encode("utf-8")


def credential_conflicts(target, auth, headers) -> list[str]:
    """One source of Authorization only: two would mean one is dropped silently."""
    from_url = target.username is not None
    if auth is not None and from_url:
        return ["--auth and credentials in the URL (user:password@) both set Basic auth: give one"]
    if (auth is not None or from_url) and any(n.lower() == "authorization" for n, _ in headers):
        source = "--auth" if auth is not None else "credentials in the URL"
        return [f"-H Authorization and {source} both set the Authorization header: give one"]
    return []


def url_users(o: RunOptions, profile) -> int:
    """The most connections at once, over all workers."""
    if profile is not None and profile.model == "open":
        return o.max_connections or default_max_connections(profile.peak)
    if profile is not None and profile.stages:
        return max(1, math.ceil(profile.peak))
    if o.requests is not None:       # -n: a connection per request at most
        return max(1, min(o.connections, o.requests))
    return o.connections


def _url_duration_ns(o: RunOptions, profile) -> int | None:
    if profile is not None and profile.duration_ns:
        return profile.duration_ns
    return None if o.requests else (o.duration_ns or DEFAULT_DURATION_NS)


# ---- surge run plan.yaml ----------------------------------------------------------------
def refused_options(path: str, o: RunOptions) -> list[str]:
    """URL-run options given with a plan: each says what the plan has instead."""
    return [f"{o.explicit[name]} does not apply to a test plan ({path}): {instead}"
            for name, instead in PLAN_INSTEAD.items() if o.given(name)]


def plan_workload(path: str, o: RunOptions, environ=None) -> Built:
    """A plan file, validated (every problem at once), as a workload."""
    from surge.plan.validate import check_file

    from surge.plan.auth import from_option

    refused = refused_options(path, o) + tls_flag_problems(o)
    headers = ()
    try:            # -H: default headers of every step (surge.plan.defaults)
        headers = tuple(parse_header(h) for h in o.headers)
    except PlanError as exc:
        refused.append(str(exc))
    refused += keepalive_conflicts(o, headers)
    try:
        credentials = parse_auth(o.auth)
    except PlanError as exc:
        refused.append(str(exc))
    if refused:      # the plan is not read: these are the answer
        return Built(None, tuple(Problem(p) for p in refused))
    overrides = {name: (os.path.abspath(value) if name in FILE_FIELDS + ("keylog",) else value)
                 for name, value in o.tls_given().items()}
    plan, problems = check_file(path, environ, tls_overrides=overrides, auth_override=from_option(credentials),
                                follow_override=o.follow, cli_headers=headers)
    if problems:
        return Built(None, tuple(Problem(p, in_plan_file=True) for p in problems))
    flags = o.tls_flags_given
    if flags and not any(host.scheme == "https" for host in (plan.target, *plan.hosts)):
        return Built(None, (Problem(f"{', '.join(flags)}: TLS options apply to https:// hosts only, "
                                    f"and every host of {path} is plain HTTP"),))
    if o.disable_keepalive:
        clash = [f"{scenario.name}.{step.name}" for scenario in plan.scenarios for step in scenario.steps
                 if any(name.lower() == "connection" for name, _ in step.headers)]
        if clash:
            return Built(None, (Problem(f"--disable-keepalive sends Connection: close, and step "
                                        f"{clash[0]} of {path} sets its own Connection header: drop one"),))
    workload = compile_plan(plan, workers=_workers(o), timeout_ns=o.timeout_ns,
                            schedule_grid_ns=o.schedule_grid_ns, keepalive=not o.disable_keepalive)
    secrets = option_secrets(headers, credentials)
    if plan.secrets is not None:
        secrets.update(plan.secrets)
    return Built(replace(workload, secrets=secrets), ())


def compile_plan(plan: Plan, workers: int = 1, timeout_ns: int = DEFAULT_TIMEOUT_NS,
                 schedule_grid_ns: int | None = None, keepalive: bool = True) -> Workload:
    """A validated plan as a workload (its users: `vus`, or `max_vus` in the open model).
    Without keep-alive every step also sends `Connection: close`."""
    profile = plan.load
    if profile.model == "open":
        users = plan.max_vus or default_max_vus(plan.scenarios, profile.peak)
    else:
        users = max(1, math.ceil(profile.peak))
    load = LoadModel(users=users, profile=profile, duration_ns=profile.duration_ns,
                     schedule_grid_ns=schedule_grid_ns, keepalive=keepalive)
    scenarios = plan.scenarios if keepalive else tuple(_closing(s) for s in plan.scenarios)
    return Workload(source=PlanSource(name=plan.name, path=plan.source), target=plan.target,
                    scenarios=scenarios, load=load, timeout_ns=timeout_ns, workers=workers,
                    data=plan.data, objectives=plan.objectives, cookies=plan.cookies)


def _closing(scenario: Scenario) -> Scenario:
    """The scenario with `Connection: close` on every step (--disable-keepalive)."""
    name, value = CONNECTION_CLOSE
    return replace(scenario, steps=tuple(replace(step, headers=step.headers + ((name, static_template(value)),))
                                         for step in scenario.steps))
