"""Each plan step's seconds in the HTML report: one chart with a step menu
(readable for 20 steps), p50/p99 corrected and uncorrected, requests and failed
per second; result files written before per-step percentiles still load and chart."""
import json
import re

import numpy as np

from surge.core._histogram import Histogram
from surge.report.charts import STEP_FIGURE_ID
from surge.report.html import MAX_REPORT_BYTES, render_html, write_html
from surge.result.schema import check_schema
from tests.report.synthetic import make_result

N_STEPS, SECONDS = 20, 30


def _second(rng, median_us: float, n: int) -> Histogram:
    hist = Histogram()
    hist.record_many(np.maximum(rng.lognormal(np.log(median_us), 0.4, n), 1).astype(np.int64))
    return hist


def _with_steps(result: dict, *, old_format: bool) -> dict:
    """`N_STEPS` steps, each with its seconds: step k is k+1 ms at the median,
    corrected 10% above its uncorrected.  old_format: points carry only their
    histograms and steps no uncorrected latency, as files before per-step correction."""
    rng = np.random.default_rng(3)
    result["steps"], result["step_timeseries"] = [], []
    for k in range(N_STEPS):
        points, total = [], Histogram()
        for t in range(1, SECONDS + 1):
            written = _second(rng, 1000.0 * (k + 1), 50)
            intended = _second(rng, 1100.0 * (k + 1), 50)
            total.add(intended)
            point = {"t": float(t), "requests": 50, "errors": 0, "failed": 1 if t == 7 else 0,
                     "hdr": intended.encode()}
            if not old_format:
                point.update({"p50": intended.value_at_percentile(50), "p99": intended.value_at_percentile(99),
                              "hdr_uncorrected": written.encode(),
                              "p50_uncorrected": written.value_at_percentile(50),
                              "p99_uncorrected": written.value_at_percentile(99)})
            points.append(point)
        name = f"step{k:02d}"
        result["steps"].append({"scenario": "journey", "step": name, "requests": 50 * SECONDS,
                                "latency": {"percentiles": {"50": total.value_at_percentile(50),
                                                            "99": total.value_at_percentile(99)}}})
        result["step_timeseries"].append({"scenario": "journey", "step": name, "points": points})
    return result


def _step_figure(page: str) -> dict:
    payload = re.search(r'<script type="application/json" id="surge-figures">(.*?)</script>', page, re.S).group(1)
    return next(f for f in json.loads(payload) if f["id"] == STEP_FIGURE_ID)


def test_twenty_steps_share_one_chart_with_a_menu_first_step_shown():
    result = _with_steps(make_result(SECONDS, seed=4), old_format=False)
    check_schema(result)
    page = render_html(result)
    figure = _step_figure(page)
    assert page.count(f'id="{STEP_FIGURE_ID}"') == 1
    buttons = figure["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == [f"journey/step{k:02d}" for k in range(N_STEPS)]
    per_step = len(figure["data"]) // N_STEPS
    names = [trace["name"] for trace in figure["data"][:per_step]]
    assert names == ["p50 (corrected)", "p99 (corrected)", "p50 (uncorrected)", "p99 (uncorrected)",
                     "requests/s", "failed/s"]
    assert [trace["visible"] for trace in figure["data"]] == [i < per_step for i in range(len(figure["data"]))]
    # the menu's k-th entry shows exactly step k's lines
    third = buttons[2]["args"][0]["visible"]
    assert [i for i, shown in enumerate(third) if shown] == list(range(2 * per_step, 3 * per_step))
    # p99 of step 5's 7th second, in ms, is that second's
    point = result["step_timeseries"][5]["points"][6]
    assert figure["data"][5 * per_step + 1]["y"][6] == round(point["p99"] / 1000, 3)
    assert figure["data"][5 * per_step + 5]["y"][6] == 1.0            # failed/s
    # it sits under the per-step table
    assert page.index("<h2>Per step</h2>") < page.index(f'id="{STEP_FIGURE_ID}"')


def test_an_older_result_without_step_percentiles_still_loads_and_charts():
    """Files written before per-step percentiles: points with only `hdr`, steps
    without `latency_uncorrected`.  The chart reads p50/p99 from the histograms."""
    result = _with_steps(make_result(SECONDS, seed=4), old_format=True)
    check_schema(result)
    figure = _step_figure(render_html(result))
    per_step = len(figure["data"]) // N_STEPS
    assert [trace["name"] for trace in figure["data"][:per_step]] == ["p50", "p99", "requests/s", "failed/s"]
    point = result["step_timeseries"][0]["points"][0]
    assert figure["data"][0]["y"][0] == round(Histogram.decode(point["hdr"]).value_at_percentile(50) / 1000, 3)


def test_the_step_chart_renders_in_chromium(chromium_page, tmp_path):
    result = _with_steps(make_result(SECONDS, seed=4), old_format=False)
    path = tmp_path / "steps.html"
    assert write_html(result, path) <= MAX_REPORT_BYTES
    page = chromium_page.load(path, tmp_path / "profile")
    assert page.console == [] and page.status.get("errors") == "", (page.console, page.status)
    assert page.status["rendered"] == page.status["charts"]
    assert STEP_FIGURE_ID in [box["id"] for box in page.status["layout"]]


def test_an_hour_of_twenty_steps_still_fits():
    """3600 s x 20 steps: the step chart is resampled with the page (worst second
    of each wide interval), and the page stays under the size bound."""
    result = make_result(3600, seed=3, rate=300, workers=4, steps=False, scenarios=False)
    hist = _second(np.random.default_rng(1), 1000.0, 300)
    shared = {"requests": 300, "errors": 0, "failed": 0, "hdr": hist.encode(), "p50": hist.value_at_percentile(50),
              "p99": hist.value_at_percentile(99)}
    result["step_timeseries"] = [{"scenario": "s", "step": f"step{k}",
                                  "points": [{"t": float(t), **shared} for t in range(1, 3601)]}
                                 for k in range(N_STEPS)]
    page = render_html(result)
    assert len(page.encode()) <= MAX_REPORT_BYTES
    figure = _step_figure(page)
    assert len(figure["data"][0]["x"]) < 3600
    assert re.search(r"Pick the step in the menu \(20 steps\)\. Each point covers \d+ seconds; latency shows the "
                     r"worst second of each\.", page)
