"""Shared pytest fixtures."""
import pytest

from surge.serve.server import ServeProcess


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
