"""The regression gate's power on short runs: it says when no change can be
significant (never "no significant change"), exits 4 then, and its final line
agrees with its rows."""
import itertools
import json
import re

import pytest

from surge.report.compare import compare, final_line
from surge.report.significance import holm_adjust, mann_whitney_u, samples_needed, smallest_p, smallest_p_of
from tests.helpers import run_surge
from tests.report.synthetic import make_result


# ---- the floor of the test ------------------------------------------------------------------
@pytest.mark.parametrize("x, y", [
    ([1, 2, 3], [4, 5, 6]),
    ([1, 1, 2, 5], [2, 3, 3]),
    ([0, 0, 0, 0], [0, 1, 0]),                  # mostly ties (error rates)
    ([7, 7, 7], [7, 7, 7, 7]),                  # all equal
    ([3.5, 1.0, 9.0, 2.0, 4.0], [8.0, 6.0, 1.0, 5.0]),
])
def test_smallest_p_of_is_the_smallest_over_every_split(x, y):
    pooled = list(x) + list(y)
    every = min(mann_whitney_u([pooled[i] for i in chosen], [pooled[i] for i in range(len(pooled)) if i not in chosen])[1]
                for chosen in itertools.combinations(range(len(pooled)), len(x)))
    assert smallest_p_of(x, y) == pytest.approx(every)


def test_smallest_p_for_distinct_values():
    assert smallest_p(5, 5) == pytest.approx(mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1])
    assert 0.01 < smallest_p(5, 5) < 0.015          # the normal approximation's floor for 5 and 5
    assert smallest_p(1, 1) == 1.0
    n = samples_needed(12, 0.05)
    assert 12 * smallest_p(n, n) < 0.05 <= 12 * smallest_p(n - 1, n - 1)


def test_holm_is_monotone_so_floors_give_the_best_case():
    floors = [0.01, 0.02, 0.2]
    for raised in itertools.product([0.01, 0.03, 0.5], [0.02, 0.04, 0.6], [0.2, 0.9]):
        assert all(a <= b + 1e-12 for a, b in zip(holm_adjust(floors), holm_adjust(list(raised))))


# ---- the case: 5 one-second samples, requests/s down 33% --------------------------------
def short_pair(seconds=5, slowdown=1.5, **options):
    baseline = make_result(seconds, seed=1, model="closed", error_every=0, **options)
    current = make_result(seconds, seed=2, model="closed", error_every=0, slowdown=slowdown, **options)
    return baseline, current


def test_five_seconds_a_third_slower_is_inconclusive_not_no_change():
    comparison = compare(*short_pair())
    rps = next(m for m in comparison.metrics if m.scope == "run" and m.name == "requests/s")
    assert rps.change == pytest.approx(-1 / 3, abs=0.05) and rps.untested.startswith("cannot test")
    assert comparison.verdict == "inconclusive"
    text = comparison.render()
    assert "no significant change" not in text
    last = text.splitlines()[-1]
    assert re.search(r"INCONCLUSIVE: cannot test: 5 and 5 one-second samples can reach p >= 0\.012, "
                     r"\d+ metrics need p < [0-9.]+; runs of >= \d+ s each could", last), last


def test_the_run_length_it_names_is_enough_for_a_clear_change():
    last = compare(*short_pair()).render().splitlines()[-1]
    seconds = int(re.search(r"runs of >= (\d+) s", last).group(1))
    # Steps would add metrics (and halve the samples): the message is about the metrics compared.
    longer = compare(*short_pair(seconds, slowdown=3.0, steps=False))
    assert longer.verdict == "regression", longer.render()


def test_a_metric_that_never_varied_costs_the_others_nothing():
    comparison = compare(*short_pair(8, steps=False))
    error_rate = next(m for m in comparison.metrics if m.name == "error rate")
    assert error_rate.constant and error_rate.p_value is None
    assert comparison.tested == 5                   # requests/s and four percentiles
    assert "no change (every sample equal)" in comparison.render()


def write(path, result):
    path.write_text(json.dumps(result))
    return str(path)


def test_inconclusive_fails_the_gate_and_can_be_allowed(tmp_path):
    baseline, current = short_pair()
    a, b = write(tmp_path / "a.json", baseline), write(tmp_path / "b.json", current)
    run = run_surge("compare", a, b, json_result=False)
    assert run.code == 3, run.stdout + run.stderr
    assert "INCONCLUSIVE" in run.stdout.splitlines()[-1]
    allowed = run_surge("compare", a, b, "--allow-inconclusive", json_result=False)
    assert allowed.code == 0 and "INCONCLUSIVE" in allowed.stdout


# ---- the final line never contradicts the rows --------------------------------------------------
def rows(text):
    """(metric label, verdict) of every table row."""
    out, scope = [], None
    for line in text.splitlines():
        if line.startswith("  whole run") or line.startswith("  step "):
            scope = None if line.strip() == "whole run" else line.strip()[5:]
        m = re.match(r"  (\S+)\s+.*?(?:<0\.001|\d\.\d{3}|-)  (.+)$", line)
        if m and scope is not False and not line.startswith("   "):
            name = m.group(1)
            out.append((name if scope is None else f"{name} ({scope})", m.group(2)))
    return out


@pytest.mark.parametrize("bound, slowdown, seconds", [
    (0.60, 1.5, 12), (0.05, 1.5, 12), (0.05, 1.0, 12), (0.60, 3.0, 12), (0.05, 0.7, 12), (0.05, 1.5, 5)])
def test_final_line_agrees_with_the_rows(bound, slowdown, seconds):
    baseline = make_result(seconds, seed=1, model="closed")
    current = make_result(seconds, seed=2, model="closed", slowdown=slowdown)
    comparison = compare(baseline, current, max_regression=bound)
    text = comparison.render()
    last = text.splitlines()[-1].strip()
    verdicts = dict(rows(text))
    assert len(verdicts) == len(comparison.metrics)
    regressions = [k for k, v in verdicts.items() if v == "REGRESSION"]
    significant = [k for k, v in verdicts.items() if v in ("REGRESSION", "improvement", "significant, within bound")]
    assert last.startswith("REGRESSION") == bool(regressions)
    for label in regressions:
        assert label in last
    if "no significant change" in last:
        assert not significant
    if not last.startswith("REGRESSION") and significant:
        assert last.startswith(f"no regression beyond {bound * 100:g}%")
    if last.startswith("INCONCLUSIVE"):
        assert all(v.startswith("cannot test") or v.startswith("no change") for v in verdicts.values())
    if any(v.startswith("cannot test") for v in verdicts.values()) and not last.startswith(("REGRESSION", "INC")):
        assert "could not be tested" in last
    assert last == final_line(comparison)


def test_sixty_percent_bound_with_a_third_slower_says_within_bound():
    comparison = compare(make_result(12, seed=1, model="closed"),
                         make_result(12, seed=2, model="closed", slowdown=1.5), max_regression=0.60)
    last = comparison.render().splitlines()[-1]
    assert last.startswith("  no regression beyond 60%; significant within the 60% bound: requests/s -3")
    assert comparison.verdict == "change within bound"
