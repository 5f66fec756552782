"""`surge run --targets FILE`: reading the file and the workload it compiles to (issue 12 item 8)."""
from __future__ import annotations

import pytest

from surge.plan.build import build_workload
from surge.plan.options import RunOptions
from surge.plan.targets import read_targets
from surge.run.flows import FlowTables
from tests.helpers import assert_one_line_error, run_surge


def targets_file(tmp_path, text: str) -> str:
    path = tmp_path / "urls.txt"
    path.write_text(text)
    return str(path)


def test_targets_with_headers_bodies_comments_and_bare_urls(tmp_path):
    (tmp_path / "login.json").write_bytes(b'{"user": "ann"}')
    path = targets_file(tmp_path, """\
# a comment
GET http://127.0.0.1:9/items/1
X-Trace: abc
  # indented comment

post http://127.0.0.1:9/login
Content-Type: application/json
@login.json
http://127.0.0.1:9/health
""")
    targets, problems = read_targets(path)
    assert problems == []
    assert [(t.method, t.target.path, t.headers, t.body, t.line) for t in targets] == [
        ("GET", "/items/1", (("X-Trace", "abc"),), b"", 2),
        ("POST", "/login", (("Content-Type", "application/json"),), b'{"user": "ann"}', 6),
        ("GET", "/health", (), b"", 9),
    ]


@pytest.mark.parametrize("text, line, fragment", [
    ("GET /relative\n", 1, "a target's URL is absolute, like GET http://127.0.0.1:8080/path"),
    ("X-A: 1\nGET http://127.0.0.1:9/\n", 1, "a header line before any target"),
    ("GET http://127.0.0.1:9/\n@\n", 2, "'@' without a file"),
    ("GET http://127.0.0.1:9/\n@missing.json\n", 2, "cannot read the body file 'missing.json'"),
    ("GET http://127.0.0.1:9/\n@b\nX-A: 1\n", 3, "a header line after the body line"),
    ("GET http://127.0.0.1:9/\n@b\n@b\n", 3, "a second body line"),
    ("GET http://127.0.0.1:9/\nContent-Length: 3\n", 2, "surge computes Content-Length"),
    ("G(T http://127.0.0.1:9/\n", 1, "got 'G(T', expected an HTTP method token like GET or POST"),
    ("GET ftp://127.0.0.1:9/\n", 1, "scheme 'ftp' is not supported, allowed: http, https"),
    ("GET http://127.0.0.1:9/\nwhat is this\n", 2, "expected a line 'METHOD URL' (or a URL alone)"),
])
def test_a_bad_line_is_named_by_file_and_line_with_what_is_allowed(tmp_path, text, line, fragment):
    (tmp_path / "b").write_bytes(b"x")
    path = targets_file(tmp_path, text)
    targets, problems = read_targets(path)
    assert targets == [] and len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: ") and fragment in problems[0], problems[0]


def test_an_empty_targets_file_is_a_problem(tmp_path):
    _, problems = read_targets(targets_file(tmp_path, "# nothing\n\n"))
    assert problems == [f"{tmp_path / 'urls.txt'}: no targets; expected a line 'METHOD URL' (or a URL alone), "
                        "then 'Name: value' header lines and one '@FILE' body line, a blank line between targets"]


def test_each_target_is_a_scenario_of_one_step_named_for_the_result(tmp_path):
    path = targets_file(tmp_path, "GET http://127.0.0.1:9/a\nPOST http://127.0.0.1:9/a\n\nGET http://127.0.0.1:9/a\n")
    workload = build_workload(None, RunOptions(targets=path, headers=("X-All: 1",))).workload
    assert [(s.name, s.weight, [st.name for st in s.steps]) for s in workload.scenarios] == [
        ("t1", 1.0, ["GET /a"]), ("t2", 1.0, ["POST /a"]), ("t3", 1.0, ["GET /a #2"])]
    assert workload.scenario_order == "rotate" and workload.source.reports_steps
    assert FlowTables(workload).rotate


def test_targets_on_several_hosts_are_named_by_their_whole_url(tmp_path):
    path = targets_file(tmp_path, "GET http://127.0.0.1:9/a\nGET http://localhost:9/a\n")
    workload = build_workload(None, RunOptions(targets=path, order="random")).workload
    assert [s.steps[0].name for s in workload.scenarios] == ["GET http://127.0.0.1:9/a", "GET http://localhost:9/a"]
    assert workload.scenario_order == "weighted" and not FlowTables(workload).rotate


def test_dash_h_goes_on_every_target_and_a_targets_own_header_wins(tmp_path):
    path = targets_file(tmp_path, "GET http://127.0.0.1:9/a\nx-team: own\n\nGET http://127.0.0.1:9/b\n")
    workload = build_workload(None, RunOptions(targets=path, headers=("X-Team: cli", "X-Run: 1"))).workload
    heads = [[(n, v.text) for n, v in s.steps[0].headers] for s in workload.scenarios]
    assert heads == [[("X-Run", "1"), ("x-team", "own")], [("X-Team", "cli"), ("X-Run", "1")]]


@pytest.mark.parametrize("args, fragment", [
    (["-m", "POST"], "-m/--method does not apply to --targets: each target line names its method"),
    (["--body", "x"], "--body does not apply to --targets: each target gives its own body"),
    (["--pipeline", "4"], "--pipeline does not apply to --targets"),
    (["http://127.0.0.1:9/"], "--targets and the argument 'http://127.0.0.1:9/' exclude each other"),
])
def test_options_that_clash_with_targets_exit_2_in_one_line(tmp_path, args, fragment):
    path = targets_file(tmp_path, "GET http://127.0.0.1:9/a\n")
    run = run_surge("run", "--targets", path, *args, "-q", json_result=False)
    assert_one_line_error(run, 2, fragment)


def test_order_without_targets_and_no_argument_at_all_exit_2(tmp_path):
    assert_one_line_error(run_surge("run", "http://127.0.0.1:9/", "--order", "random", json_result=False), 2,
                          "--order applies to --targets FILE only")
    assert_one_line_error(run_surge("run", json_result=False), 2,
                          "give a URL, a plan file (.yaml, .toml), or --targets FILE")


def test_a_bad_targets_file_exits_2_naming_file_and_line(tmp_path):
    path = targets_file(tmp_path, "GET http://127.0.0.1:9/a\n\nGET /b\n")
    run = run_surge("run", "--targets", path, "-q", json_result=False)
    assert_one_line_error(run, 2, f"{path}:3: got 'GET /b': a target's URL is absolute")
