"""Fixtures of the report tests."""
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
