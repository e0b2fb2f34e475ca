from ..messaging.conftest import live, worker_process  # noqa: F401
