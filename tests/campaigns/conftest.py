"""The live fixtures of the messaging tests (a real worker, the sandbox, a live server)."""

from tests.messaging.conftest import acme, live, shop, worker_process  # noqa: F401
