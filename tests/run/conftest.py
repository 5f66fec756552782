import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from nginx import Nginx, nginx_available  # noqa: E402


@pytest.fixture(scope="module")
def nginx():
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    with Nginx() as server:
        yield server
