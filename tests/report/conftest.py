"""Fixtures of the report tests."""
import shutil
from pathlib import Path

import pytest

from tests.report import browser


@pytest.fixture(scope="session")
def chromium_page():
    """tests.report.browser (load, screenshot), for a test that opens a page in
    headless Chromium; skips, printing why, when Chromium is not installed.

    Its name marks every test that uses it, directly or through another fixture,
    `chromium` (tests/conftest.py MARK_BY_FIXTURE), so `pytest -m "not chromium"`
    deselects them instead of starting a browser."""
    if browser.find_chromium() is None:
        print("SKIP reason: chromium not installed (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return browser


_shared_prometheus = []        # the session's SharedPrometheus, once started


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory):
    """A real Prometheus shared by the session's tests (tests.report.test_prometheus.
    SharedPrometheus: `.base`, and `.target()` -> (port, job) to bind an exporter on),
    started when a test first asks for it; skips, printing why, when Prometheus is not
    installed.  One server, not one per test: each new one spends ~6 s before it
    scrapes at all.  Stopped once the tests of this folder are done (the hook below),
    not left scraping beside later folders' timing tests.  Marks its tests
    `prometheus` (tests/conftest.py MARK_BY_FIXTURE)."""
    from tests.report.test_prometheus import SharedPrometheus
    binary = shutil.which("prometheus")
    if binary is None:
        print("SKIP reason: prometheus not installed (apt-get install prometheus)")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    shared = SharedPrometheus(binary, tmp_path_factory.mktemp("prometheus"))
    _shared_prometheus.append(shared)
    yield shared
    shared.stop()


def pytest_runtest_teardown(item, nextitem):
    """After the last test of tests/report, stop the shared Prometheus (a later
    test that asks for it again gets a new one)."""
    here = Path(__file__).parent
    if _shared_prometheus and (nextitem is None or here not in Path(nextitem.path).parents):
        for shared in _shared_prometheus:
            shared.stop()
