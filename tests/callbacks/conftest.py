import pytest

from ..messaging.conftest import live, worker_process  # noqa: F401
from .hostile import Hostile


@pytest.fixture
def hostile():
    """Start raw TCP receivers that answer as told (``tests.callbacks.hostile``); all stopped
    after the test."""
    servers = []

    def start(answer) -> Hostile:
        servers.append(Hostile(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
