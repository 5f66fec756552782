"""The `${...}` template language, JSON paths and objectives, piece by piece."""
from __future__ import annotations

import json

import pytest

from surge.plan import template as tpl
from surge.plan.jsonpath import MISSING, JsonPathError, find, parse_json_path
from surge.plan.objective import ObjectiveError, parse_objective
from surge.plan.template import Slot, Template, TemplateError, json_template, parse_template


def test_literal_text_and_escapes():
    assert parse_template("plain").parts == ("plain",)
    assert parse_template("").parts == ()
    assert parse_template("cost: $5, $${x} stays").parts == ("cost: $5, ${x} stays",)
    assert parse_template("$${").literal == "${"
    assert parse_template("a$$b").literal == "a$$b"


def test_every_slot_kind():
    template = parse_template("/u/${users.name}/${token}/${random.int(-5, 10)}/${random.word}/"
                              "${uuid}/${iteration}/${user}/${ items.first-name }", tpl.URL)
    kinds = [(s.kind, s.name, s.column, s.low, s.high) for s in template.slots]
    assert kinds == [(tpl.DATA, "users", "name", 0, 0), (tpl.VAR, "token", "", 0, 0),
                     (tpl.RANDOM_INT, "", "", -5, 10), (tpl.RANDOM_WORD, "", "", 0, 0),
                     (tpl.UUID, "", "", 0, 0), (tpl.ITERATION, "", "", 0, 0), (tpl.USER, "", "", 0, 0),
                     (tpl.DATA, "items", "first-name", 0, 0)]
    assert all(s.escape == tpl.URL for s in template.slots)
    assert template.variables == ("users.name", "token", "random.int", "random.word", "uuid", "iteration",
                                  "user", "items.first-name")
    assert template.data_columns == (("users", "name"), ("items", "first-name"))
    assert template.extracted_variables == ("token",)
    assert template.parts[0] == "/u/" and template.parts[2] == "/"


def test_variables_are_listed_once():
    assert parse_template("${a}${a}${b.c}${b.c}").variables == ("a", "b.c")


@pytest.mark.parametrize("text, message", [
    ("${", "unterminated ${ at character 1: close it with } or write $${ for a literal ${"),
    ("x ${a", "unterminated ${ at character 3: close it with } or write $${ for a literal ${"),
    ("${}", "${} is empty; expected a name like ${token} or ${users.name}"),
    ("${random.int(5,1)}", "${random.int(5,1)}: A (5) must be <= B (1)"),
    ("${random.int(a,b)}", "${random.int(a,b)}: unknown generator, allowed: ${random.int(A,B)} with whole "
                           "numbers A <= B (${random.int(A,B,pad=N)}: zero-padded to N digits), ${random.string(N)}, "
                           "${random.choice(a,b,...)}, ${random.word}"),
    ("${env.}", "${env.}: expected ${env.NAME} or ${env.NAME:-default} with NAME made of letters, digits and _"),
    ("${uuid()}", "${uuid()}: uuid is a builtin and takes nothing more; write ${uuid}"),
    ("${a b}", "${a b}: not a template expression; expected ${VARIABLE}, ${SOURCE.COLUMN} or a builtin "
               "(${uuid}, ${iteration}, ${user}, ${timestamp}, ${random.int(A,B)}, ${random.string(N)}, ${random.choice(a,b)}, ${random.word}, ${env.NAME})"),
    ("${a.b.c}", "${a.b.c}: not a template expression; expected ${VARIABLE}, ${SOURCE.COLUMN} or a builtin "
                 "(${uuid}, ${iteration}, ${user}, ${timestamp}, ${random.int(A,B)}, ${random.string(N)}, ${random.choice(a,b)}, ${random.word}, ${env.NAME})"),
])
def test_template_errors(text, message):
    with pytest.raises(TemplateError) as raised:
        parse_template(text)
    assert raised.value.problems == [message]


def test_every_bad_slot_is_reported():
    with pytest.raises(TemplateError) as raised:
        parse_template("${} and ${random.int(2,1)} and ${ok}")
    assert len(raised.value.problems) == 2


def test_env_resolution():
    template = parse_template("${env.HOST:-localhost}:${env.PORT}/${token}")
    assert template.variables == ("env.HOST", "env.PORT", "token")
    resolved = template.resolve_env({"PORT": "8080"})
    assert resolved.parts[0] == "localhost:8080/" and resolved.variables == ("token",)
    assert template.resolve_env({"HOST": "h", "PORT": "1"}).parts[0] == "h:1/"
    assert parse_template("${env.E:-}x").resolve_env({}).literal == "x"
    with pytest.raises(TemplateError) as raised:
        template.resolve_env({})
    assert raised.value.problems == [
        "environment variable PORT is not set; set it or give a default: ${env.PORT:-VALUE}"]


def test_env_value_in_json_is_escaped():
    resolved = parse_template('say ${env.WORDS}', tpl.JSON).resolve_env({"WORDS": 'a "quoted"\nline'})
    assert json.loads('"' + resolved.literal + '"') == 'say a "quoted"\nline'


def test_render_escapes_by_where_the_slot_lands():
    values = {"name": "ann smith/ü?&", "token": 'a"b'}

    def value_of(slot: Slot) -> str:
        return values[slot.column or slot.name]

    # RFC 3986 (src/core/escape.pxd): a path segment keeps sub-delimiters such as "&" but not "/" or "?";
    # a query value keeps "/" and "?" but not "&" or "=", which would split it.
    assert parse_template("/u/${users.name}", tpl.URL).render(value_of) == "/u/ann%20smith%2F%C3%BC%3F&"
    assert parse_template("/u?q=${users.name}", tpl.URL).render(value_of) == "/u?q=ann%20smith/%C3%BC?%26"
    assert parse_template("Bearer ${token}").render(value_of) == 'Bearer a"b'
    body = json_template({"user": parse_template("${users.name}", tpl.JSON), "n": [1, None, True],
                          parse_template("k${token}", tpl.JSON): 2.5})
    assert json.loads(body.render(value_of)) == {"user": "ann smith/ü?&", "n": [1, None, True], 'ka"b': 2.5}


def test_static_template_needs_no_slots():
    assert tpl.static_template("${x}").literal == "${x}"
    with pytest.raises(ValueError):
        parse_template("${x}").literal


@pytest.mark.parametrize("text, path", [
    ("$", ()),
    ("$.token", ("token",)),
    ("$.items[0].id", ("items", 0, "id")),
    ("$['a b'][\"c.d\"][-1]", ("a b", "c.d", -1)),
    ("$.data.user_id", ("data", "user_id")),
])
def test_json_paths(text, path):
    assert parse_json_path(text) == path


@pytest.mark.parametrize("text, message", [
    ("token", "got 'token', a JSON path starts with $ like $.token or $.items[0].id"),
    ("$.a[x]", "got '$.a[x]', at character 4 expected .name, [N] or ['name']"),
    ("$..a", "got '$..a', at character 2 expected .name, [N] or ['name']"),
    ("$.a[*]", "got '$.a[*]', at character 4 expected .name, [N] or ['name']"),
])
def test_bad_json_paths(text, message):
    with pytest.raises(JsonPathError) as raised:
        parse_json_path(text)
    assert str(raised.value) == message


def test_json_path_find():
    document = {"items": [{"id": 7}, {"id": 8}], "token": "t"}
    assert find(document, ("items", -1, "id")) == 8
    assert find(document, ()) is document
    assert find(document, ("items", 5)) is MISSING
    assert find(document, ("token", 0)) is MISSING


@pytest.mark.parametrize("text, metric, filters, op, value, unit", [
    ("p95 < 2s", "p95", (), "<", 2_000_000, "us"),
    ("p99.9{scenario=content_browsing} < 1s", "p99.9", (("scenario", "content_browsing"),), "<", 1_000_000, "us"),
    ("p99{step=login} < 500ms", "p99", (("step", "login"),), "<", 500_000, "us"),
    ("p50 { step = b , scenario = a } <= 1.5ms", "p50", (("scenario", "a"), ("step", "b")), "<=", 1_500, "us"),
    ("max < 3s", "max", (), "<", 3_000_000, "us"),
    ("mean < 100ms", "mean", (), "<", 100_000, "us"),
    ("min>=1us", "min", (), ">=", 1, "us"),
    ("error_rate < 1%", "error_rate", (), "<", 0.01, "fraction"),
    ("error_rate <= 0.05", "error_rate", (), "<=", 0.05, "fraction"),
    ("check_rate > 99%", "check_rate", (), ">", 0.99, "fraction"),
    ("throughput >= 500/s", "throughput", (), ">=", 500, "req/s"),
    ("throughput > 2k/s", "throughput", (), ">", 2000, "req/s"),
    ("throughput > 750", "throughput", (), ">", 750, "req/s"),
    ("dropped == 0", "dropped", (), "==", 0, "count"),
    ("requests >= 10k", "requests", (), ">=", 10_000, "count"),
])
def test_objectives(text, metric, filters, op, value, unit):
    objective = parse_objective(text)
    assert (objective.metric, objective.filters, objective.op, objective.unit) == (metric, filters, op, unit)
    assert objective.value == pytest.approx(value)
    assert objective.text == text.strip()


@pytest.mark.parametrize("text, message", [
    ("p95", "expected METRIC[{scenario=NAME,step=NAME}] OP VALUE like 'p95 < 2s'"),
    ("p95 <", "expected METRIC[{scenario=NAME,step=NAME}] OP VALUE like 'p95 < 2s'"),
    ("p95 = 2s", "unknown comparison '=', allowed: <, <=, >, >=, =="),
    ("p95 => 2s", "unknown comparison '=>', allowed: <, <=, >, >=, =="),
    ("p95 != 2s", "unknown comparison '!=', allowed: <, <=, >, >=, =="),
    ("p100 < 2s", "percentile 'p100' is out of range, allowed: p0.1 .. p99.999 (use max for the largest)"),
    ("p0 < 2s", "percentile 'p0' is out of range, allowed: p0.1 .. p99.999 (use max for the largest)"),
    ("mena < 2s", "unknown metric 'mena', did you mean 'mean'?"),
    ("p95{host=a} < 2s", "unknown filter 'host', allowed: scenario, step"),
    ("p95{step} < 2s", "filter 'step': expected {scenario=NAME}, {step=NAME} or {scenario=NAME,step=NAME}"),
    ("p95{step=a,step=b} < 2s", "filter 'step' is given twice"),
    ("p95 < 2", "p95 needs a duration like 500ms or 2s, got '2'"),
    ("error_rate < 1s", "error_rate needs a rate like 1% or 0.01, got '1s'"),
    ("check_rate > 1.5", "check_rate is between 0% and 100%, got '1.5'"),
    ("throughput > 5/m", "throughput needs requests per second like 500/s or 2k/s, got '5/m'"),
    ("dropped == 0.5", "dropped needs a whole number like 0 or 1000, got '0.5'"),
])
def test_bad_objectives(text, message):
    with pytest.raises(ObjectiveError) as raised:
        parse_objective(text)
    assert str(raised.value) == message


def test_objective_pass_and_fail():
    assert parse_objective("dropped == 0").passes(0)
    assert not parse_objective("check_rate > 99%").passes(0.99)
    assert parse_objective("throughput >= 500/s").passes(500)


def test_template_is_hashable_and_frozen():
    template = parse_template("a${b}")
    assert hash(template) == hash(parse_template("a${b}"))
    with pytest.raises(AttributeError):
        template.text = "x"
    assert isinstance(template, Template)
