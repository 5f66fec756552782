"""Reading result files back: every bad file is one line saying which and why."""
import json

import pytest

from surge.result import RESULT_FORMAT
from surge.result.load import ResultFileError, check_result, load_result
from tests.report.synthetic import make_result


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(make_result(5, model="closed")))
    return path


def _error(path) -> str:
    with pytest.raises(ResultFileError) as info:
        load_result(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_good_file_loads(good):
    result = load_result(good)
    assert result["totals"]["requests"] > 0 and len(result["timeseries"]) == 5


def test_missing_file(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.json")


def test_directory(tmp_path):
    assert "is a directory" in _error(tmp_path)


@pytest.mark.parametrize("cut", [1, 100, 2000, -2])
def test_truncated_file_says_truncated(good, tmp_path, cut):
    text = good.read_text()
    short = tmp_path / "short.json"
    short.write_text(text[:cut] if cut > 0 else text.rstrip()[:cut])
    assert "truncated JSON" in _error(short)


def test_invalid_json_in_the_middle(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"surge_version": "0.1.0", oops: 1}\n')
    message = _error(path)
    assert "invalid JSON at line 1" in message


def test_empty_and_binary(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    assert "empty file" in _error(empty)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert "not a text file" in _error(binary)


@pytest.mark.parametrize("other", [
    {"metrics": {"http_reqs": {"count": 10}}, "root_group": {}},       # k6 --summary-export
    [{"latency": 1}],                                                  # some JSON list
    "just a string",
])
def test_another_tools_json(tmp_path, other):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    assert "not a surge result" in _error(path)


def test_newer_surge(tmp_path):
    result = make_result(3, model="closed")
    result["result_format"] = RESULT_FORMAT + 1
    result["surge_version"] = "9.0.0"
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(result))
    message = _error(path)
    assert "surge 9.0.0" in message and f"format {RESULT_FORMAT + 1}" in message and "upgrade" in message


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.pop("totals"), "r.json: totals: missing"),
    (lambda r: r.__setitem__("timeseries", {}), "r.json: timeseries: expected an array, got an object"),
    (lambda r: r["totals"].pop("rps"), "r.json: totals.rps: missing"),
    (lambda r: r["timeseries"].append({"requests": 1}), "r.json: timeseries[3].t: missing"),
    (lambda r: r.__setitem__("result_format", "1"), "'result_format' must be a whole number"),
])
def test_incomplete_results(mutate, fragment):
    result = make_result(3, model="closed")
    mutate(result)
    with pytest.raises(ResultFileError, match=None) as info:
        check_result(result, "r.json")
    assert fragment in str(info.value)


def test_real_run_result_loads(surge_server, tmp_path):
    from tests.helpers import run_surge
    server = surge_server()
    run = run_surge("run", server.url, "-d", "1s", "-c", "2", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    path = tmp_path / "real.json"
    path.write_text(json.dumps(run.result))
    assert load_result(path)["totals"]["requests"] == run.result["totals"]["requests"]
