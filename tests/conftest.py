"""Shared pytest fixtures."""
import pytest

from surge.serve.server import ServeProcess

# A test that uses one of these fixtures needs that outside program: mark it so
# `pytest -m "not nginx"` (or "not chromium", "not prometheus") deselects it.
MARK_BY_FIXTURE = {"nginx": "nginx", "prometheus_server": "prometheus", "chromium_page": "chromium"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, marker in MARK_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


# ---- surge serve: the embedded target server --------------------------------------
# surge_server(**options) starts `python -m surge serve --port 0` with options as
# flags (body_size="4k", status=503, delay="50ms", close=True, workers=2) and
# returns the ServeProcess (.port, .url, .served(), .stop()); every server a test
# started is stopped at teardown.

@pytest.fixture
def surge_server():
    started = []

    def start(**options) -> ServeProcess:
        server = ServeProcess(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
