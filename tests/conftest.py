"""Shared pytest fixtures."""
import os
import sys

import pytest

from surge.serve.server import ServeProcess

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from nginx import Nginx, TlsListener, nginx_available  # noqa: E402

from tests.support.tls import CertPair, TlsCerts, make_certs  # noqa: E402

# A test that uses one of these fixtures needs that outside program: mark it so
# `pytest -m "not nginx"` (or "not chromium", "not prometheus") deselects it.
MARK_BY_FIXTURE = {"nginx": "nginx", "nginx_tls": "nginx",
                   "prometheus_server": "prometheus", "chromium_page": "chromium"}


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


# ---- nginx: the real target (Debian nginx-light) ------------------------------------
# `nginx` is one plain nginx per test module (bench/nginx.py): .url, .requests()
# (stub_status, the ground truth), .status(). Skips with the reason when nginx is absent.

def _skip_without_nginx() -> None:
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")


@pytest.fixture(scope="module")
def nginx():
    _skip_without_nginx()
    with Nginx() as server:
        yield server


# ---- TLS: certificates and nginx over TLS -------------------------------------------
# tls_certs: one TlsCerts per session (tests/support/tls.py): .ca, .other_ca and the
# CertPairs (.cert, .key paths) leaf, wrong_name, expired, self_signed, untrusted, client.
#
# nginx_tls(cert="leaf", verify_client=False, protocols="TLSv1.3", session_tickets=True,
#           log=False, ipv6=False) -> a running Nginx with a TLS listener:
#   .tls_url ("https://127.0.0.1:PORT/"), .tls_url_for("localhost" | "::1"), .url (plain
#   http, same server), .requests() / .status() (plain stub_status: exact counts, TLS
#   requests included, "accepts" counts connections), .tls_log(at_least=0) (with log=True:
#   one dict per request: connection, connection_requests, status, protocol, cipher, curve,
#   reused "r"/".", client_verify; at_least=N waits up to 5 s for N lines, as nginx logs
#   a moment after the response is sent).
#   cert: a TlsCerts attribute name or a CertPair. verify_client: False, True (mTLS: a
#   client without a certificate from tls_certs.ca gets 400s) or "optional".
#   Servers are shared by the tests of a module that ask for the same options, so count
#   by differences of requests(). Skips with the reason when nginx is absent.

@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("tls-certs"))


@pytest.fixture(scope="module")
def nginx_tls(tls_certs):
    servers: dict[TlsListener, Nginx] = {}

    def start(cert: str | CertPair = "leaf", *, verify_client: bool | str = False,
              protocols: str = "TLSv1.3", session_tickets: bool = True,
              log: bool = False, ipv6: bool = False) -> Nginx:
        _skip_without_nginx()
        pair = cert if isinstance(cert, CertPair) else tls_certs.pair(cert)
        verify = {False: "off", True: "on"}.get(verify_client, verify_client)
        listener = TlsListener(cert=str(pair.cert), key=str(pair.key), protocols=protocols,
                               verify_client=verify,
                               client_ca=str(tls_certs.ca) if verify != "off" else None,
                               session_tickets=session_tickets, log=log, ipv6=ipv6)
        if listener not in servers:
            server = Nginx(tls=listener)
            server.start()
            servers[listener] = server
        return servers[listener]

    yield start
    for server in servers.values():
        server.stop()
