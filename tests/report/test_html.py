"""The HTML report: self-contained, ≤ 5 MB, opens in headless Chromium with no
console output, and every chart draws something."""
import re

import numpy as np
import pytest

from surge.report.html import MAX_REPORT_BYTES, render_html, write_html
from tests.report.synthetic import make_result

EXPECTED_CHARTS = ["throughput", "latency-over-time", "spectrum", "responses-errors", "client-cpu", "client-memory"]


def assert_self_contained(text: str):
    assert "plotly.js v" in text                     # the library itself, inlined
    assert not re.search(r"<script[^>]+src=", text), "external script"
    assert not re.search(r"<link[^>]+href=", text), "external stylesheet"
    # plotly.js's own source mentions URLs (links it can show); the page around it must not.
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    library = max(scripts, key=len)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text.replace(library, "")), "network reference"


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    """A 60-second open-model result with every optional part, its report, and a scratch folder."""
    tmp = tmp_path_factory.mktemp("html")
    result = make_result(60, seed=7)
    path = tmp / "report.html"
    size = write_html(result, path)
    return result, path, size, tmp


@pytest.fixture(scope="module")
def synthetic_page(synthetic_report, chromium_page):
    """The synthetic report as headless Chromium loaded it (the tests using it are marked chromium)."""
    _, path, _, tmp = synthetic_report
    return chromium_page.load(path, tmp / "profile")


def test_size_and_self_contained(synthetic_report):
    _, path, size, _ = synthetic_report
    assert size == path.stat().st_size <= MAX_REPORT_BYTES
    assert_self_contained(path.read_text())


def test_summary_comes_first_with_the_headline_numbers(synthetic_report):
    result, path, _, _ = synthetic_report
    text = path.read_text()
    summary_at = text.index("<h2>Headline</h2>")
    assert text.index("<h2>Objectives</h2>") < summary_at < text.index('id="throughput"')
    assert "1 of 2 objectives failed" in text and "PASS" in text and "FAIL" in text
    assert f"{result['totals']['requests']:,}" in text
    assert "p99 latency (corrected)" in text and "p99 latency (uncorrected)" in text
    assert "Synthetic CPU" in text and "http://127.0.0.1:8080/api?q=1" in text
    assert "<h2>Per scenario</h2>" in text and "<h2>Per step</h2>" in text and "checkout" in text


def test_opens_in_chromium_with_no_console_output_and_every_chart_rendered(synthetic_page):
    page = synthetic_page
    assert page.console == [], page.console
    assert page.status.get("errors") == "", page.status
    assert page.status["rendered"] == page.status["charts"] == str(len(EXPECTED_CHARTS))
    assert [box["id"] for box in page.status["layout"]] == EXPECTED_CHARTS
    assert page.dom.count('class="main-svg"') >= len(EXPECTED_CHARTS)      # plotly drew its SVGs


def coloured_pixels(image: np.ndarray) -> int:
    """Pixels of a saturated colour: traces are; text, grid, axes and backgrounds are grey."""
    rgb = image[..., :3].astype(int)
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 80).sum())


def test_screenshot_every_chart_area_is_drawn(synthetic_report, synthetic_page, chromium_page):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is in the test extras")
    _, path, _, tmp = synthetic_report
    page = synthetic_page
    height = int(float(page.status["page-height"])) + 20
    png = tmp / "shot.png"
    console = chromium_page.screenshot(path, png, tmp / "profile-shot", height)
    assert console == [], console
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[1] == chromium_page.WIDTH_PX and image.shape[0] >= height - 1
    for box in page.status["layout"]:
        x0, y0 = int(box["x"]), int(box["y"])
        area = image[y0:y0 + int(box["height"]), x0:x0 + int(box["width"])]
        assert area.size, box
        drawn = coloured_pixels(area)
        assert drawn > 400, f"chart {box['id']} looks blank ({drawn} coloured pixels)"
    # The measure is not fooled by the page itself: the left margin has no colour.
    assert coloured_pixels(image[:, :12]) == 0


REAL_RUNS = {
    "closed": ["-d", "2s", "-c", "8"],
    "open": ["-d", "2s", "--rate", "2k"],
    "stages": ["--stages", "1s:2,1s:6"],
}


@pytest.fixture(scope="module")
def real_runs():
    """One real run of each shape (its own `surge serve`), the three started at once:
    the tests read the shape of each result, never one run's numbers against another's,
    so sharing the CPU changes nothing they assert."""
    from surge.serve.server import ServeProcess
    from tests.helpers import run_surge_together
    servers = [ServeProcess().start() for _ in REAL_RUNS]
    try:
        runs = run_surge_together(*[["run", server.url, *args, "-w", "2", "-q"]
                                    for server, args in zip(servers, REAL_RUNS.values())])
    finally:
        for server in servers:
            server.stop()
    return dict(zip(REAL_RUNS, runs))


@pytest.mark.parametrize("kind, expected_text", [
    ("closed", ["Headline"]),
    ("open", ["p99 (uncorrected)", "target requests / s", "dropped"]),
    ("stages", ["<h2>Per step</h2>", "target connections", "1: 0-&gt;2 over 1s"]),
])
def test_real_run_report_renders(real_runs, chromium_page, tmp_path, kind, expected_text):
    """Real runs' reports (today's result shapes) in the browser."""
    run = real_runs[kind]
    assert run.code == 0, run.stderr
    path = tmp_path / f"{kind}.html"
    assert write_html(run.result, path) <= MAX_REPORT_BYTES
    text = path.read_text()
    assert_self_contained(text)
    for fragment in expected_text:
        assert fragment in text, fragment
    page = chromium_page.load(path, tmp_path / "profile")
    assert page.console == [] and page.status.get("errors") == "", (page.console, page.status)
    ids = [box["id"] for box in page.status["layout"]]
    # a real run's seconds say how many connections each opened: their chart follows the responses'
    assert ids == [*EXPECTED_CHARTS[:4], "connections", *EXPECTED_CHARTS[4:]]   # CPU and memory from resources.workers
    assert page.status["rendered"] == str(len(ids))


def test_an_hour_long_run_still_fits():
    result = make_result(3600, seed=3, rate=300, workers=32, steps=False, scenarios=False)
    page = render_html(result)
    assert len(page.encode()) <= MAX_REPORT_BYTES
    assert "Each point covers" in page
    assert "of 32 workers" in page                   # min / median / max, not 32 lines


def test_html_escapes_what_came_from_the_run():
    result = make_result(5, seed=1, model="closed")
    result["config"]["url"] = "http://127.0.0.1/<script>alert(1)</script>"
    result["objectives"][0]["name"] = "</script><b>x"
    page = render_html(result)
    assert "<script>alert(1)" not in page and "</script><b>x" not in page


def test_minimal_result_without_optional_parts():
    result = make_result(2, seed=1, model="closed", statuses=False, per_point_workers=False,
                         per_interval_hdr=False, objectives=False, steps=False, scenarios=False)
    result["resources"] = {"workers": []}
    result["timeseries"] = []
    page = render_html(result)
    assert 'data-charts="1"' in page                 # only the spectrum: no time series, no resources
    assert "<h2>Objectives</h2>" not in page


def test_banners_interrupted_dead_worker_and_saturated_client():
    result = make_result(10, seed=2)
    result["interrupted"] = True
    result["workers_failed"] = [{"index": 1, "cause": "killed by SIGKILL"}]
    for point in result["timeseries"]:
        point["workers"][0]["cpu_percent"] = 98.0
    page = render_html(result)
    assert "Interrupted" in page and "killed by SIGKILL" in page
    assert "Worker 0 used 98% of a CPU core" in page and "Worker 1 used" not in page


def test_no_saturation_claim_without_per_second_samples():
    """A whole-run average is mostly start-up CPU on a short run (issue 9 item 7): no claim from it."""
    from surge.report.numbers import saturated_workers
    result = make_result(10, seed=2, per_point_workers=False)
    result["resources"]["workers"] = [{"index": 0, "user_s": 2.0, "sys_s": 7.5, "max_rss_kb": 1},
                                      {"index": 1, "user_s": 1.0, "sys_s": 1.0, "max_rss_kb": 1}]
    assert saturated_workers(result) == []
