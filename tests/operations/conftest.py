"""The integration fixtures of the send path (a real worker, the sandbox) are shared here."""

from ..messaging.conftest import live, worker_process  # noqa: F401
