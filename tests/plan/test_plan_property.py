"""Property: whatever the file holds, loading a plan either gives a Plan or
raises PlanValidationError whose problems are single lines naming the file;
never anything else (no traceback can reach a user)."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from surge.plan.plan import Plan  # noqa: E402
from surge.plan.validate import SCHEMA_KEYS, PlanValidationError, load_plan  # noqa: E402

FOLDER = Path(tempfile.mkdtemp(prefix="surge-plan-property-"))
(FOLDER / "users.csv").write_text("name,password\nann,secret\n")
(FOLDER / "rows.jsonl").write_text('{"id": 1}\n')

# Values that mean something somewhere in a plan, so random documents reach deep checks.
MEANINGFUL = [
    "http://127.0.0.1:8080", "https://x", "open", "closed", "10s", "0s", "1s..3s", "exp(2s)", "3s..1s",
    "GET /", "POST /login", "GET http://127.0.0.1:9/x", "GET /${users.name}", "GET /?q=${random.word}",
    "${token}", "${env.HOME}", "${env.NOPE:-x}", "${random.int(5,1)}", "${", "$${x}", "${users.nope}",
    "p95 < 2s", "p99{step=login} < 500ms", "error_rate < 1%", "throughput >= 500/s", "dropped == 0",
    "p99{scenario=nope} < 1s", "2xx", "$.token", "$['a'][0]", "$.a[x]", "token=(\\w+)", "a(b",
    "users.csv", "rows.jsonl", "missing.csv", "sequential", "random", "unique", "stop", "recycle",
    "csv", "jsonl", "login", "X-Token", "Content-Length", "",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(MEANINGFUL),
    st.text(max_size=20), st.dates())
keys = st.one_of(st.sampled_from(SCHEMA_KEYS), st.sampled_from(["users", "token", "Authorization"]),
                 st.text(max_size=12))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)),
    max_leaves=40)
plans = st.dictionaries(st.sampled_from(SCHEMA_KEYS) | st.text(max_size=8), documents, max_size=7)

VALID = {
    "name": "shop",
    "target": "http://127.0.0.1:8080",
    "objectives": ["p95 < 2s", "p99{step=login} < 500ms",
                   {"threshold": "error_rate < 1%", "abort_on_fail": True, "grace": "5s"}],
    "load": {"model": "open", "stages": [{"duration": "10s", "target": 100}, {"duration": "0s", "target": 5}]},
    "data": {"users": {"file": "users.csv", "order": "unique"}},
    "scenarios": [
        {"name": "auth", "weight": 3, "steps": [
            {"name": "login", "request": "POST /login", "json": {"user": "${users.name}", "n": [1, None]},
             "expect": {"status": [200, "2xx"], "body_contains": "token", "body_matches": "t(o)k",
                        "max_latency": "1s"},
             "extract": {"token": {"regex": "token=(\\w+)", "group": 1}}},
            {"name": "home", "request": "GET http://127.0.0.1:9000/x?t=${token}",
             "headers": {"Authorization": "Bearer ${token}"}, "think": "1s..3s", "body": "${uuid}"}]},
        {"name": "browse", "steps": [{"name": "item", "request": "GET /items/${random.int(1,9)}",
                                      "extract": {"id": {"json": "$.items[0]['id']"}}, "think": "exp(1s)"}]},
    ],
}


def paths_of(value, prefix=()):
    """Every path into a nested value (the root included)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from paths_of(item, prefix + (n,))


VALID_PATHS = list(paths_of(VALID))[1:]


def replaced(document, path, value):
    document = copy.deepcopy(document)
    holder = document
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value
    return document


def check(path: Path) -> None:
    try:
        plan = load_plan(str(path), environ={"HOME": "/home/x"})
    except PlanValidationError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem, str) and "\n" not in problem and problem.startswith(str(path))
    else:
        assert isinstance(plan, Plan)


def write_yaml(document) -> Path:
    path = FOLDER / "plan.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_valid_plan_is_valid():
    check(write_yaml(VALID))
    assert isinstance(load_plan(str(write_yaml(VALID)), environ={}), Plan)


@SETTINGS
@given(documents)
def test_random_yaml_documents(document):
    check(write_yaml(document))


@SETTINGS
@given(plans)
def test_random_plan_shaped_documents(document):
    check(write_yaml(document))


@SETTINGS
@given(st.sampled_from(VALID_PATHS), documents)
def test_valid_plan_with_one_field_replaced(path, value):
    check(write_yaml(replaced(VALID, path, value)))


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    for name in ("plan.yaml", "plan.toml"):
        path = FOLDER / name
        path.write_bytes(data)
        check(path)


@SETTINGS
@given(st.lists(st.sampled_from(list("[]{}:-,'\"#&*!|>%@`\n\t ab1.=$") + ["${", "\n  ", "target", "load"]),
                max_size=60).map("".join))
def test_random_yaml_like_text(text):
    for name in ("plan.yaml", "plan.toml"):
        path = FOLDER / name
        path.write_text(text)
        check(path)
