"""Malformed plans: each gives its exact one-line problems and exit 2, through
`surge validate` (the click command, and the real `python -m surge` once
`validate` is registered)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache

import pytest

from surge.cli import main as cli_main
from surge.plan.scenarios import STEP_KEYS
from surge.plan.validate import PlanValidationError, load_plan, validate_file

ENV_WITHOUT_TEST_VARS = {k: v for k, v in os.environ.items() if not k.startswith("SURGE_TEST_")}


@dataclass
class Case:
    id: str
    plan: str
    expected: list[str]          # "{dir}" stands for the plan's folder
    files: dict = field(default_factory=dict)
    name: str = "plan.yaml"


CASES = [
    Case('negative_weight',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    weight: -5
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:5 scenarios[0].weight: must be > 0, got -5']),
    Case('weight_not_a_number',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    weight: heavy
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:5 scenarios[0].weight: expected a number > 0, got 'heavy'"]),
    Case('unknown_key_did_you_mean',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    stepz:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 scenarios[0]: missing required key 'steps'",
          "plan.yaml:5 scenarios[0].stepz: unknown key, did you mean 'steps'?"]),
    Case('unknown_top_level_key',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenario:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:1: missing required key 'scenarios'",
          "plan.yaml:3 scenario: unknown key, did you mean 'scenarios'?"]),
    Case('unknown_key_no_close_match',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /, retries: 3}
""",
         [f'plan.yaml:6 scenarios[0].steps[0].retries: unknown key, allowed: {", ".join(STEP_KEYS)}']),
    Case('yaml_syntax_error',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s
scenarios: []
""",
         ["plan.yaml:3:10: invalid YAML: while parsing a flow mapping at line 2, expected ',' or '}', but got ':'"]),
    Case('yaml_bad_indentation',
         """\
target: http://127.0.0.1:8080
  load: closed
""",
         ['plan.yaml:2:7: invalid YAML: mapping values are not allowed here']),
    Case('document_is_a_list',
         """\
- target: http://127.0.0.1:8080
""",
         ['plan.yaml:1: expected a plan: a mapping with target, load and scenarios, got a list']),
    Case('empty_document',
         """\
# nothing yet
""",
         ['plan.yaml: the plan is empty; expected a mapping with target, load and scenarios']),
    Case('duplicate_key',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
load: {model: open, rate: 5, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:3 load: duplicate key (first at line 2)']),
    Case('ftp_target',
         """\
target: ftp://example.com
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:1 target: scheme 'ftp' is not supported, allowed: http, https"]),
    Case('target_not_a_url',
         """\
target: example.com
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:1 target: got 'example.com', expected an absolute URL like http://127.0.0.1:8080/"]),
    Case('unknown_model',
         """\
target: http://127.0.0.1:8080
load: {model: opne, rate: 5, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:2 load.model: got 'opne', allowed: open, closed, did you mean 'open'?"]),
    Case('constant_load_without_duration',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:2 load: missing 'duration': a constant load needs one, like 30s (or give stages)"]),
    Case('bad_stage_values',
         """\
target: http://127.0.0.1:8080
load:
  model: open
  stages:
    - {duration: 10s, target: 100}
    - {duration: ten, target: -1}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:6 load.stages[1].duration: got 'ten', expected a duration like 500ms, 10s, 2m, 1h or 1m30s",
          'plan.yaml:6 load.stages[1].target: must be >= 0, got -1']),
    Case('stages_last_zero',
         """\
target: http://127.0.0.1:8080
load:
  model: open
  stages:
    - {duration: 0s, target: 100}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:4 load.stages: the stages last 0s in total; give at least one a duration']),
    Case('fractional_vus',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2.5, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:2 load.vus: expected a whole number >= 1, got 2.5']),
    Case('open_model_given_vus',
         """\
target: http://127.0.0.1:8080
load: {model: open, vus: 10, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:2 load.vus: the open model takes rate (iterations started per second), not vus',
          "plan.yaml:2 load: missing 'rate': give rate and duration, or stages"]),
    Case('duplicate_scenario_names',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:7 scenarios[1].name: duplicate scenario name 'flow' (also scenarios[0])"]),
    Case('duplicate_step_names',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
      - {name: home, request: GET /about}
""",
         ["plan.yaml:7 scenarios[0].steps[1].name: duplicate step name 'home' in this scenario (also steps[0])"]),
    Case('unknown_variable_did_you_mean',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - name: login
        request: POST /login
        extract: {token: {json: $.token}}
      - name: home
        request: GET /
        headers: {Authorization: "Bearer ${tokn}"}
""",
         ['plan.yaml:11 scenarios[0].steps[1].headers.Authorization: unknown variable ${tokn}, did you mean ${token}?']),
    Case('unknown_variable',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: "GET /?q=${query}"}
""",
         ['plan.yaml:6 scenarios[0].steps[0].request: unknown variable ${query}: not extracted by an earlier step of this scenario, not a data source column (${SOURCE.COLUMN}), not a builtin (${uuid}, ${iteration}, ${user}, ${timestamp}, ${random.int(A,B)}, ${random.string(N)}, ${random.choice(a,b)}, ${random.word}, ${env.NAME})']),
    Case('variable_extracted_later',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: "GET /?t=${token}"}
      - {name: login, request: POST /login, extract: {token: {header: X-Token}}}
""",
         ['plan.yaml:6 scenarios[0].steps[0].request: ${token} is extracted by a later step (steps[1]); a step can use only variables extracted by earlier steps']),
    Case('variable_from_another_scenario',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: auth
    steps:
      - {name: login, request: POST /login, extract: {token: {header: X-Token}}}
  - name: browse
    steps:
      - {name: home, request: GET /, headers: {Authorization: "Bearer ${token}"}}
""",
         ['plan.yaml:9 scenarios[1].steps[0].headers.Authorization: ${token} is extracted in scenarios[0], not in this scenario']),
    Case('unknown_data_source',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: "GET /?u=${usres.name}"}
""",
         ["plan.yaml:8 scenarios[0].steps[0].request: unknown data source 'usres' in ${usres.name}, did you mean 'users'?"],
         files={'users.csv': 'name,password\nann,secret\n'}),
    Case('missing_data_column',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: "GET /?u=${users.email}"}
""",
         ["plan.yaml:8 scenarios[0].steps[0].request: ${users.email}: data source 'users' has no column 'email'; its columns: name, password"],
         files={'users.csv': 'name,password\nann,secret\n'}),
    Case('data_file_missing',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: nowhere.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 data.users.file: cannot read 'nowhere.csv' ({dir}/nowhere.csv): No such file or directory"]),
    Case('data_file_empty',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 data.users.file: 'users.csv' is empty; a csv data file needs a header row and rows"],
         files={'users.csv': ''}),
    Case('csv_without_header',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 data.users.file: 'users.csv' has no header row (the first row starts ('1', 'ann')); the first row must name the columns, like name,password"],
         files={'users.csv': '1,ann\n2,bob\n'}),
    Case('csv_ragged_row',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.csv}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 data.users.file: 'users.csv' line 3 has 1 field, the header has 2"],
         files={'users.csv': 'name,password\nann,secret\nbob\n'}),
    Case('jsonl_not_objects',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.jsonl}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:4 data.users.file: \'users.jsonl\' line 2 is not a JSON object; each line must be one object like {"name": "ann"}'],
         files={'users.jsonl': '{"name": "ann"}\n[1, 2]\n'}),
    Case('data_unknown_extension',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
data:
  users: {file: users.txt, order: randm}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 data.users.order: got 'randm', allowed: sequential, random, unique, did you mean 'random'?",
          "plan.yaml:4 data.users.file: cannot tell the format of 'users.txt' from its extension; give format: csv or jsonl"],
         files={'users.txt': 'name\nann\n'}),
    Case('bad_regex',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - name: home
        request: GET /
        expect: {body_matches: "welcome (back"}
""",
         ["plan.yaml:8 scenarios[0].steps[0].expect.body_matches: bad regular expression 'welcome (back': missing ), unterminated subpattern at position 8"]),
    Case('bad_json_path',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - name: home
        request: GET /
        extract: {id: {json: "$.items[first].id"}}
""",
         ["plan.yaml:8 scenarios[0].steps[0].extract.id.json: bad JSON path: got '$.items[first].id', at character 8 expected .name, [N] or ['name']"]),
    Case('extractor_with_two_kinds',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - name: home
        request: GET /
        extract: {id: {json: $.id, header: X-Id}}
""",
         ['plan.yaml:8 scenarios[0].steps[0].extract.id: give exactly one of json, regex, header or cookie; got json and header']),
    Case('regex_group_out_of_range',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - name: home
        request: GET /
        extract: {id: {regex: "id=(\\\\d+)", group: 2}}
""",
         ['plan.yaml:8 scenarios[0].steps[0].extract.id.group: got 2, the pattern has only 1 group']),
    Case('extract_into_builtin_name',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /, extract: {uuid: {header: X-Id}}}
""",
         ["plan.yaml:6 scenarios[0].steps[0].extract.uuid: 'uuid' is a builtin name; pick another variable name"]),
    Case('bad_think',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /, think: 1s...3s}
      - {name: about, request: GET /about, think: 3s..1s}
""",
         ["plan.yaml:6 scenarios[0].steps[0].think: got '1s...3s', expected a duration (1s), a range (1s..3s) or exp(2s)",
          "plan.yaml:7 scenarios[0].steps[1].think: got '3s..1s', the low end must not exceed the high end"]),
    Case('bad_status',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /, expect: {status: 2xy}}
      - {name: about, request: GET /about, expect: {status: [200, 999]}}
""",
         ["plan.yaml:6 scenarios[0].steps[0].expect.status: got '2xy', allowed: a code 100..599, a class like 2xx, or a list of them",
          'plan.yaml:7 scenarios[0].steps[1].expect.status: got 999, allowed: a code 100..599, a class like 2xx, or a list of them']),
    Case('request_without_path',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET}
      - {name: about, request: GET about}
""",
         ['plan.yaml:6 scenarios[0].steps[0].request: got \'GET\', expected "METHOD PATH" like "GET /items/1" or "POST /login"',
          "plan.yaml:7 scenarios[0].steps[1].request: the path must start with /, be an absolute URL like http://host:port/path, or name a host like api:/path, got 'about'"]),
    Case('json_and_body',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: POST /, json: {a: 1}, body: "a=1"}
""",
         ['plan.yaml:6 scenarios[0].steps[0].body: give json or body, not both']),
    Case('content_length_header',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: POST /, body: hi, headers: {Content-Length: 2}}
""",
         ['plan.yaml:6 scenarios[0].steps[0].headers.Content-Length: surge computes Content-Length from the body; remove it']),
    Case('template_errors',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: "GET /items/${random.int(9,1)}", headers: {X-A: "${uuid", X-B: "${random.float}"}}
""",
         ['plan.yaml:6 scenarios[0].steps[0].request: ${random.int(9,1)}: A (9) must be <= B (1)',
          'plan.yaml:6 scenarios[0].steps[0].headers.X-A: unterminated ${ at character 1: close it with } or write $${ for a literal ${',
          'plan.yaml:6 scenarios[0].steps[0].headers.X-B: ${random.float}: unknown generator, allowed: ${random.int(A,B)} with whole numbers A <= B (${random.int(A,B,pad=N)}: zero-padded to N digits), ${random.string(N)}, ${random.choice(a,b,...)}, ${random.word}']),
    Case('missing_env_variable',
         """\
target: ${env.SURGE_TEST_UNSET_TARGET}
load: {model: closed, vus: 2, duration: 1s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ['plan.yaml:1 target: environment variable SURGE_TEST_UNSET_TARGET is not set; set it or give a default: ${env.SURGE_TEST_UNSET_TARGET:-VALUE}']),
    Case('objective_does_not_parse',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
objectives:
  - p95 2s
  - latency < 2s
  - p95 < 2
  - error_rate < 150%
  - throughput >= fast
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 objectives[0]: 'p95 2s': expected METRIC[{scenario=NAME,step=NAME}] OP VALUE like 'p95 < 2s'",
          "plan.yaml:5 objectives[1]: 'latency < 2s': unknown metric 'latency', allowed: p50..p99.99 (any pNN.N), max, min, mean, error_rate, check_rate, throughput, dropped, requests",
          "plan.yaml:6 objectives[2]: 'p95 < 2': p95 needs a duration like 500ms or 2s, got '2'",
          "plan.yaml:7 objectives[3]: 'error_rate < 150%': error_rate is between 0% and 100%, got '150%'",
          "plan.yaml:8 objectives[4]: 'throughput >= fast': throughput needs requests per second like 500/s or 2k/s, got 'fast'"]),
    Case('objective_unknown_step_and_scenario',
         """\
target: http://127.0.0.1:8080
load: {model: closed, vus: 2, duration: 1s}
objectives:
  - p99{step=hom} < 500ms
  - p99{scenario=flw} < 1s
  - p99{scenario=flow,step=about} < 1s
  - {threshold: p95 < 1s, grace: 10s}
scenarios:
  - name: flow
    steps:
      - {name: home, request: GET /}
""",
         ["plan.yaml:4 objectives[0]: 'p99{step=hom} < 500ms': no step named 'hom', did you mean 'home'?",
          "plan.yaml:5 objectives[1]: 'p99{scenario=flw} < 1s': no scenario named 'flw', did you mean 'flow'?",
          "plan.yaml:6 objectives[2]: 'p99{scenario=flow,step=about} < 1s': no step named 'about' in scenario 'flow'",
          'plan.yaml:7 objectives[3].grace: applies only with abort_on_fail: true']),
    Case('many_problems_at_once',
         """\
name: shop
target: http://127.0.0.1:8080
load:
  model: open
  rate: 0
  duration: 10s
scenarios:
  - name: flow
    weight: 0
    steps:
      - name: login
        request: POST /login
        json: {user: "${users.name}"}
        extract: {token: {json: token}}
""",
         ['plan.yaml:5 load.rate: must be > 0, got 0',
          'plan.yaml:9 scenarios[0].weight: must be > 0, got 0',
          "plan.yaml:13 scenarios[0].steps[0].json.user: unknown data source 'users' in ${users.name} (not defined under data:)",
          "plan.yaml:14 scenarios[0].steps[0].extract.token.json: bad JSON path: got 'token', a JSON path starts with $ like $.token or $.items[0].id"]),
    Case('toml_syntax_error',
         """\
target = "http://127.0.0.1:8080"
[load]
model = closed
""",
         ["plan.toml:3:9: invalid TOML: Invalid value"],
         name="plan.toml"),
    Case('toml_problems_with_lines',
         """\
target = "http://127.0.0.1:8080"

[load]
model = "closed"
vus = 2
duration = "1s"

[[scenarios]]
name = "flow"
weight = -5

[[scenarios.steps]]
name = "home"
request = "GET /"
thinkk = "1s"
""",
         ["plan.toml:10 scenarios[0].weight: must be > 0, got -5",
          "plan.toml:15 scenarios[0].steps[0].thinkk: unknown key, did you mean 'think'?"],
         name="plan.toml"),
]


def write_case(case: Case, folder) -> list[str]:
    """Write the plan and its data files into folder; the expected problems for it."""
    (folder / case.name).write_text(case.plan)
    for name, text in case.files.items():
        (folder / name).write_text(text)
    return [line.replace("{dir}", str(folder)) for line in case.expected]


def run_validate(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`surge validate ARGS` through the real entry point (exit-code mapping
    included), with `validate` registered for the test as it is in the CLI."""
    monkeypatch.setitem(cli_main.LazyGroup.COMMANDS, "validate", "surge.cli.validate_cmd:validate_command")
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["validate", *args])
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_there_are_at_least_30_malformed_plans():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_plan_exact_problems_exit_2(case, tmp_path, monkeypatch, capsys):
    expected = write_case(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SURGE_TEST_UNSET_TARGET", raising=False)
    code, out, err = run_validate(monkeypatch, capsys, case.name)
    assert (code, out) == (2, "")
    assert err.splitlines() == expected
    with pytest.raises(PlanValidationError) as raised:
        load_plan(case.name)
    assert raised.value.problems == expected


@lru_cache(maxsize=None)
def validate_is_registered() -> bool:
    probe = subprocess.run([sys.executable, "-m", "surge", "validate", "--help"], capture_output=True, text=True)
    return probe.returncode == 0


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_plan_real_command(case, tmp_path):
    if not validate_is_registered():
        pytest.skip("`surge validate` is not registered in surge.cli.main yet")
    expected = write_case(case, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "surge", "validate", case.name], cwd=tmp_path,
                          capture_output=True, text=True, env=ENV_WITHOUT_TEST_VARS, timeout=60)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == expected
    assert "Traceback" not in proc.stderr


def test_missing_plan_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_validate(monkeypatch, capsys, "absent.yaml")
    assert (code, out, err) == (2, "", "absent.yaml: cannot read the plan: No such file or directory\n")


def test_not_utf8(tmp_path):
    (tmp_path / "plan.yaml").write_bytes(b"target: http://127.0.0.1:8080\nname: \xff\n")
    assert validate_file(str(tmp_path / "plan.yaml")) == [f"{tmp_path / 'plan.yaml'}:2: not UTF-8 text (byte 0xff)"]


def test_regex_the_engine_cannot_run_is_a_plan_error(tmp_path):
    """Python accepts these; the engine's POSIX regular expressions do not."""
    from surge.plan.validate import validate_file

    path = tmp_path / "plan.yaml"
    path.write_text("""target: http://127.0.0.1:8080
load: {model: closed, vus: 1, duration: 1s}
scenarios:
  - name: s
    steps:
      - name: a
        request: GET /
        expect: {body_matches: "(?=x)y"}
        extract: {t: {regex: "a(.*?)b", group: 1}}
""")
    problems = validate_file(str(path))
    assert any("scenarios[0].steps[0].expect.body_matches: regular expression '(?=x)y' uses (?...) groups" in p
               for p in problems), problems
    assert any("lazy quantifier" in p and "extract.t.regex" in p for p in problems), problems
