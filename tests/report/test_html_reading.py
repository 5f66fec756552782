"""The HTML report reads well (issue 9, "The HTML report"): every number in its
unit, short per-step tables with the rest behind a toggle, iterations on their
own axis, a summary to hand on, failed %, "no responses", no secrets. Pages are
parsed, not grepped, and real runs' pages are opened in headless Chromium."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from surge.report.charts import build_figures
from surge.report.html import MAX_REPORT_BYTES, render_html, write_html
from tests.report.synthetic import make_result
from tests.report.test_html import assert_self_contained

BRIEF_COLUMNS = ["name", "requests", "req/s", "failed", "p50", "p95", "p99", "statuses"]
# an open-model plan: each step corrected (from when it was due), its uncorrected p50/p99 beside
BRIEF_COLUMNS_OPEN = ["name", "requests", "req/s", "failed", "p50 (corrected)", "p95 (corrected)",
                      "p99 (corrected)", "p50 (uncorrected)", "p99 (uncorrected)", "statuses"]


@dataclass
class Table:
    heading: str                     # the last <h2>/<h3> before it
    in_details: bool                 # inside a <details> (hidden until opened)
    rows: list[list[str]] = field(default_factory=list)


class PageParser(HTMLParser):
    """Tables (with their heading), the summary paragraph, finding items."""

    def __init__(self):
        super().__init__()
        self.tables: list[Table] = []
        self.heading = ""
        self.summary = ""
        self.findings: list[tuple[str, str]] = []     # (rule, sentence)
        self._text: list[str] | None = None
        self._into = None
        self._details = 0
        self._cell: list[str] | None = None
        self._finding: list | None = None
        self._in_summary_tag = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("h2", "h3"):
            self._text, self._into = [], "heading"
        elif tag == "p" and attrs.get("id") == "surge-summary":
            self._text, self._into = [], "summary"
        elif tag == "details":
            self._details += 1
        elif tag == "table":
            self.tables.append(Table(self.heading, self._details > 0))
        elif tag == "tr" and self.tables:
            self.tables[-1].rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li" and attrs.get("data-rule"):
            self._finding = [attrs["data-rule"], []]
        elif tag == "summary":
            self._in_summary_tag += 1

    def handle_endtag(self, tag):
        if tag in ("h2", "h3") and self._into == "heading":
            self.heading, self._text, self._into = "".join(self._text).strip(), None, None
        elif tag == "p" and self._into == "summary":
            self.summary, self._text, self._into = "".join(self._text).strip(), None, None
        elif tag == "details":
            self._details -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1].rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "summary":
            self._in_summary_tag -= 1
        elif tag == "li" and self._finding is not None:
            self.findings.append((self._finding[0], "".join(self._finding[1]).strip()))
            self._finding = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._finding is not None and self._cell is None and not self._in_summary_tag:
            self._finding[1].append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    return parser


def tables_under(page: PageParser, heading: str) -> list[Table]:
    return [t for t in page.tables if t.heading == heading]


def column(table: Table, name: str) -> list[str]:
    index = table.rows[0].index(name)
    return [row[index] for row in table.rows[1:]]


def plan_result(seconds: int = 10) -> dict:
    """A synthetic open-model plan run: steps with names, a few 500s on one step."""
    result = make_result(seconds, seed=11)
    result["config"].update({"plan": "shop", "plan_file": "shop.yaml", "rate": None, "peak_rate": 80.0,
                             "stages": [{"duration_s": float(seconds), "target": 80.0}]})
    requests = result["totals"]["requests"]
    ok, bad = requests - 40, 40
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "parse": 0, "closed": 0}
    latency = copy.deepcopy(result["latency"])
    result["steps"] = [
        {"scenario": "auth", "step": "login", "requests": ok, "responses_by_status": {"200": ok},
         "errors": dict(errors), "checks": ok, "check_failures": 0, "failed": {"count": 0, "by_reason": {}},
         "latency": latency},
        {"scenario": "auth", "step": "pay", "requests": bad, "responses_by_status": {"500": bad},
         "errors": dict(errors), "checks": 0, "check_failures": 0,
         "failed": {"count": bad, "by_reason": {"status 500": bad}}, "latency": latency},
    ]
    result["scenarios"] = [{"name": "auth", "weight": 1.0, "share": 1.0, "iterations": ok, "completed": ok,
                            "aborted": 0, "requests": requests, "errors": 0,
                            "failed": {"count": bad, "by_reason": {"status 500": bad}}, "checks": ok,
                            "check_failures": 0, "latency": latency}]
    result["totals"]["responses_by_status"] = {"200": ok, "500": bad}
    result["totals"]["errors"] = errors
    result["totals"]["failed"] = {"count": bad, "by_reason": {"status 500": bad}}
    result["totals"]["error_rate"] = bad / requests
    result["totals"]["dropped"] = 0                 # the schedule was kept (not this test's subject)
    for point in result["timeseries"]:
        point["errors"], point["failed"], point["dropped"] = 0, 4, 0
    result["objectives"] = [
        {"name": "p99 < 1ms", "passed": False, "value": 2751.0, "unit": "us", "abort_on_fail": False},
        {"name": "error_rate < 1%", "passed": True, "value": 0.0, "unit": "fraction", "abort_on_fail": False},
        {"name": "throughput >= 200/s", "passed": True, "value": 1234.5, "unit": "req/s", "abort_on_fail": False},
        {"name": "dropped == 0", "passed": True, "value": 0.0, "unit": "count", "abort_on_fail": False},
    ]
    return result


# ---- units ----------------------------------------------------------------------------------
def test_objectives_show_values_in_their_units_as_the_terminal_does():
    page = parse(render_html(plan_result()))
    [table] = tables_under(page, "Objectives")
    assert table.rows[0][:3] == ["objective", "result", "value"] and "unit" not in table.rows[0]
    assert column(table, "value") == ["2.75ms", "0.00%", "1,234 req/s", "0"]


def test_latency_count_is_a_count_not_a_duration():
    result = plan_result()
    page = parse(render_html(result))
    [full] = [t for t in tables_under(page, "Per step") if t.in_details]
    count = result["latency"]["count"]
    assert column(full, "latency count") == [f"{count:,}", f"{count:,}"]
    assert all(re.fullmatch(r"[\d.,]+(us|ms|s)", v) for v in column(full, "latency p99"))


# ---- short tables, the rest behind a toggle -------------------------------------------------
def test_step_and_scenario_tables_show_the_few_columns_and_hide_the_rest():
    result = plan_result()
    page = parse(render_html(result))
    for heading in ("Per scenario", "Per step"):
        brief, full = tables_under(page, heading)
        assert not brief.in_details and full.in_details
        assert brief.rows[0] == BRIEF_COLUMNS
        assert len(full.rows[0]) > len(BRIEF_COLUMNS)
    brief = tables_under(page, "Per step")[0]
    assert column(brief, "name") == ["auth/login", "auth/pay"]
    assert column(brief, "failed") == ["0.00% (0)", "100.00% (40)"]
    assert column(brief, "statuses")[1] == "500: 40"
    rate = result["steps"][0]["requests"] / result["totals"]["duration_s"]
    assert column(brief, "req/s")[0] == f"{rate:,.0f}"
    scenario = tables_under(page, "Per scenario")[0]
    assert column(scenario, "statuses") == [f"200: {result['steps'][0]['requests']:,}, 500: 40"]


def test_derived_stage_rows_have_the_brief_columns_too():
    result = make_result(6, seed=3, steps=False, scenarios=False)
    result["config"]["stages"] = [{"duration_s": 3.0, "target": 1000.0}, {"duration_s": 3.0, "target": 2000.0}]
    brief = tables_under(parse(render_html(result)), "Per step")[0]
    assert brief.rows[0] == BRIEF_COLUMNS
    assert all(v.endswith(("us", "ms")) for v in column(brief, "p95"))
    assert all(v.startswith("200: ") and "404: " in v for v in column(brief, "statuses"))


# ---- iterations on their own axis -----------------------------------------------------------
def test_plan_target_iterations_are_on_their_own_axis():
    result = plan_result()
    [throughput] = [f for f in build_figures(result, result["timeseries"], 1, True) if f["id"] == "throughput"]
    target = [t for t in throughput["data"] if "target" in t["name"]]
    assert [t["name"] for t in target] == ["target iterations/s"]
    assert target[0]["yaxis"] == "y2"
    assert "iterations" in throughput["layout"]["yaxis2"]["title"]["text"]
    assert "iterations" not in throughput["layout"]["yaxis"]["title"]["text"]
    assert "peak target iterations / s" in render_html(result)     # the headline card


def test_url_open_model_target_stays_on_the_requests_axis():
    result = make_result(5, seed=1)
    [throughput] = [f for f in build_figures(result, result["timeseries"], 1, True) if f["id"] == "throughput"]
    [target] = [t for t in throughput["data"] if "target" in t["name"]]
    assert target["name"] == "target/s" and "yaxis" not in target


# ---- the summary to hand on -----------------------------------------------------------------
def test_summary_paragraph_first_with_verdict_headline_and_findings():
    result = plan_result(12)
    for point in result["timeseries"]:
        point["watched"] = {"pid": 999, "cpu_percent": 88.0, "rss_kb": 51200}
    text = render_html(result)
    page = parse(text)
    assert text.index('id="surge-summary"') < text.index("<h2>Objectives</h2>") < text.index("<h2>Headline</h2>")
    summary = page.summary
    assert summary.startswith("Plan shop against http://127.0.0.1:8080/api?q=1: open model")
    assert "Objectives FAIL: 1 of 4 failed: p99 < 1ms (measured 2.75ms)." in summary
    assert f"{result['totals']['requests']:,} responses at" in summary
    assert "The watched target process (pid 999, --watch-pid) used a median 88% of a CPU core" in summary
    rules = [rule for rule, _ in page.findings]
    assert rules == ["failures", "target-resources"]
    failures = dict(page.findings)["failures"]
    assert "40 of " in failures and "status 500: 40" in failures
    # Each finding has its numbers in a table behind a toggle.
    evidence = [t for t in page.tables if t.in_details and t.rows and t.rows[0][0] == "failed"]
    assert evidence and evidence[0].rows[0] == ["failed", "40"]


# ---- failed requests and "no responses" -----------------------------------------------------
def test_failed_share_shown_with_the_errors():
    result = plan_result()
    page = parse(render_html(result))
    [outcomes] = tables_under(page, "Responses and errors")
    rows = {row[0]: row[1] for row in outcomes.rows}
    share = f"{40 / result['totals']['requests'] * 100:.2f}%"
    assert rows["failed (transport errors, failed statuses)"] == f"40 ({share})"
    assert rows["status 500"] == "40"
    assert f"{share} (40)" in render_html(result)          # the headline card
    [figure] = [f for f in build_figures(result, result["timeseries"], 1, True) if f["id"] == "responses-errors"]
    [failed] = [t for t in figure["data"] if t["name"] == "failed/s"]
    assert failed["yaxis"] == "y2" and all(v > 0 for v in failed["customdata"])


def all_failed_result() -> dict:
    result = make_result(3, seed=2, model="closed", objectives=False, steps=False, scenarios=False)
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 9, "parse": 0, "closed": 0}
    result["totals"].update({"requests": 0, "rps": 0.0, "responses_by_status": {}, "errors": errors,
                             "failed": {"count": 9, "by_reason": {"timeout": 9}}, "error_rate": 1.0})
    result["latency"] = {"unit": "us", "count": 0, "min": 0, "mean": 0.0, "stdev": 0.0, "max": 0,
                         "percentiles": {"50": 0, "90": 0, "99": 0}}
    for point in result["timeseries"]:
        point.update({"requests": 0, "errors": 3, "failed": 3, "p50": 0, "p90": 0, "p99": 0, "max": 0,
                      "statuses": {}})
        point.pop("hdr", None)
    result["steps"] = [{"name": "only", "requests": 0, "errors": 9, "failed": 9,
                        "latency": {"count": 0, "percentiles": {"50": 0, "95": 0, "99": 0}}}]
    return result


def test_every_request_failed_says_no_responses_not_zeros():
    text = render_html(all_failed_result())
    page = parse(text)
    assert "no responses" in text
    assert not tables_under(page, "Latency")                  # no table of 0us
    assert "0us" not in "".join(cell for t in page.tables for row in t.rows for cell in row)
    assert "No responses: all 9 requests failed (timeout: 9)." in page.summary
    brief = tables_under(page, "Per step")[0]
    assert brief.rows[1][4] == "no responses"


# ---- secrets --------------------------------------------------------------------------------
def test_headers_are_printed_as_the_result_has_them_and_nowhere_else():
    result = make_result(3, seed=1, model="closed")
    result["config"]["headers"] = ["Authorization: ***", "X-Trace: visible-value"]
    text = render_html(result)
    assert "Authorization: ***" in text and "visible-value" in text


# ---- real runs, in the browser --------------------------------------------------------------
def load_in_browser(chromium_page, path, tmp_path):
    page = chromium_page.load(path, tmp_path / "profile")
    assert page.console == [] and page.status.get("errors") == "", (page.console, page.status)
    assert page.status["rendered"] == page.status["charts"]
    return page


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """The two real runs below, started at once, each against its own `surge serve`:
    examples/shop.yaml, shortened, against --app demo; and every response a 500, with a
    secret header and URL password.  The tests read each page on its own (no numbers
    compared across runs), so sharing the CPU changes nothing they assert."""
    import os
    from pathlib import Path

    from surge.serve.server import ServeProcess
    from tests.helpers import run_surge_together
    tmp = tmp_path_factory.mktemp("real-runs")
    demo, failing = ServeProcess(app="demo").start(), ServeProcess(status=500).start()
    try:
        examples = Path(__file__).resolve().parents[2] / "examples"
        plan = (examples / "shop.yaml").read_text()
        plan = re.sub(r"stages:\n(\s+- \{duration: \w+, target: \d+\}\n)+",
                      "stages:\n    - {duration: 2s, target: 20}\n    - {duration: 2s, target: 40}\n", plan)
        (tmp / "shop.yaml").write_text(plan)
        (tmp / "users.csv").write_text((examples / "users.csv").read_text())
        url = failing.url.replace("http://", "http://alice:pw-s3cr3t@")
        plan_run, failed_run = run_surge_together(
            ["run", str(tmp / "shop.yaml"), "-w", "1", "-q"],
            ["run", url, "-d", "2s", "-c", "2", "-w", "1", "-q",
             "-H", "Proxy-Authorization: Bearer tok-s3cr3t", "-H", "Cookie: id=cookie-s3cr3t"],
            env={**os.environ, "TARGET_URL": demo.url.rstrip("/")})
    finally:
        demo.stop()
        failing.stop()
    return {"plan": plan_run, "failed": failed_run}


def test_real_plan_run_page(real_runs, chromium_page, tmp_path):
    """examples/shop.yaml, shortened, against surge serve --app demo."""
    run = real_runs["plan"]
    assert run.code in (0, 3), run.stderr                     # 3: the throughput objective fails this short
    path = tmp_path / "plan.html"
    assert write_html(run.result, path) <= MAX_REPORT_BYTES
    text = path.read_text()
    assert_self_contained(text)
    page = parse(text)
    assert page.summary.startswith("Plan shop against ")
    assert "iterations/s" in page.summary
    brief = tables_under(page, "Per step")[0]
    assert brief.rows[0] == BRIEF_COLUMNS_OPEN and len(brief.rows) == 1 + len(run.result["steps"])
    values = column(tables_under(page, "Objectives")[0], "value")
    assert all(re.fullmatch(r"[\d.,]+(us|ms|s|%| req/s)", v) for v in values), values
    load_in_browser(chromium_page, path, tmp_path)


def test_real_all_failed_and_secret_run_page(real_runs, chromium_page, tmp_path):
    """Every response a 500, with a secret header and URL password: the page says
    what failed, and neither secret appears anywhere in it."""
    run = real_runs["failed"]
    assert run.code == 0, run.stderr
    path = tmp_path / "failed.html"
    write_html(run.result, path)
    text = path.read_text()
    for secret in ("pw-s3cr3t", "tok-s3cr3t", "cookie-s3cr3t"):
        assert secret not in text, secret
    page = parse(text)
    assert "Every request failed (" in page.summary and "status 500: " in page.summary
    assert "100.00%" in text
    load_in_browser(chromium_page, path, tmp_path)
    assert json.dumps(run.result).count("s3cr3t") == 0        # the result itself (H1's redaction)
