"""Engine tables for tests that drive surge.core._engine.Engine directly: a
workload of literal steps (as `surge run URL` builds its one step), compiled
by the same FlowTables the worker uses."""
from __future__ import annotations

from surge.plan.plan import Scenario
from surge.plan.request import url_step
from surge.plan.workload import LoadModel, PlanSource, Workload
from surge.run.flows import FlowTables


def literal_tables(target, *requests: tuple[str, tuple, bytes]) -> FlowTables:
    """Tables of one scenario whose steps are these (method, headers, body)
    requests to `target`, each a literal URL-run step; they report per-step
    counters, as a plan's tables do."""
    steps = tuple(url_step(target, method, headers, body) for method, headers, body in requests)
    workload = Workload(source=PlanSource(name="test", path=""), target=target,
                        scenarios=(Scenario("s", 1.0, steps),), load=LoadModel(users=1))
    return FlowTables(workload)
