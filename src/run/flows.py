"""Compiling a validated test plan into the engine's flow tables.

The Python side does this once per worker before the start; from then on the
engine renders requests, checks responses and extracts values in C
(src/core/flows.pxi).  Template parts become literal bytes or
(kind, a, b, escape) slot tuples; extraction paths, status sets and think
times become plain numbers.
"""
from __future__ import annotations

from surge.plan import template as tpl
from surge.plan.plan import Plan, Step
from surge.plan.regex import posix_regex
from surge.plan.request import USER_AGENT

# Must match the DEF constants in src/core/flows.pxi.
PART = {tpl.DATA: 1, tpl.VAR: 2, tpl.RANDOM_INT: 3, tpl.RANDOM_WORD: 4, tpl.UUID: 5, tpl.ITERATION: 6, tpl.USER: 7}
ESCAPE = {tpl.RAW: 0, tpl.URL: 1, tpl.JSON: 2}
ESCAPE_HEADER = 3       # header values: line breaks dropped (no header injection from extracted values)
EXTRACT = {"json": 0, "regex": 1, "header": 2}
THINK = {"constant": 1, "uniform": 2, "exponential": 3}
ORDER = {"sequential": 0, "random": 1, "unique": 2}
BODY_METHODS = ("POST", "PUT", "PATCH")

class FlowTables:
    """Everything the engine needs to run the plan's flows, plus the names the
    result uses (step and scenario order matches the engine's counters)."""

    def __init__(self, plan: Plan):
        self._sources = {d.name: d for d in plan.data}
        self.hosts = list(plan.hosts)
        self.feeder_names = [d.name for d in plan.data]
        self.var_names: list[str] = []
        self.steps: list[dict] = []
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
        self.feeders = [([[value.encode("utf-8") for value in row] for row in d.rows],
                         ORDER[d.order], d.on_exhausted == "stop") for d in plan.data]

    def _var(self, name: str) -> int:
        if name not in self.var_names:
            self.var_names.append(name)
        return self.var_names.index(name)

    def _parts(self, template: tpl.Template | None, header: bool = False) -> list:
        parts = [part if isinstance(part, bytes) or not header else part[:3] + (ESCAPE_HEADER,)
                 for part in self._slot_parts(template)]
        return parts

    def _slot_parts(self, template: tpl.Template | None) -> list:
        parts = []
        for part in (template.parts if template is not None else ()):
            if isinstance(part, str):
                parts.append(part.encode("utf-8"))
            elif part.kind == tpl.DATA:
                source = self._sources[part.name]
                parts.append((PART[tpl.DATA], self.feeder_names.index(part.name), source.columns.index(part.column),
                              ESCAPE[part.escape]))
            elif part.kind == tpl.VAR:
                parts.append((PART[tpl.VAR], self._var(part.name), 0, ESCAPE[part.escape]))
            elif part.kind == tpl.RANDOM_INT:
                parts.append((PART[tpl.RANDOM_INT], part.low, part.high, ESCAPE[part.escape]))
            else:
                parts.append((PART[part.kind], 0, 0, ESCAPE[part.escape]))
        return parts

    def _step(self, step: Step) -> dict:
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
            flags = bytearray(600)
            for code in expect.status:
                flags[code] = 1
            status_ok = bytes(flags)
        think = (0, 0, 0)
        if step.think is not None:
            t = step.think
            think = {"constant": (1, t.min_ns, 0), "uniform": (2, t.min_ns, t.max_ns),
                     "exponential": (3, t.mean_ns, 0)}[t.kind]
        extracts = []
        for e in step.extract:
            if e.kind == "json":
                expr = [part if isinstance(part, int) else part.encode("utf-8") for part in e.json_path]
            elif e.kind == "regex":
                expr = posix_regex(e.expression)
            else:
                expr = e.expression.encode("utf-8")
            extracts.append((self._var(e.var), EXTRACT[e.kind], expr, e.group))
        return {
            "host": self.hosts.index(host),
            "head": _merge(head),
            "body": _merge(self._parts(step.body)),
            "send_length": step.body is not None or step.method in BODY_METHODS,
            "head_request": step.method == "HEAD",
            "status_ok": status_ok,
            "body_contains": expect.body_contains.encode("utf-8") if expect.body_contains is not None else None,
            "body_matches": posix_regex(expect.body_matches) if expect.body_matches is not None else None,
            "max_latency_us": expect.max_latency_us or 0,
            "extracts": extracts,
            "think": think,
        }


def _merge(parts: list) -> list:
    """Adjacent literal bytes joined: fewer parts to walk per request."""
    merged = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


