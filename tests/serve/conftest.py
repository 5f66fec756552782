"""Fixtures for the `surge serve` tests."""
import pytest

from tests.support.http_client import Client


@pytest.fixture
def client_factory():
    clients = []

    def connect(port: int) -> Client:
        clients.append(Client(port))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()
