"""Reading plan files: line numbers (YAML exact, TOML approximate), what
YAML allows but a plan cannot hold, and data files."""
from __future__ import annotations

import pytest

from surge.plan.loader import format_path, read_document
from surge.plan.validate import PLAN_KEYS, load_plan, validate_file

HEAD = "target: http://127.0.0.1:8080\nload: {model: closed, vus: 1, duration: 1s}\n"
ONE_SCENARIO = "scenarios:\n  - name: s\n    steps:\n      - {name: a, request: GET /}\n"


def write(tmp_path, text, name="plan.yaml", **files):
    for file_name, content in files.items():
        (tmp_path / file_name.replace("_", ".")).write_text(content)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems(tmp_path, text, name="plan.yaml", **files):
    path = write(tmp_path, text, name, **files)
    return [p.replace(path, name) for p in validate_file(path, environ={})]


def test_format_path():
    assert format_path(("scenarios", 1, "weight")) == "scenarios[1].weight"
    assert format_path(("scenarios", 0, "steps", 2, "headers", "X-Id")) == "scenarios[0].steps[2].headers.X-Id"
    assert format_path(("data", "my file", 0)) == "data['my file'][0]"
    assert format_path(()) == ""


def test_yaml_lines_of_keys_and_items(tmp_path):
    document, problems_found = read_document(write(tmp_path, HEAD + ONE_SCENARIO))
    assert problems_found == [] and document.problems == []
    assert document.lines[("target",)] == 1
    assert document.lines[("scenarios", 0)] == 4
    assert document.lines[("scenarios", 0, "steps", 0, "request")] == 6
    assert document.line_of(("scenarios", 0, "steps", 0, "request", "deeper")) == 6


def test_yaml_merge_keys(tmp_path):
    plan = load_plan(write(tmp_path, HEAD + """\
scenarios:
  - name: s
    steps:
      - name: a
        request: GET /
        headers: &auth {Authorization: Bearer x, X-A: "1"}
      - name: b
        request: GET /b
        headers:
          <<: *auth
          X-A: "2"
"""), environ={})
    b = plan.steps[1]
    assert [(k, v.literal) for k, v in b.headers] == [("Authorization", "Bearer x"), ("X-A", "2")]


def test_yaml_things_a_plan_cannot_hold(tmp_path):
    assert problems(tmp_path, HEAD + "name: !custom x\n[a]: 1\n" + ONE_SCENARIO) == [
        "plan.yaml:3 name: cannot read the value 'x': could not determine a constructor for the tag '!custom'",
        "plan.yaml:4: a key must be plain text, got a list"]
    assert problems(tmp_path, "a: &x [*x]\n" + HEAD + ONE_SCENARIO) == [
        "plan.yaml:1 a[0]: a recursive alias (a value that contains itself)",
        f"plan.yaml:1 a: unknown key, allowed: {', '.join(PLAN_KEYS)}"]


def test_alias_bomb_is_bounded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    found = problems(tmp_path, "\n".join(lines) + "\n")
    assert "the document expands to more than 1000000 values (aliases?)" in found[0]


def test_deep_nesting(tmp_path):
    found = problems(tmp_path, "a: " + "[" * 80 + "]" * 80 + "\n")
    assert found[0] == "plan.yaml:1 a" + "[0]" * 64 + ": nested more than 64 levels deep"
    found = problems(tmp_path, "[" * 5000 + "]" * 5000)
    assert len(found) == 1 and found[0].startswith("plan.yaml")


def test_yaml_booleans_and_dates_are_named(tmp_path):
    assert problems(tmp_path, HEAD + "name: 2024-01-01\n" + ONE_SCENARIO.replace("name: s", "name: yes")) == [
        "plan.yaml:3 name: expected the plan's name, got a date/time (2024-01-01)",
        "plan.yaml:5 scenarios[0].name: expected a name (letters, digits, _ . and - (no spaces)), got true"]


def test_toml_lines_are_found_by_scanning(tmp_path):
    text = """\
target = "http://127.0.0.1:8080"
load = {model = "closed", vus = 1, duration = "1s"}

[data.users]
file = "users.csv"
ordr = "random"

[[scenarios]]
name = "s"
steps = [
  {name = "a", request = "GET /", think = "soon"},
]

[[scenarios]]
name = "t"

[[scenarios.steps]]
name = "b"
request = "GET"
"""
    assert problems(tmp_path, text, "plan.toml", users_csv="name\nann\n") == [
        "plan.toml:6 data.users.ordr: unknown key, did you mean 'order'?",
        "plan.toml:10 scenarios[0].steps[0].think: got 'soon', expected a duration (1s), a range (1s..3s) or exp(2s)",
        "plan.toml:19 scenarios[1].steps[0].request: got 'GET', expected \"METHOD PATH\" like \"GET /items/1\" "
        "or \"POST /login\""]


def test_toml_multiline_strings_do_not_confuse_the_scanner(tmp_path):
    text = '''\
target = "http://127.0.0.1:8080"
load = {model = "closed", vus = 1, duration = "1s"}
name = """
[[scenarios]]
weight = 3
"""

[[scenarios]]
name = "s"
weight = "x"
steps = [{name = "a", request = "GET /"}]
'''
    assert problems(tmp_path, text, "plan.toml") == ["plan.toml:10 scenarios[0].weight: expected a number > 0, got 'x'"]


def test_toml_not_a_mapping_cannot_happen_but_dates_can(tmp_path):
    text = 'target = 1979-05-27\nload = {vus = 1, duration = "1s"}\n[[scenarios]]\nname = "s"\n' \
           'steps = [{name = "a", request = "GET /"}]\n'
    assert problems(tmp_path, text, "plan.toml") == [
        "plan.toml:1 target: expected a base URL like http://127.0.0.1:8080, got a date/time (1979-05-27)"]


@pytest.mark.parametrize("data_text, expected", [
    ("\ufeffname,password\r\nann,\"se,cret\"\r\n\r\nbob,x\r\n", None),
    ("name,name\nann,bob\n", "'users.csv' header row: column 'name' appears twice"),
    ("name,\nann,x\n", "'users.csv' header row: column 2 has no name; the first row must name the columns"),
    ("name,password\n", "'users.csv' has a header row but no data rows"),
    ("\n\n  \n", "'users.csv' is empty; a csv data file needs a header row and rows"),
    ("name,password\nann,\"unterminated\n", None),
])
def test_csv_files(tmp_path, data_text, expected):
    found = problems(tmp_path, HEAD + "data:\n  users: {file: users.csv}\n" + ONE_SCENARIO, users_csv=data_text)
    assert found == ([] if expected is None else [f"plan.yaml:4 data.users.file: {expected}"])


def test_csv_rows_and_jsonl_values(tmp_path):
    (tmp_path / "users.csv").write_text("\ufeffname,password\r\nann,\"se,cret\"\r\n\r\nbob,x\r\n")
    (tmp_path / "items.jsonl").write_text('{"id": 1, "tags": ["a"], "name": "x"}\n\n{"id": 2, "tags": null, '
                                          '"name": "y", "extra": true}\n')
    plan = load_plan(write(tmp_path, HEAD + "data:\n  users: {file: users.csv}\n  items: {file: items.jsonl, "
                                            "order: random, on_exhausted: stop}\n" + ONE_SCENARIO), environ={})
    users, items = plan.data
    assert users.rows == (("ann", "se,cret"), ("bob", "x"))
    assert (items.columns, items.rows) == (("id", "tags", "name"), (("1", '["a"]', "x"), ("2", "null", "y")))
    assert (items.order, items.on_exhausted, users.order, users.on_exhausted) == ("random", "stop", "sequential",
                                                                                  "recycle")


@pytest.mark.parametrize("data_text, expected", [
    ('{"id": 1}\n{"id": 2\n', "'items.jsonl' line 2 is not JSON: Expecting ',' delimiter"),
    ('{"id": 1}\n{"name": 2}\n', "'items.jsonl' line 2 has no 'id'; every line needs the first line's keys (id)"),
    ("{}\n", "'items.jsonl' line 1 is an empty object; the first object names the columns"),
])
def test_bad_jsonl_files(tmp_path, data_text, expected):
    found = problems(tmp_path, HEAD + "data:\n  items: {file: items.jsonl}\n" + ONE_SCENARIO, items_jsonl=data_text)
    assert found == [f"plan.yaml:4 data.items.file: {expected}"]


def test_data_file_that_is_a_directory_and_explicit_format(tmp_path):
    (tmp_path / "rows.csv").mkdir()
    (tmp_path / "rows.txt").write_text("a\n1x\n")
    assert problems(tmp_path, HEAD + "data:\n  d: {file: rows.csv}\n  e: {file: rows.txt, format: csv}\n"
                    + ONE_SCENARIO) == ["plan.yaml:4 data.d.file: 'rows.csv' is not a regular file"]


def test_a_data_value_with_a_line_break_cannot_go_into_a_header(tmp_path):
    (tmp_path / "users.csv").write_text('name\n"two\nlines"\n')
    text = HEAD + "data:\n  users: {file: users.csv}\n" + """\
scenarios:
  - name: s
    steps:
      - {name: a, request: "GET /${users.name}", headers: {X-User: "${users.name}"}}
"""
    assert problems(tmp_path, text) == [
        "plan.yaml:8 scenarios[0].steps[0].headers.X-User: ${users.name}: a value of column 'name' holds a "
        "line break, which cannot go into a header"]


def test_env_values_checked_where_they_land(tmp_path):
    text = HEAD + """\
scenarios:
  - name: s
    steps:
      - {name: a, request: "GET /${env.P}", headers: {X-A: "${env.H}"}}
"""
    path = write(tmp_path, text)
    found = [p.replace(path, "plan.yaml") for p in validate_file(path, environ={"P": "a b", "H": "x\r\ny"})]
    assert found == ["plan.yaml:6 scenarios[0].steps[0].request: got 'GET /${env.P}', the path cannot contain "
                     "spaces (write %20)",
                     "plan.yaml:6 scenarios[0].steps[0].headers.X-A: contains a line break"]


def test_target_base_path_prefixes_relative_requests(tmp_path):
    text = "target: http://h:81/api/\nload: {vus: 1, duration: 1s}\n" + ONE_SCENARIO.replace("GET /", "'GET /x?y=1'")
    plan = load_plan(write(tmp_path, text), environ={})
    assert plan.model == "closed" and plan.steps[0].path.literal == "/api/x?y=1"
    assert plan.steps[0].host.authority == "h:81"


def test_every_problem_is_one_line(tmp_path):
    found = problems(tmp_path, HEAD + "name: x\n'a\nb': 1\n" + ONE_SCENARIO.replace("GET /", '"GET /${a\\nb}"'))
    assert found and all("\n" not in p for p in found)
