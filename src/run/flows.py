"""Compiling a workload into the engine's flow tables.

Every run hands the engine a FlowTables of its workload (surge.plan.workload):
a test plan's scenarios and steps, or a URL run's one literal step
(surge.plan.request.url_step).  The Python side builds it
once per worker before the start; from then on the engine renders requests,
checks responses and extracts values in C (src/core/flows.pxi), and takes its
fast path (the request pre-rendered once) when the tables are one static step.
Template parts become literal bytes or (kind, a, b, escape) slot tuples;
extraction paths, status sets and think times become plain numbers.  The codes
come from surge.core._limits, where the engine's C code reads them too.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from surge.core._limits import (ESCAPE_KIND, EXTRACT_KIND, ORDER_KIND, PART_KIND, STATUS_SLOT_COUNT,
                                THINK_KIND, TIMESTAMP_UNIT)
from surge.plan import template as tpl
from surge.plan.plan import Step
from surge.plan.request import USER_AGENT
from surge.plan.workload import Workload

BODY_METHODS = ("POST", "PUT", "PATCH")      # a Content-Length even when the body is empty


@dataclass(frozen=True)
class EngineStep:
    """One step as the engine reads it (Engine's constructor copies it into a C struct)."""
    host: int                   # index into FlowTables.hosts
    head: tuple                 # request line and headers (each line with its CRLF), no blank line:
                                # literal bytes and (kind, a, b, escape) slots
    body: tuple                 # the body's parts (empty: no body)
    send_length: bool           # Content-Length even for an empty body (a body given, or POST/PUT/PATCH)
    length_given: bool          # the user's headers carry Content-Length: the engine adds none
    head_request: bool          # HEAD: responses have no body
    status_ok: bytes | None = None          # STATUS_SLOT_COUNT flags; None: any status passes
    body_contains: bytes | None = None
    body_matches: bytes | None = None       # POSIX extended regex
    max_latency_us: int = 0                 # 0: no latency check
    extracts: tuple = ()                    # (var, EXTRACT_*, expression, group)
    think: tuple = (0, 0, 0)                # (THINK_*, a_ns, b_ns)
    timeout_ns: int = 0                     # the step's own request timeout (0: the run's)
    cookies_capture: bool = False           # Set-Cookie in its responses goes into the VU's jar
    set_cookies: tuple = ()                 # (name bytes, value parts): put into the jar before it is sent
    cookies_hops: bool = False              # its redirect hops send the jar's cookies (and keep theirs)
    follow: int = 0                         # redirects followed at most (src/core/redirect.pxi)

    @property
    def is_static(self) -> bool:
        """Every request of the step is the same bytes and nothing is read from
        its responses: the engine can pre-render it and pipeline it."""
        return (all(isinstance(part, bytes) for part in self.head + self.body)
                and self.status_ok is None and self.body_contains is None and self.body_matches is None
                and not self.max_latency_us and not self.extracts and self.think[0] == THINK_KIND["none"]
                and not self.timeout_ns and not self.follow)


class FlowTables:
    """Everything the engine needs to run the workload's flows, plus the names the
    result uses (step and scenario order matches the engine's counters).
    The engine reports per-step counters for every run; which sections the
    result shows is decided where the result is made (surge.run.merge)."""

    def __init__(self, plan: Workload):
        self._sources = {d.name: d for d in plan.data}
        self.hosts = list(plan.hosts)
        self.redirect_hosts = [redirect_host(host) for host in self.hosts]
        self.feeder_names = [d.name for d in plan.data]
        self.var_names: list[str] = []
        self.steps: list[EngineStep] = []
        self.step_names: list[tuple[str, str]] = []       # (scenario, step)
        self.scenarios: list[tuple[float, list[int], list[int]]] = []
        shares = plan.shares
        for scenario in plan.scenarios:
            ids, feeders = [], set()
            for step in scenario.steps:
                ids.append(len(self.steps))
                self.step_names.append((scenario.name, step.name))
                self.steps.append(self._step(step))
                feeders.update(self.feeder_names.index(source) for source, _ in
                               (c for t in step.templates for c in t.data_columns))
            self.scenarios.append((shares[scenario.name], ids, sorted(feeders)))
        # --targets --order round-robin: iterations take the scenarios in turn (the engine's rotation)
        self.rotate = plan.scenario_order == "rotate"
        self.requests_total = plan.load.requests
        self.cookie_hosts = cookie_hosts(self.hosts)
        self.cookies_reset_each_iteration = plan.cookies.reset == "iteration"
        if plan.cookies.enabled:
            self._use_cookies(plan)
        self.feeders = [([[value.encode("utf-8") for value in row] for row in d.rows],
                         ORDER_KIND[d.order], d.on_exhausted == "stop", _json_cells(d.rows)) for d in plan.data]

    @property
    def is_static(self) -> bool:
        """One scenario of one static step, no data: the engine's fast path."""
        return len(self.steps) == 1 and len(self.scenarios) == 1 and not self.feeders and self.steps[0].is_static

    def _use_cookies(self, plan: Workload) -> None:
        """The jar's part in each step: a PART_COOKIES part at the end of its
        head (send: the Cookie header; always: the request noted for its
        Set-Cookie) and the capture flag, only where a cookie can matter.
        With reset per iteration a step sends only after an earlier step of
        its scenario kept cookies (or when it sets its own), and keeps cookies
        only when a later step would send them or it extracts one: a scenario
        of one plain step stays on the engine's fast path."""
        sid = 0
        never = not self.cookies_reset_each_iteration
        for scenario in plan.scenarios:
            on = [step.cookies.enabled for step in scenario.steps]
            for k, step in enumerate(scenario.steps):
                if on[k]:
                    self.steps[sid] = self._cookie_step(self.steps[sid], sid, step, never or any(on[:k]),
                                                        never or any(on[k + 1:]))
                sid += 1

    def _cookie_step(self, engine_step: EngineStep, sid: int, step: Step, jar_may_hold: bool,
                     later_sends: bool) -> EngineStep:
        sets = tuple((name.encode(), _merge(self._parts(value, header=True))) for name, value in step.cookies.values)
        given = any(name.lower() == "cookie" for name, _ in step.headers)      # the user's header wins
        send = (jar_may_hold or bool(sets)) and not given
        hops = bool(engine_step.follow) and not given       # a redirect's Set-Cookie goes on to its hop
        capture = later_sends or hops or any(e.kind == "cookie" for e in step.extract)
        if not (send or capture or sets):
            return engine_step
        part = (PART_KIND["cookies"], sid, int(send), ESCAPE_KIND["raw"])
        return replace(engine_step, head=engine_step.head + (part,), cookies_capture=capture, set_cookies=sets,
                       cookies_hops=hops)

    def _var(self, name: str) -> int:
        if name not in self.var_names:
            self.var_names.append(name)
        return self.var_names.index(name)

    def _parts(self, template: tpl.Template | None, header: bool = False) -> list:
        parts = [part if isinstance(part, bytes) or not header else part[:3] + (ESCAPE_KIND["header"],) + part[4:]
                 for part in self._slot_parts(template)]
        return parts

    def _slot_parts(self, template: tpl.Template | None) -> list:
        parts = []
        if template is None:
            return parts
        for part, in_query in zip(template.parts, template.url_contexts()):
            if isinstance(part, str):
                parts.append(part.encode("utf-8"))
                continue
            if isinstance(part, bytes):     # a URL run's binary --body @FILE: sent as it is
                parts.append(part)
                continue
            escape = _escape_kind(part.escape, in_query)
            if part.kind == tpl.DATA:
                source = self._sources[part.name]
                parts.append((PART_KIND[tpl.DATA], self.feeder_names.index(part.name),
                              source.columns.index(part.column), escape))
            elif part.kind == tpl.VAR:
                parts.append((PART_KIND[tpl.VAR], self._var(part.name), 0, escape))
            elif part.kind == tpl.RANDOM_INT:
                parts.append((PART_KIND[tpl.RANDOM_INT], part.low, part.high, escape, part.width, None))
            elif part.kind == tpl.RANDOM_STRING:
                parts.append((PART_KIND[tpl.RANDOM_STRING], 0, 0, escape, part.width, None))
            elif part.kind == tpl.RANDOM_CHOICE:
                items = b"".join(item.encode("utf-8") + b"\0" for item in part.choices)
                parts.append((PART_KIND[tpl.RANDOM_CHOICE], len(part.choices), int(part.is_number), escape, 0, items))
            elif part.kind == tpl.TIMESTAMP:
                parts.append((PART_KIND[tpl.TIMESTAMP], TIMESTAMP_UNIT[part.unit], 0, escape))
            else:
                parts.append((PART_KIND[part.kind], 0, 0, escape))
        return parts

    def _step(self, step: Step) -> EngineStep:
        host = step.host
        header_names = {name.lower() for name, _ in step.headers}
        head = [f"{step.method} ".encode()] + self._parts(step.path) + [b" HTTP/1.1\r\n"]
        if "host" not in header_names:
            head.append(f"Host: {host.authority}\r\n".encode())
        if "user-agent" not in header_names:       # the default, unless the step sets its own
            head.append(f"User-Agent: {USER_AGENT}\r\n".encode())
        for name, value in step.headers:
            head.append(f"{name}: ".encode())
            head.extend(self._parts(value, header=True))
            head.append(b"\r\n")
        expect = step.expect
        status_ok = None
        if expect.status:
            flags = bytearray(STATUS_SLOT_COUNT)
            for code in expect.status:
                flags[code] = 1
            status_ok = bytes(flags)
        think = (THINK_KIND["none"], 0, 0)
        if step.think is not None:
            t = step.think
            think = {"constant": (THINK_KIND["constant"], t.min_ns, 0),
                     "uniform": (THINK_KIND["uniform"], t.min_ns, t.max_ns),
                     "exponential": (THINK_KIND["exponential"], t.mean_ns, 0)}[t.kind]
        extracts = []
        if step.extract or expect.body_matches is not None:
            # only here: the translation's module loads ctypes (~2 ms) for validation
            from surge.plan.regex import posix_regex
        for e in step.extract:
            if e.kind == "json":
                expr = tuple(part if isinstance(part, int) else part.encode("utf-8") for part in e.json_path)
            elif e.kind == "regex":
                expr = posix_regex(e.expression)
            else:
                expr = e.expression.encode("utf-8")
            extracts.append((self._var(e.var), EXTRACT_KIND[e.kind], expr, e.group))
        return EngineStep(
            host=self.hosts.index(host),
            head=_merge(head),
            body=_merge(self._parts(step.body)),
            send_length=step.body is not None or step.method in BODY_METHODS,
            length_given="content-length" in header_names,
            head_request=step.method == "HEAD",
            status_ok=status_ok,
            body_contains=expect.body_contains.encode("utf-8") if expect.body_contains is not None else None,
            body_matches=posix_regex(expect.body_matches) if expect.body_matches is not None else None,
            max_latency_us=expect.max_latency_us or 0,
            extracts=tuple(extracts),
            think=think,
            timeout_ns=step.timeout_ns or 0,
            follow=step.follow_redirects,
        )


def redirect_host(host) -> tuple[bool, bytes, int, bytes]:
    """(https, name, port, Host header value) of a host, as the engine matches a
    Location's authority against it: the name lower case, in its IDNA form,
    an IPv6 address without brackets."""
    name = host.host if host.host.isascii() else host.host.encode("idna").decode("ascii")
    return host.scheme == "https", name.lower().encode("ascii"), host.port, host.authority.encode("ascii")


def _json_cells(rows) -> bytes | None:
    """Per cell (row-major), 1 where a JSON-lines value is not a string (a typed
    json: field writes it bare); None when every cell is text (CSV, or strings only)."""
    from surge.plan.data import JsonText        # plans with data only (it loads csv)

    flags = bytes(isinstance(value, JsonText) for row in rows for value in row)
    return flags if any(flags) else None


def _escape_kind(escape: str, in_query: bool) -> int:
    """The engine's ESCAPE_* for a slot: a URL slot is a path segment, or a
    query value once a literal "?" came before it (src/core/escape.pxd)."""
    if escape == tpl.URL:
        return ESCAPE_KIND["query" if in_query else "path"]
    return ESCAPE_KIND[escape]


def _merge(parts: list) -> tuple:
    """Adjacent literal bytes joined: fewer parts to walk per request."""
    merged = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        else:
            merged.append(part)
    return tuple(merged)


def cookie_hosts(hosts) -> list:
    """Each host as the cookie jar sees it: (name, https, is_ip), the name in
    lower case and an IPv6 literal without brackets (RFC 6265 section 5.1.2)."""
    import ipaddress

    found = []
    for host in hosts:
        name = host.host.lower().strip("[]")
        try:
            ipaddress.ip_address(name)
            is_ip = True
        except ValueError:
            is_ip = False
        found.append((name.encode("idna") if not is_ip and not name.isascii() else name.encode(),
                      host.scheme == "https", is_ip))
    return found
