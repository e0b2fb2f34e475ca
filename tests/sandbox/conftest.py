import pytest

from ..support.servers import SandboxProcess, start_sink


@pytest.fixture(scope="session")
def sink():
    sink, server = start_sink()
    yield sink
    server.shutdown()


@pytest.fixture(scope="session")
def sandbox_process(sink):
    process = SandboxProcess(
        sink.url,
        approve_after=0,
        seed=7,
        sent_after_ms=10,
        delivered_after_ms=20,
        read_after_ms=30,
        webhook_retry_base_ms=50,
    )
    yield process
    process.stop()


@pytest.fixture
def sandbox(sandbox_process, sink):
    sandbox_process.restore()
    sink.clear()
    yield sandbox_process
    sandbox_process.restore()
