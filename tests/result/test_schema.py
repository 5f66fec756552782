"""The result file's schema (surge.result.schema via surge.result.load.check_result):
a value of the wrong type is one line naming the file and the JSON path, and no
corruption that passes the check makes a report or compare raise."""
import copy
import json
import math

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from surge.result.load import ResultFileError, check_result, load_result
from surge.run.merge import latency_summary
from tests.report.synthetic import add_connection_costs, make_result


def _plan_result() -> dict:
    """A result shaped like a plan run's: flow steps and scenarios with shares, failed counts."""
    from surge.core._histogram import Histogram

    result = make_result(4, model="open", seed=3)
    result["config"].update({"plan": "shop", "plan_file": "shop.yaml", "scenarios": {"browse": 3, "buy": 1}})
    for key in ("method", "headers", "body_bytes", "pipeline", "requests"):
        result["config"].pop(key, None)
    hist = Histogram()
    for value_us in (100, 200, 300, 4000):
        hist.record(value_us)
    failed = {"count": 2, "by_reason": {"status 500": 1, "timeout": 1}}
    result["totals"]["failed"], result["totals"]["error_rate"] = failed, 0.001
    result["steps"] = [{"scenario": "browse", "step": name, "requests": 40,
                        "responses_by_status": {"200": 39, "500": 1},
                        "errors": {"timeout": 1}, "checks": 40, "check_failures": 1, "failed": failed,
                        "latency": latency_summary(hist)} for name in ("home", "item")]
    result["scenarios"] = [{"name": "browse", "weight": 3, "share": 0.75, "iterations": 40, "completed": 39,
                            "aborted": 1, "requests": 80, "errors": 1, "failed": failed, "checks": 80,
                            "check_failures": 2, "latency": latency_summary(hist)}]
    for point in result["timeseries"]:
        point["failed"] = 1
        point["watched"] = {"pid": 42, "cpu_percent": 12.5, "rss_kb": 1000}
    result["step_timeseries"] = [{"scenario": "browse", "step": step["step"],
                                  "points": [{"t": p["t"], "requests": 10, "errors": 0, "failed": 1, "hdr": p["hdr"]}
                                             for p in result["timeseries"]]} for step in result["steps"]]
    result["samples"] = [{"t": q / 4, "requests": 100 + q % 3, "hdr": result["timeseries"][(q - 1) // 4]["hdr"]}
                         for q in range(1, 17)]
    return result


BASES = {"closed": make_result(5, model="closed"), "open": make_result(5, model="open", seed=2),
         "plan": _plan_result(),
         # issue 11: https, keep-alive off (connections, connect and handshake histograms, the tls section)
         "tls": add_connection_costs(make_result(5, model="closed", seed=4), keepalive=False, verify=False)}


def _problem(result) -> str:
    with pytest.raises(ResultFileError) as info:
        check_result(result, "result.json")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_bases_are_valid():
    for result in BASES.values():
        data = copy.deepcopy(result)
        assert check_result(data, "result.json") is data         # ResultFileError when refused


def test_a_count_given_as_text_names_the_path():
    result = copy.deepcopy(BASES["closed"])
    result["totals"]["requests"] = "many"
    assert _problem(result) == 'result.json: totals.requests: expected an integer, got "many"'


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["latency"]["percentiles"].__setitem__("99", "slow"),
     'latency.percentiles["99"]: expected a number, got "slow"'),
    (lambda r: r["timeseries"][2].__setitem__("requests", -4), "timeseries[2].requests: must be >= 0, got -4"),
    (lambda r: r["timeseries"][0].__setitem__("hdr", "not base64!"),
     "timeseries[0].hdr: expected an HdrHistogram (V2 compressed, base64), got a string that does not decode"),
    (lambda r: r["totals"]["errors"].__setitem__("timeout", True),
     "totals.errors.timeout: expected an integer, got true"),
    (lambda r: r["config"].__setitem__("model", "flows"), 'config.model: expected "closed" or "open", got "flows"'),
    (lambda r: r["config"].pop("peak_rate"), "config.peak_rate: missing (with 'model' \"open\")"),
    (lambda r: r["totals"].__setitem__("rps", math.nan), "totals.rps: must be a finite number, got nan"),
    (lambda r: r["totals"].__setitem__("failed", {"count": 1, "by_reason": {"timeout": "x"}}),
     'totals.failed.by_reason.timeout: expected an integer, got "x"'),
    (lambda r: r["timeseries"][1].__setitem__("failed", "1"), 'timeseries[1].failed: expected an integer or an object'),
    (lambda r: r["steps"][0].__setitem__("latency", {"percentiles": {"50": 1}}),
     'steps[0].latency.percentiles["99"]: missing'),
    (lambda r: r["objectives"][1].pop("unit"), "objectives[1].unit: missing"),
    (lambda r: r["scenarios"][0].__setitem__("requests", 2.5), "scenarios[0].requests: expected an integer, got 2.5"),
])
def test_wrong_values_name_their_json_path(mutate, message):
    result = copy.deepcopy(BASES["open"])
    mutate(result)
    assert _problem(result).startswith(f"result.json: {message}")


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["tls"]["handshakes"].__setitem__("full", "all"), 'tls.handshakes.full: expected an integer, got "all"'),
    (lambda r: r["tls"].__setitem__("verify", "yes"), 'tls.verify: expected true or false, got "yes"'),
    (lambda r: r["tls"]["errors"].__setitem__("alert 40", -1), 'tls.errors["alert 40"]: must be >= 0, got -1'),
    (lambda r: r["tls"].pop("handshakes"), "tls.handshakes: missing"),
    (lambda r: r["tls"].__setitem__("cipher", 5), "tls.cipher: expected null or a string, got 5"),
    (lambda r: r["connect"]["percentiles"].pop("99"), 'connect.percentiles["99"]: missing'),
    (lambda r: r["tls_handshake"].__setitem__("count", 1.5), "tls_handshake.count: expected an integer, got 1.5"),
    (lambda r: r["totals"].__setitem__("connections_opened", None),
     "totals.connections_opened: expected an integer, got null"),
    (lambda r: r["timeseries"][1].__setitem__("hdr_connect", "x"),
     "timeseries[1].hdr_connect: expected an HdrHistogram"),
    (lambda r: r["config"].__setitem__("keepalive", "off"), 'config.keepalive: expected true or false, got "off"'),
])
def test_wrong_tls_values_name_their_json_path(mutate, message):
    result = copy.deepcopy(BASES["tls"])
    mutate(result)
    assert _problem(result).startswith(f"result.json: {message}")


def test_a_file_from_before_tls_has_none_of_its_keys_and_is_valid():
    # result format 1 gained the sections as optional keys: an older file lacks
    # them all, and the "tls" error kind too
    old = copy.deepcopy(BASES["closed"])
    old["totals"]["errors"].pop("tls", None)           # written before the error kind existed
    assert not {"connect", "tls_handshake", "tls"} & set(old)
    assert "connections_opened" not in old["totals"]
    assert check_result(old, "result.json") is old


def test_optional_keys_are_allowed_absent_and_unknown_keys_pass():
    result = copy.deepcopy(BASES["closed"])
    for key in ("steps", "scenarios", "objectives", "resources", "machine", "workers_failed"):
        result.pop(key)
    result["totals"].pop("in_flight_at_stop")
    result["something_new"] = {"any": ["shape"]}
    result["totals"]["failed"] = {"count": 0, "by_reason": {}}
    assert check_result(result, "result.json") is result


def test_a_plan_step_needs_what_the_summary_reads():
    result = copy.deepcopy(BASES["plan"])
    del result["steps"][1]["errors"]
    assert _problem(result).startswith("result.json: steps[1].errors: missing (with 'check_failures')")


# ---- fuzz: no corruption that passes the check breaks a report ---------------------------------
JUNK = ["many", "", None, True, False, -1, 0, 1, 2.5, 10 ** 30, math.inf, math.nan, [], [1], {}, {"x": 1},
        "HISTFAAAACh4nJNpmSzMwMDAzAABMBrGZ4TSAD7HAnU="]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, path + (i,))


PATHS = {name: [p for p in _paths(result) if p] for name, result in BASES.items()}


def _corrupt(result, path, action, junk):
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        parent.pop(key)
    else:
        parent[key] = copy.deepcopy(junk)


@st.composite
def corrupted(draw):
    name = draw(st.sampled_from(sorted(BASES)))
    result = copy.deepcopy(BASES[name])
    done = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[name]))
        action, junk = draw(st.sampled_from(["delete", "replace"])), draw(st.sampled_from(JUNK))
        try:
            _corrupt(result, path, action, junk)
            done.append(f"{action} {'.'.join(map(str, path))}" + (f" = {junk!r}" if action == "replace" else ""))
        except (KeyError, IndexError, TypeError, AttributeError):
            pass                        # an earlier corruption removed or replaced this path's parent
    return name, result, done


def _every_report(result, base, tmp_path):
    from surge.report.compare import compare
    from surge.report.csv_export import write_csv
    from surge.report.hlog import HlogError, write_hlog
    from surge.report.html import render_html
    from surge.report.summary import render_summary

    render_summary(result)
    render_html(result)
    write_csv(result, tmp_path / "r.csv")
    try:
        write_hlog(result, tmp_path / "r.hlog")
    except HlogError:
        pass                            # a result without histograms: a one-line usage error
    compare(base, result).render()
    compare(result, base).render()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corrupted())
def test_no_corruption_reaches_a_report_as_a_traceback(tmp_path, case):
    name, result, done = case
    note(f"{name}: {'; '.join(done)}")
    try:
        check_result(result, "result.json")
    except ResultFileError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("result.json: ")
        event("refused by the schema")
        return
    event("accepted: every report made")
    _every_report(result, BASES[name], tmp_path)


def test_the_cli_refuses_a_bad_file_in_one_line(tmp_path):
    from tests.helpers import run_surge

    result = copy.deepcopy(BASES["closed"])
    result["totals"]["requests"] = "many"
    bad, good = tmp_path / "result.json", tmp_path / "good.json"
    bad.write_text(json.dumps(result))
    good.write_text(json.dumps(BASES["closed"]))
    expected = f'{bad}: totals.requests: expected an integer, got "many"'
    for args in (("report", str(bad)), ("report", str(bad), "--html", str(tmp_path / "r.html")),
                 ("compare", str(good), str(bad)), ("compare", str(bad), str(good))):
        run = run_surge(*args, json_result=False)
        assert run.code == 2, run.stderr
        assert run.stderr.strip().splitlines() == [f"surge {args[0]}: error: {expected}"]
    assert load_result(good)["totals"]["requests"] == BASES["closed"]["totals"]["requests"]
