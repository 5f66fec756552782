"""The rule-based findings (src/report/findings.py) on synthetic results: each
rule fires on the shape it names, with its numbers, and stays silent otherwise."""
import copy

from surge.report import findings as F
from tests.report.synthetic import make_result


def closed(seconds=20, **kw):
    return make_result(seconds, seed=5, model="closed", rate=1000, error_every=0, objectives=False,
                       steps=False, scenarios=False, **kw)


def with_failed(result: dict, from_s: float, per_second: int, reason="status 500") -> dict:
    """Every point from `from_s` on has `per_second` failed responses."""
    result = copy.deepcopy(result)
    count = 0
    for point in result["timeseries"]:
        point["failed"] = per_second if point["t"] >= from_s else 0
        count += point["failed"]
    result["totals"]["failed"] = {"count": count, "by_reason": {reason: count}}
    return result


def knee(result: dict, flat_from: int = 8, ceiling: int = 1000) -> dict:
    """Throughput ramps to `ceiling` by second `flat_from`, then stays; p50 doubles every 4 s after."""
    result = copy.deepcopy(result)
    for point in result["timeseries"]:
        k = int(point["t"])
        point["requests"] = int(ceiling * min(k, flat_from) / flat_from)
        point["p50"] = 2000 if k <= flat_from else int(2000 * 2 ** ((k - flat_from) / 4))
        point["p99"] = 3 * point["p50"]
    return result


# ---- what was tested, verdict, headline -----------------------------------------------------
def test_described_test_says_target_model_load_and_duration():
    text = F.described_test(closed())
    assert text == "GET http://127.0.0.1:8080/api?q=1: closed model, 64 connections, for 20.00 s with 2 workers."


def test_described_test_of_an_open_plan_counts_iterations():
    result = make_result(5, seed=1)
    result["config"].update({"plan": "shop", "rate": None, "peak_rate": 80.0, "max_connections": 480})
    text = F.described_test(result)
    assert text.startswith("Plan shop against http://127.0.0.1:8080/api?q=1: open model, stages peaking at "
                           "80.0 iterations/s, up to 480 virtual users")


def test_verdict_names_failed_objectives_in_their_units_and_the_gate():
    result = make_result(5, seed=1)
    result["objectives"] = [{"name": "p99 < 1ms", "passed": False, "value": 2751, "unit": "us"},
                            {"name": "error_rate < 1%", "passed": True, "value": 0.0, "unit": "fraction"}]
    assert F.verdict(result) == "Objectives FAIL: 1 of 2 failed: p99 < 1ms (measured 2.75ms)."
    result["gate"] = {"verdict": "regression", "baseline": "base.json"}
    assert F.verdict(result).endswith("Baseline gate against base.json: regression.")
    assert F.verdict(closed()) is None


def test_format_measured_matches_the_terminal_units():
    assert F.format_measured(2751, "us") == "2.75ms"
    assert F.format_measured(0.0, "fraction") == "0.00%"
    assert F.format_measured(78.458, "req/s") == "78.5 req/s"
    assert F.format_measured(12.0, "count") == "12"
    assert F.format_measured(None, "us") == "no data"


def test_headline_numbers():
    result = with_failed(closed(), 11, 10)
    totals = result["totals"]
    text = F.headline(result)
    assert text.startswith(f"{totals['requests']:,} responses at ")
    assert "failed (100 of " in text and "p50 " in text and "p99 " in text


def test_headline_without_responses_says_so():
    result = closed(3)
    result["totals"].update({"requests": 0, "responses_by_status": {},
                             "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 7, "parse": 0, "closed": 0},
                             "failed": {"count": 7, "by_reason": {"timeout": 7}}})
    result["latency"] = {"count": 0, "min": 0, "max": 0, "mean": 0, "stdev": 0, "percentiles": {"50": 0, "99": 0}}
    assert F.headline(result) == "No responses: all 7 requests failed (timeout: 7)."


# ---- the rules ------------------------------------------------------------------------------
def test_quiet_run_has_no_limit_and_says_what_was_checked():
    result = closed()
    assert [f.rule for f in F.findings(result)] == []
    last = F.summary_sentences(result)[-1]
    assert last.startswith("No limit showed in the data: the busiest client worker used ")
    assert "latency did not rise while throughput stayed flat" in last


def test_short_run_does_not_claim_a_latency_trend():
    last = F.summary_sentences(closed(4))[-1]
    assert "too few steady seconds (3) to judge a latency trend" in last


def test_client_cpu_rule_from_steady_seconds():
    result = closed()
    for point in result["timeseries"]:
        point["workers"][1]["cpu_percent"] = 97.0
    result["timeseries"][0]["workers"][0]["cpu_percent"] = 400.0        # start-up second: not judged
    found = F.client_cpu(result)
    assert found.evidence["workers_cpu_fraction"] == {1: 0.97}
    assert found.evidence["steady_seconds"] == 19          # 20 whole seconds less the first (start-up)
    assert "worker 1 at 97% of a CPU core" in found.sentence
    assert F.client_cpu(closed()) is None


def test_target_resources_from_watched_samples():
    result = closed(10)
    for point in result["timeseries"]:
        k = int(point["t"])
        point["watched"] = {"pid": 4242, "cpu_percent": 95.0 + k % 3, "rss_kb": 40 * 1024 + 8 * 1024 * k}
    found = F.target_resources(result)
    assert found.limit is False and found.evidence["pid"] == 4242
    assert found.sentence == ("The watched target process (pid 4242, --watch-pid) used a median 96% of a CPU core "
                              "(peak 97%) and its memory "
                              "grew from 48.0 MiB to 120.0 MiB.")
    assert F.target_resources(closed(10)) is None


def test_latency_rise_while_throughput_flat_names_the_seconds():
    found = F.latency_rise(knee(closed(24)))
    assert found is not None
    ev = found.evidence
    assert ev["flat_from_s"] == 7.0                       # 875/s is within 15% of the plateau's 1000/s; 750 is not
    assert ev["plateau_median_per_s"] == 1000 and ev["plateau_min_per_s"] == 875
    assert ev["p50_before_us"] == 2000 and ev["p50_after_us"] > 2 * 2000
    assert ev["rising_from_s"] == 10.0                    # the first 3 s whose median p50 is 1.5x: 10, 11, 12
    assert "at about 1,000 req/s (875-1,000) from 7 s to the end while latency rose from 10 s" in found.sentence


def test_latency_rise_on_a_plateau_after_a_one_second_spike():
    """A busy neighbour lets one second run fast: the plateau is the seconds after it."""
    result = knee(closed(24))
    result["timeseries"][7]["requests"] = 2500
    assert F.latency_rise(result).evidence["flat_from_s"] == 9.0


def test_no_latency_rise_when_throughput_keeps_rising_or_latency_is_steady():
    assert F.latency_rise(closed(24)) is None
    still_rising = knee(closed(24), flat_from=30, ceiling=3000)      # a ramp that never flattened
    assert F.latency_rise(still_rising) is None


def test_failures_rule_from_when_and_why():
    found = F.failures(with_failed(closed(20), 11, 10))
    assert found.evidence["first_failed_s"] == 11.0
    assert found.evidence["seconds_with_failures"] == 10 and found.evidence["seconds_from_first"] == 10
    assert found.evidence["by_reason"] == {"status 500": 100}
    assert "100 of " in found.sentence and "status 500: 100" in found.sentence
    assert "the first in the second ending at 11 s" in found.sentence
    assert F.failures(closed()) is None


def test_every_request_failed():
    result = closed(5)
    result["totals"]["responses_by_status"] = {"500": result["totals"]["requests"]}
    result["totals"]["failed"] = {"count": result["totals"]["requests"],
                                  "by_reason": {"status 500": result["totals"]["requests"]}}
    for point in result["timeseries"]:
        point["failed"] = point["requests"]
    assert F.failures(result).sentence.startswith("Every request failed (")


def test_schedule_shortfall_open_model():
    result = make_result(10, seed=4, objectives=False, steps=False, scenarios=False)
    result["totals"].update({"dropped": 0, "queued_at_stop": 0})
    for point in result["timeseries"]:
        point["dropped"] = 0
    assert F.schedule_shortfall(result) is None
    behind = copy.deepcopy(result)
    for point in behind["timeseries"][4:]:
        point["requests"] = 1000                            # target 2000/s
    behind["totals"].update({"dropped": 50, "queued_at_stop": 7})
    found = F.schedule_shortfall(behind)
    assert found.evidence == {"dropped": 50, "queued_at_stop": 7, "due": behind["totals"]["due"],
                              "seconds_behind": 6, "first_behind_s": 5.0}
    assert found.sentence.startswith("The schedule was not kept: 50 requests dropped")
    assert F.schedule_shortfall(closed()) is None


def test_summary_sentences_are_plain_text_in_order():
    result = with_failed(knee(closed(24)), 15, 5)
    sentences = F.summary_sentences(result)
    assert sentences[0].startswith("GET http://") and sentences[1].startswith(f"{result['totals']['requests']:,}")
    assert [f.rule for f in F.findings(result)] == ["latency-rise", "failures"]
    assert all(isinstance(s, str) and "<" not in s for s in sentences)
