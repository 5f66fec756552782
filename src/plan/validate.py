"""Loading and validating a test plan: every problem at once, each one line
`FILE:LINE FIELD.PATH: what was found, what is allowed`.

    plan = load_plan("plan.yaml")          # Plan, or PlanValidationError(problems)
    problems = validate_file("plan.yaml")  # [] when the plan is valid
"""
from __future__ import annotations

import os
import re
from typing import Mapping

from surge.plan import auth as plan_auth
from surge.plan import template as tpl
from surge.plan.checker import Checker, show
from surge.plan.cookies import RESETS, CookiePolicy, check_plan_cookies
from surge.plan.data import FORMATS, DataFileError, format_for, read_data_file
from surge.plan.defaults import DEFAULT_KEYS, NO_DEFAULTS, check_defaults
from surge.plan.hosts import HOST_KEYS, TLS_KEYS, HostTable, base_url, check_contexts, check_hosts
from surge.plan.load import LoadProfile, Stage
from surge.plan.loader import read_document
from surge.plan.model import Target
from surge.plan.objective import ObjectiveError, parse_objective
from surge.plan.plan import DataSource, Objective, Plan
from surge.plan.scenarios import SCENARIO_KEYS, STEP_KEYS, Names, check_scenarios
from surge.plan.step_checks import EXPECT_KEYS, EXTRACT_KEYS
from surge.plan.errors import closest

PLAN_KEYS = ("name", "target", "tls", "hosts", "objectives", "load", "data", "defaults", "scenarios", "follow_redirects",
             "auth", "cookies")
LOAD_KEYS = ("model", "stages", "rate", "vus", "duration", "start", "max_vus")
STAGE_KEYS = ("duration", "target")
DATA_KEYS = ("file", "format", "order", "on_exhausted", "secret")
OBJECTIVE_KEYS = ("threshold", "abort_on_fail", "grace")
MODELS = ("open", "closed")
ORDERS = ("sequential", "random", "unique")
ON_EXHAUSTED = ("stop", "recycle")
# Every key the plan format knows, at any level (for tests that build random plans).
SCHEMA_KEYS = tuple(dict.fromkeys(PLAN_KEYS + LOAD_KEYS + STAGE_KEYS + DATA_KEYS + OBJECTIVE_KEYS + SCENARIO_KEYS + ("reset",)
                                  + STEP_KEYS + EXPECT_KEYS + EXTRACT_KEYS + HOST_KEYS + TLS_KEYS
                                  + DEFAULT_KEYS))
_SOURCE_NAME = re.compile(rf"^{tpl.NAME_PATTERN}\Z")


class PlanValidationError(ValueError):
    """A plan that cannot run: `problems` holds every one, one line each (exit 2)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_plan(path: str, environ: Mapping[str, str] | None = None) -> Plan:
    """Read, check and build the plan at path (YAML, or TOML for `.toml`).
    `${env.NAME}` is resolved from environ (default: os.environ).
    Raises PlanValidationError listing every problem."""
    plan, problems = check_file(path, environ)
    if problems:
        raise PlanValidationError(problems)
    return plan


def validate_file(path: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the plan at path, one line each ([] when it is valid)."""
    return check_file(path, environ)[1]


def check_file(path: str, environ: Mapping[str, str] | None = None,
               tls_overrides: dict | None = None, auth_override=None,
               follow_override: int | None = None,
               cli_headers: tuple[tuple[str, str], ...] = ()) -> tuple[Plan | None, list[str]]:
    """(the plan or None, its problems).  `tls_overrides`: TlsOptions fields
    from the command line, over the plan's top-level `tls:` (file paths absolute).
    `auth_override`: --auth's AuthSpec, over the plan's top-level auth;
    `follow_override`: --follow, over the plan's follow_redirects;
    `cli_headers`: -H (name, value) pairs, added to the plan's default headers."""
    document, problems = read_document(str(path))
    if document is None:
        return None, problems
    plan_dir = os.path.dirname(os.path.abspath(str(path)))
    checker = Checker(document, os.environ if environ is None else environ, plan_dir)
    plan = _PlanChecker(checker, str(path), tls_overrides, auth_override, follow_override,
                        cli_headers).check(document.value)
    problems = problems + checker.problems
    if plan is not None and not problems:
        from dataclasses import replace as _replace

        from surge.plan.redact import plan_secrets
        try:
            with open(str(path), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        plan = _replace(plan, secrets=plan_secrets(document.value, text, checker.environ, plan.data))
    return (None if problems else plan), problems


def _multiline_columns(sources) -> set:
    """(source, column) pairs with a value holding a line break (such a value cannot go into a header)."""
    found = set()
    for source in sources:
        if source is None:
            continue
        for n, column in enumerate(source.columns):
            if any("\r" in row[n] or "\n" in row[n] for row in source.rows):
                found.add((source.name, column))
    return found


class _PlanChecker:
    def __init__(self, checker: Checker, source: str, tls_overrides: dict | None = None, auth_override=None,
                 follow_override: int | None = None, cli_headers: tuple[tuple[str, str], ...] = ()):
        self.c = checker
        self.source = source
        self.tls_overrides = tls_overrides
        self.auth_override = auth_override
        self.follow_override = follow_override
        self.cli_headers = cli_headers
        self.target_auth = None             # the target's user:password@ (Basic auth of the plan)

    def check(self, value) -> Plan | None:
        c = self.c
        root = c.mapping((), value, "a plan: a mapping with target, load and scenarios")
        if root is None:
            return None
        c.keys((), root, PLAN_KEYS, required=("target", "load", "scenarios"))
        name = self.name(root.get("name"))
        hosts = check_hosts(c, root, self.tls_overrides)
        target = self.target(root["target"], hosts) if "target" in root else None
        data = self.data(root.get("data") or {})
        load = self.load(root["load"]) if "load" in root else None
        cookies = check_plan_cookies(c, ("cookies",), root["cookies"]) if "cookies" in root else CookiePolicy()
        columns = {source: columns for source, (columns, _) in data.items()}
        multiline = _multiline_columns(source for _, source in data.values())
        defaults = check_defaults(c, root.get("defaults"), columns, multiline, self.cli_headers)
        names = Names(target, columns, multiline, hosts, cookies, follow_redirects=self.follow(root),
                      auth=self.auth(root), defaults=defaults or NO_DEFAULTS)
        scenarios, step_names = check_scenarios(c, root["scenarios"], names) if "scenarios" in root else (None, None)
        objectives = self.objectives(root.get("objectives") or [], step_names)
        if c.count or None in (target, load, scenarios, objectives, cookies):
            return None
        profile, max_vus = load
        sources = tuple(source for _, source in data.values())
        plan = Plan(name=name, target=target, load=profile, scenarios=scenarios, data=sources,
                    objectives=objectives, max_vus=max_vus, cookies=cookies, source=self.source)
        self.tls_used(root, hosts, plan)
        return None if c.count else plan

    def tls_used(self, root: dict, hosts: HostTable, plan: Plan) -> None:
        """A top-level tls: needs an https host; each https host's options must
        be ones OpenSSL takes (checked last: it reads the certificate files)."""
        https = [host for host in (plan.target, *plan.hosts) if host.scheme == "https"]
        if "tls" in root and not https:
            self.c.problem(("tls",), "no https host in this plan: the target and every request are http://")
            return
        check_contexts(self.c, hosts, https)

    def name(self, value) -> str | None:
        if value is None:
            return os.path.splitext(os.path.basename(self.source))[0]
        name = self.c.string(("name",), value, "the plan's name")
        if name is not None and not name.strip():
            self.c.problem(("name",), "is empty")
        return name

    # ---- target ------------------------------------------------------------------

    def target(self, value, hosts: HostTable) -> Target | None:
        """The base URL, with the TLS options of its host when it is https."""
        target = base_url(self.c, ("target",), value)
        self.target_auth = plan_auth.from_credentials(target)
        return None if target is None else hosts.resolve(target)

    def follow(self, root: dict) -> int:
        """The plan's follow_redirects: --follow, else its own, else 10 (as browsers and k6 do)."""
        if "follow_redirects" in root:
            own = plan_auth.check_follow(self.c, ("follow_redirects",), root["follow_redirects"])
        if self.follow_override is not None:
            return self.follow_override
        if "follow_redirects" not in root:
            return 10
        return own or 0

    def auth(self, root: dict):
        """The plan-level auth: --auth, else auth:, else the target's user:password@."""
        own = plan_auth.check_auth(self.c, ("auth",), root["auth"]) if "auth" in root else None
        if own is not None and self.target_auth is not None:
            self.c.problem(("auth",), "the target's user:password@ and auth: both set the plan's auth: give one")
        return plan_auth.effective(self.auth_override, own, self.target_auth)

    # ---- data --------------------------------------------------------------------

    def data(self, value) -> dict:
        """{source name: (columns or None, DataSource or None)}."""
        c, path = self.c, ("data",)
        sources = c.mapping(path, value, "a mapping of data source names to {file, order, ...}")
        if sources is None:
            return {}
        found = {}
        for name, spec in sources.items():
            where = path + (name,)
            if not _SOURCE_NAME.match(name):
                c.problem(where, "a data source name is letters, digits and _ (not starting with a digit)")
                continue
            if name in tpl.BUILTIN_NAMES:
                c.problem(where, f"{name!r} is a builtin name; pick another data source name")
                continue
            found[name] = self.data_source(where, name, spec)
        return found

    def data_source(self, path, name: str, value) -> tuple[tuple[str, ...] | None, DataSource | None]:
        c = self.c
        spec = c.mapping(path, value, "{file: PATH, order: sequential|random|unique}")
        if spec is None:
            return None, None
        c.keys(path, spec, DATA_KEYS, required=("file",))
        before = c.count
        order = c.choice(path + ("order",), spec["order"], ORDERS) if "order" in spec else "sequential"
        default_exhausted = "stop" if order == "unique" else "recycle"
        on_exhausted = (c.choice(path + ("on_exhausted",), spec["on_exhausted"], ON_EXHAUSTED)
                        if "on_exhausted" in spec else default_exhausted)
        file = c.string(path + ("file",), spec["file"], "a file path") if "file" in spec else None
        if file is not None and not file.strip():
            c.problem(path + ("file",), "is empty; give the data file's path")
            file = None
        fmt = None
        if "format" in spec:
            fmt = c.choice(path + ("format",), spec["format"], FORMATS)
        elif file is not None:
            fmt = format_for(file)
            if fmt is None:
                c.problem(path + ("file",), f"cannot tell the format of {show(file)} from its extension; "
                                            f"give format: csv or jsonl")
        if file is None or fmt is None:
            return None, None
        full = os.path.join(self.c.plan_dir, os.path.expanduser(file))
        try:
            columns, rows = read_data_file(full, file, fmt)
        except DataFileError as exc:
            c.problem(path + ("file",), str(exc))
            return None, None
        secret = self.secret_columns(path + ("secret",), spec["secret"], columns) if "secret" in spec else ()
        if c.count > before:
            return columns, None
        return columns, DataSource(name, os.path.normpath(full), fmt, order, on_exhausted, columns, rows,
                                   secret_columns=secret)

    def secret_columns(self, path, value, columns) -> tuple[str, ...]:
        """`secret: true` (every column) or `secret: [COLUMN, ...]`: values never shown."""
        if value is True:
            return tuple(columns)
        if value is False:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.c.problem(path, f"expected true, false or a list of column names, got {show(value)}")
            return ()
        unknown = [v for v in value if v not in columns]
        if unknown:
            self.c.problem(path, f"no column {show(unknown[0])} in this data source; its columns: "
                                 f"{', '.join(columns)}")
            return ()
        return tuple(value)

    # ---- load --------------------------------------------------------------------

    def load(self, value) -> tuple[LoadProfile, int | None] | None:
        c, path = self.c, ("load",)
        load = c.mapping(path, value, "a mapping (model, stages or rate/vus and duration)")
        if load is None:
            return None
        c.keys(path, load, LOAD_KEYS)
        before = c.count
        model = self.model(load)
        if model is None:                 # still check the stages, the model aside
            if "stages" in load:
                self.stages(load["stages"], "open")
            return None
        other = "vus" if model == "open" else "rate"
        if other in load:
            takes = ("rate (iterations started per second)" if model == "open"
                     else "vus (virtual users)")
            c.problem(path + (other,), f"the {model} model takes {takes}, not {other}")
        if "max_vus" in load and model == "closed":
            c.problem(path + ("max_vus",), "applies only to the open model; the closed model has vus")
        max_vus = None
        if "max_vus" in load and model == "open":
            number = c.number(path + ("max_vus",), load["max_vus"], minimum=1, whole=True)
            max_vus = None if number is None else int(number)
        level = "rate" if model == "open" else "vus"
        if "stages" in load:
            for key in ("duration", level):
                if key in load:
                    hint = ("each stage has its own duration" if key == "duration"
                            else "use start: for the value before the first stage")
                    c.problem(path + (key,), f"not with stages; {hint}")
            start = 0.0
            if "start" in load:
                start = c.number(path + ("start",), load["start"], minimum=0, whole=model == "closed")
            stages = self.stages(load["stages"], model)
            if c.count > before or stages is None or start is None:
                return None
            return LoadProfile(model, start, stages), max_vus
        if "start" in load:
            c.problem(path + ("start",), "applies only with stages")
        if level not in load:
            c.problem(path, f"missing {level!r}: give {level} and duration, or stages")
            amount = None
        else:
            amount = c.number(path + (level,), load[level], minimum=0 if model == "open" else 1,
                              inclusive=model == "closed", whole=model == "closed")
        if "duration" not in load:
            c.problem(path, "missing 'duration': a constant load needs one, like 30s (or give stages)")
            duration = None
        else:
            duration = c.duration_ns(path + ("duration",), load["duration"])
        if c.count > before or amount is None or duration is None:
            return None
        return LoadProfile(model, amount, (), duration), max_vus

    def model(self, load: dict) -> str | None:
        c = self.c
        if "model" in load:
            return c.choice(("load", "model"), load["model"], MODELS)
        if "rate" in load and "vus" not in load:
            return "open"
        if "vus" in load and "rate" not in load:
            return "closed"
        c.problem(("load",), "missing 'model': give model: open (rate, iterations/s) or closed (vus)")
        return None

    def stages(self, value, model: str) -> tuple[Stage, ...] | None:
        c, path = self.c, ("load", "stages")
        items = c.sequence(path, value, "a list of {duration, target}")
        if items is None:
            return None
        before = c.count
        stages = []
        for n, item in enumerate(items):
            where = path + (n,)
            stage = c.mapping(where, item, "a stage {duration, target}")
            if stage is None:
                continue
            c.keys(where, stage, STAGE_KEYS, required=("duration", "target"))
            duration = c.duration_ns(where + ("duration",), stage["duration"], allow_zero=True) \
                if "duration" in stage else None
            target = c.number(where + ("target",), stage["target"], minimum=0, whole=model == "closed") \
                if "target" in stage else None
            if duration is not None and target is not None:
                stages.append(Stage(duration, target))
        if c.count > before:
            return None
        if sum(s.duration_ns for s in stages) == 0:
            c.problem(path, "the stages last 0s in total; give at least one a duration")
            return None
        return tuple(stages)

    # ---- objectives --------------------------------------------------------------

    def objectives(self, value, step_names: dict | None) -> tuple[Objective, ...] | None:
        c, path = self.c, ("objectives",)
        items = c.sequence(path, value, "a list of objectives like 'p95 < 2s'", allow_empty=True)
        if items is None:
            return None
        before = c.count
        found = []
        for n, item in enumerate(items):
            objective = self.objective(path + (n,), item)
            if objective is not None and self.filters_exist(path + (n,), objective, step_names):
                found.append(objective)
        return None if c.count > before else tuple(found)

    def objective(self, path, value) -> Objective | None:
        c = self.c
        abort, grace_ns, text_path = False, 0, path
        if isinstance(value, dict):
            c.keys(path, value, OBJECTIVE_KEYS, required=("threshold",))
            before = c.count
            if "abort_on_fail" in value:
                abort = c.boolean(path + ("abort_on_fail",), value["abort_on_fail"])
            if "grace" in value:
                grace_ns = c.duration_ns(path + ("grace",), value["grace"], allow_zero=True)
                if abort is False:
                    c.problem(path + ("grace",), "applies only with abort_on_fail: true")
            if "threshold" not in value or c.count > before:
                return None
            text_path, value = path + ("threshold",), value["threshold"]
        text = c.string(text_path, value, "an objective like 'p95 < 2s' or {threshold: ..., abort_on_fail: true}")
        if text is None:
            return None
        try:
            return parse_objective(text, abort, grace_ns)
        except ObjectiveError as exc:
            c.problem(text_path, f"{show(text)}: {exc}")
            return None

    def filters_exist(self, path, objective: Objective, step_names: dict | None) -> bool:
        """Whether the scenario and step an objective names exist (unknowable: assumed)."""
        if step_names is None:
            return True
        text = show(objective.text)
        scenario, step = objective.scenario, objective.step
        if scenario is not None and scenario not in step_names:
            close = closest(scenario, step_names)
            hint = f", did you mean {close!r}?" if close else ""
            self.c.problem(path, f"{text}: no scenario named {scenario!r}{hint}")
            return False
        if step is not None:
            steps = step_names[scenario] if scenario is not None else set().union(*step_names.values())
            if step not in steps:
                close = closest(step, sorted(steps))
                hint = f", did you mean {close!r}?" if close else ""
                where = f" in scenario {scenario!r}" if scenario is not None else ""
                self.c.problem(path, f"{text}: no step named {step!r}{where}{hint}")
                return False
        return True
