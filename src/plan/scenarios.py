"""Validating `scenarios:` and their steps: names, requests, headers, bodies
and the templates in them (checks, extractions and think: step_checks.py)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from surge.plan import auth as plan_auth
from surge.plan import template as tpl
from surge.plan.checker import Checker, is_number, show
from surge.plan.cookies import CookiePolicy, StepCookies, check_step_cookies, cookie_extract_problem
from surge.plan.defaults import NO_DEFAULTS, Defaults
from surge.plan.hosts import NAMED_REQUEST, HostTable, named_request
from surge.plan.model import Target
from surge.plan.plan import Expect, Scenario, Step
from surge.plan.request import PlanError, parse_target
from surge.plan.step_checks import TOKEN, check_expect, check_extract, check_think
from surge.plan.template import Template, TemplateError, parse_template, static_template
from surge.plan.errors import closest

SCENARIO_KEYS = ("name", "weight", "steps")
STEP_KEYS = ("name", "request", "headers", "json", "body", "expect", "extract", "think", "follow_redirects", "auth",
             "cookies", "timeout")

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
NAME_HELP = "letters, digits, _ . and - (no spaces)"
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Names:
    """What the plan's other sections tell the scenarios: the base URL and the data sources."""
    target: Target | None                      # None when the target itself was invalid
    data: dict                                 # source name -> its columns (None: file unreadable)
    multiline: set = field(default_factory=set)  # (source, column) with a value holding CR or LF
    hosts: HostTable | None = None             # named hosts and the TLS options of https ones
    cookies: CookiePolicy | None = None        # the plan's cookies: (None: it did not validate)
    follow_redirects: int = 10                 # the plan's follow_redirects: (a step may say its own)
    auth: plan_auth.AuthSpec | None = None     # the plan's auth (--auth over auth: / the target's user:password@)
    defaults: Defaults = NO_DEFAULTS           # the plan's defaults: (and -H), applied to every step


def check_scenarios(checker: Checker, value, names: Names) -> tuple[tuple[Scenario, ...] | None, dict | None]:
    """The scenarios (None if any problem) and {scenario name: {step names}} for
    the objectives (None when there is no list of scenarios to look in)."""
    path = ("scenarios",)
    items = checker.sequence(path, value, "a list of scenarios")
    if items is None:
        return None, None
    extracted = [_extracted_by_steps(item) for item in items]
    scenarios, step_names, first_seen = [], {}, {}
    for n, item in enumerate(items):
        scenario = _ScenarioChecker(checker, path + (n,), names, extracted, n).check(item)
        scenarios.append(scenario)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in first_seen:
                checker.problem(path + (n, "name"), f"duplicate scenario name {name!r} "
                                                    f"(also scenarios[{first_seen[name]}])")
            else:
                first_seen[name] = n
                step_names[name] = _step_names(item)
    if any(s is None for s in scenarios):
        return None, step_names
    return tuple(scenarios), step_names


def _step_names(scenario: dict) -> set:
    steps = scenario.get("steps")
    if not isinstance(steps, list):
        return set()
    return {s["name"] for s in steps if isinstance(s, dict) and isinstance(s.get("name"), str)}


def _extracted_by_steps(scenario) -> list[set]:
    """For each step of a raw scenario, the variable names it extracts."""
    steps = scenario.get("steps") if isinstance(scenario, dict) else None
    if not isinstance(steps, list):
        return []
    found = []
    for step in steps:
        extract = step.get("extract") if isinstance(step, dict) else None
        found.append({key for key in extract} if isinstance(extract, dict) else set())
    return found


class _ScenarioChecker:
    def __init__(self, checker: Checker, path, names: Names, extracted: list[list[set]], index: int):
        self.checker, self.path, self.names = checker, path, names
        self.extracted, self.index = extracted, index

    def check(self, item) -> Scenario | None:
        c = self.checker
        scenario = c.mapping(self.path, item, "a scenario (name, weight, steps)")
        if scenario is None:
            return None
        c.keys(self.path, scenario, SCENARIO_KEYS, required=("name", "steps"))
        before = c.count
        name = check_name(c, self.path + ("name",), scenario["name"]) if "name" in scenario else None
        weight = 1.0
        if "weight" in scenario:
            weight = c.number(self.path + ("weight",), scenario["weight"], minimum=0, inclusive=False)
        steps = self.steps(scenario["steps"]) if "steps" in scenario else None
        if c.count > before or steps is None:
            return None
        return Scenario(name, weight, steps)

    def steps(self, value) -> tuple[Step, ...] | None:
        c = self.checker
        path = self.path + ("steps",)
        items = c.sequence(path, value, "a list of steps")
        if items is None:
            return None
        steps, first_seen = [], {}
        for n, item in enumerate(items):
            steps.append(self.step(path + (n,), n, item))
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                if name in first_seen:
                    c.problem(path + (n, "name"), f"duplicate step name {name!r} in this scenario "
                                                  f"(also steps[{first_seen[name]}])")
                    steps.append(None)
                first_seen.setdefault(name, n)
        return None if any(s is None for s in steps) else tuple(steps)

    def step(self, path, n: int, item) -> Step | None:
        c = self.checker
        step = c.mapping(path, item, "a step (name, request, ...)")
        if step is None:
            return None
        c.keys(path, step, STEP_KEYS, required=("name", "request"))
        before = c.count
        available = set().union(*self.extracted[self.index][:n])
        templates = _TemplateChecker(c, self, n, available)
        name = check_name(c, path + ("name",), step["name"]) if "name" in step else None
        request = _request(c, path + ("request",), step["request"], templates, self.names) \
            if "request" in step else None
        headers = _headers(c, path + ("headers",), step.get("headers", {}), templates)
        body = json_value = None
        if "json" in step and "body" in step:
            c.problem(path + ("body",), "give json or body, not both")
        elif "json" in step:
            json_value = step["json"]
            body = _json_body(c, path + ("json",), json_value, templates)
            if headers is not None and not any(k.lower() == "content-type" for k, _ in headers) \
                    and "content-type" not in self.names.defaults.header_names:
                headers += (("Content-Type", static_template("application/json")),)
        elif "body" in step:
            text = c.string(path + ("body",), step["body"], "the request body as a string (or use json:)")
            body = templates.parse(path + ("body",), text, tpl.RAW) if text is not None else None
        expect = check_expect(c, path + ("expect",), step["expect"]) if "expect" in step else Expect()
        extract = check_extract(c, path + ("extract",), step["extract"]) if "extract" in step else ()
        think = check_think(c, path + ("think",), step["think"]) if "think" in step else None
        cookies = self.cookies(path, step, templates, headers, extract)
        follow = self.names.follow_redirects
        if "follow_redirects" in step:
            follow = plan_auth.check_follow(c, path + ("follow_redirects",), step["follow_redirects"])
        own_auth = plan_auth.check_auth(c, path + ("auth",), step["auth"]) if "auth" in step else None
        timeout_ns = c.duration_ns(path + ("timeout",), step["timeout"]) if "timeout" in step else None
        if c.count > before or request is None or cookies is None:
            return None
        method, host, request_path, text = request
        inherited = plan_auth.effective(self.names.hosts.auth_of(host) if self.names.hosts else None,
                                        self.names.auth) if self.names.hosts else self.names.auth
        if headers is not None:
            headers = plan_auth.step_headers(c, path, own_auth, inherited, headers, templates)
        if c.count > before or headers is None:
            return None
        built = Step(name=name, method=method, host=host, path=request_path, headers=headers, body=body,
                     expect=expect, extract=extract, think=think, json=json_value, request_text=text,
                     follow_redirects=follow, cookies=cookies, timeout_ns=timeout_ns)
        return self.names.defaults.apply(built, step)

    def cookies(self, path, step: dict, templates, headers, extract) -> StepCookies | None:
        """The step's cookies: (surge.plan.cookies), and whether its extract may read the jar."""
        c, plan = self.checker, self.names.cookies
        cookies = StepCookies()
        if "cookies" in step:
            cookies = check_step_cookies(
                c, path + ("cookies",), step["cookies"],
                lambda where, text: templates.parse(where, text, tpl.RAW, header=True), plan, headers)
        for item in extract or ():
            problem = cookie_extract_problem(plan, cookies) if item.kind == "cookie" else None
            if problem:
                c.problem(path + ("extract", item.var, "cookie"), problem)
                return None
        return cookies

    def extracted_where(self, var: str, step_index: int) -> str | None:
        """Why var is not available before step_index, if it is extracted elsewhere."""
        steps = self.extracted[self.index]
        if step_index < len(steps) and var in steps[step_index]:
            return "is extracted by this same step; a step can use only variables extracted by earlier steps"
        for later in range(step_index + 1, len(steps)):
            if var in steps[later]:
                return (f"is extracted by a later step (steps[{later}]); a step can use only variables "
                        f"extracted by earlier steps")
        for other, steps in enumerate(self.extracted):
            if other != self.index and any(var in s for s in steps):
                return f"is extracted in scenarios[{other}], not in this scenario"
        return None


class _TemplateChecker:
    """Parses a step's templates, resolves ${env...}, and checks that every
    other slot names something that exists where the step runs."""

    def __init__(self, checker: Checker, scenario: _ScenarioChecker, step_index: int, available: set):
        self.checker, self.scenario, self.step_index, self.available = checker, scenario, step_index, available

    def parse(self, path, text: str, escape: str, header: bool = False) -> Template | None:
        c = self.checker
        try:
            template = parse_template(text, escape).resolve_env(c.environ)
        except TemplateError as exc:
            for problem in exc.problems:
                c.problem(path, problem)
            return None
        ok = True
        for slot in template.slots:
            message = self.slot_problem(slot, header)
            if message:
                c.problem(path, message)
                ok = False
        return template if ok else None

    def slot_problem(self, slot: tpl.Slot, header: bool = False) -> str | None:
        data = self.scenario.names.data
        if slot.kind == tpl.DATA:
            if slot.name not in data:
                close = _close(slot.name, list(data))
                hint = f", did you mean {close[0]!r}?" if close else " (not defined under data:)"
                return f"unknown data source {slot.name!r} in {slot.text}{hint}"
            columns = data[slot.name]
            if columns is not None and slot.column not in columns:
                close = _close(slot.column, list(columns))
                hint = f", did you mean {close[0]!r}?" if close else f"; its columns: {', '.join(columns)}"
                return f"{slot.text}: data source {slot.name!r} has no column {slot.column!r}{hint}"
            if header and (slot.name, slot.column) in self.scenario.names.multiline:
                return (f"{slot.text}: a value of column {slot.column!r} holds a line break, "
                        f"which cannot go into a header")
            return None
        if slot.kind != tpl.VAR or slot.name in self.available:
            return None
        if slot.name in data:
            return f"{slot.text} names a data source; pick a column like ${{{slot.name}.COLUMN}}"
        where = self.scenario.extracted_where(slot.name, self.step_index)
        if where:
            return f"{slot.text} {where}"
        known = sorted(self.available) + [f"{name}.{col}" for name, cols in data.items() for col in cols or ()]
        close = _close(slot.name, known)
        if close:
            return f"unknown variable {slot.text}, did you mean ${{{close[0]}}}?"
        return (f"unknown variable {slot.text}: not extracted by an earlier step of this scenario, not a "
                f"data source column (${{SOURCE.COLUMN}}), not a builtin ({tpl.BUILTINS_HELP})")


def _close(word: str, candidates: list[str]) -> list[str]:
    close = closest(word, candidates)
    return [close] if close else []


def check_name(checker: Checker, path, value) -> str | None:
    name = checker.string(path, value, f"a name ({NAME_HELP})")
    if name is None:
        return None
    if not NAME.match(name):
        checker.problem(path, f"got {show(name)}, a name is {NAME_HELP}")
        return None
    return name


def _request(c: Checker, path, value, templates: _TemplateChecker, names: Names):
    """'POST /login' -> (method, host, path template, text) or None.  The host:
    the target's for a path, an absolute URL's, or a named host's ("auth:/login")."""
    target = names.target
    text = c.string(path, value, 'a request like "GET /items/1"')
    if text is None:
        return None
    method, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if not method or not rest:
        c.problem(path, f'got {show(text)}, expected "METHOD PATH" like "GET /items/1" or "POST /login"')
        return None
    if not TOKEN.match(method):
        c.problem(path, f"method {method!r} is not an HTTP method token like GET or POST")
        return None
    template = templates.parse(path, rest, tpl.URL)
    if template is None:
        return None
    if any(isinstance(part, str) and any(ch.isspace() for ch in part) for part in template.parts):
        c.problem(path, f"got {show(text)}, the path cannot contain spaces (write %20)")
        return None
    first = template.parts[0] if template.parts else ""
    named = named_request(first, names.hosts) if isinstance(first, str) else None
    if named is not None:
        base = names.hosts.named[named[0]]
        host = base.origin()
        start = base.path.split("?")[0].rstrip("/") + named[1]
    elif isinstance(first, str) and _ABSOLUTE.match(first):
        scheme_end = first.index("://") + 3
        slash = first.find("/", scheme_end)
        if slash < 0 and len(template.parts) > 1:
            c.problem(path, "the host of an absolute URL cannot hold templates (except ${env.NAME})")
            return None
        base, start = (first, "/") if slash < 0 else (first[:slash], first[slash:])
        try:
            host = parse_target(base)
        except PlanError as exc:
            c.problem(path, str(exc).removeprefix("URL: "))
            return None
        host = host.origin() if names.hosts is None else names.hosts.resolve(host.origin())
    elif isinstance(first, str) and first.startswith("/"):
        if target is None:
            return None
        host = target.origin()
        start = target.path.split("?")[0].rstrip("/") + first
    else:
        hint = ""
        match = NAMED_REQUEST.match(first) if isinstance(first, str) else None
        if match is not None:
            known = ", ".join(names.hosts.named) if names.hosts and names.hosts.named else "none"
            hint = f" ({match.group(1)!r} is not a host under hosts:, which has: {known})"
        c.problem(path, f"the path must start with /, be an absolute URL like http://host:port/path, or name a "
                        f"host like api:/path, got {show(rest)}{hint}")
        return None
    parts = tpl.merge_literals([start, *template.parts[1:]])
    return method.upper(), host, Template(parts, rest), f"{method.upper()} {''.join(_written(template))}"


def _written(template: Template):
    for part in template.parts:
        yield part if isinstance(part, str) else part.text


def _headers(c: Checker, path, value, templates: _TemplateChecker):
    headers = c.mapping(path, value, "a mapping of header names to values")
    if headers is None:
        return None
    result, ok = [], True
    for name, raw in headers.items():
        where = path + (name,)
        if not TOKEN.match(name):
            c.problem(where, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
            ok = False
            continue
        if name.lower() == "content-length":
            c.problem(where, "surge computes Content-Length from the body; remove it")
            ok = False
            continue
        if is_number(raw):
            raw = str(raw)
        text = c.string(where, raw, "a header value (text)")
        if text is None:
            ok = False
            continue
        template = templates.parse(where, text, tpl.RAW, header=True)
        if template is None:
            ok = False
            continue
        if any(isinstance(part, str) and ("\r" in part or "\n" in part) for part in template.parts):
            c.problem(where, "contains a line break")
            ok = False
            continue
        result.append((name, template))
    return tuple(result) if ok else None


def _json_body(c: Checker, path, value, templates: _TemplateChecker) -> Template | None:
    before = c.count
    converted = _json_value(c, path, value, templates)
    if c.count > before:
        return None
    return tpl.json_template(converted, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _json_value(c: Checker, path, value, templates: _TemplateChecker):
    if isinstance(value, str):
        return templates.parse(path, value, tpl.JSON)
    if isinstance(value, dict):
        return {templates.parse(path + (key,), key, tpl.JSON): _json_value(c, path + (key,), item, templates)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(c, path + (n,), item, templates) for n, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and value == value
                                                             and abs(value) != float("inf")):
        return value
    c.problem(path, f"not a JSON value: got {show(value)}")
    return None
