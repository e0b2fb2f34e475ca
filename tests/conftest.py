"""Shared fixtures: API clients authenticated as a tenant, and a second tenant for isolation."""

import time
from dataclasses import dataclass

import pytest
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from core.db import is_transient
from devtools.servers import SandboxProcess, start_sink
from tenants.models import Tenant
from tenants.services import api_key_create

from .factories import SenderNumberFactory, TenantFactory

_flush = TransactionTestCase._fixture_teardown


def _flush_retrying(self):
    """A transactional test ends with a TRUNCATE of every table; the session's worker process
    may still be reading one (a drain the test started), and PostgreSQL then picks one of the two
    as a deadlock victim. Like any transient error, that is retried, not a failure."""
    for attempt in range(5):
        try:
            return _flush(self)
        except Exception as exc:
            if attempt == 4 or not is_transient(exc.__cause__ or exc):
                raise
            time.sleep(0.2 * (attempt + 1))


TransactionTestCase._fixture_teardown = _flush_retrying


@dataclass
class TenantClient:
    tenant: Tenant
    client: APIClient
    raw_key: str


def make_tenant_client(**tenant_fields) -> TenantClient:
    tenant = TenantFactory(**tenant_fields)
    SenderNumberFactory(tenant=tenant)
    raw = api_key_create(tenant=tenant).raw
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return TenantClient(tenant=tenant, client=client, raw_key=raw)


@pytest.fixture
def tenant_a(db) -> TenantClient:
    return make_tenant_client(slug="acme")


@pytest.fixture
def tenant_b(db) -> TenantClient:
    return make_tenant_client(slug="globex")


@pytest.fixture
def api(tenant_a) -> APIClient:
    return tenant_a.client


@pytest.fixture(scope="session")
def sink():
    """A webhook receiver in this process (a thread), shared by the session."""
    sink, server = start_sink()
    yield sink
    server.shutdown()


@pytest.fixture(scope="session")
def sandbox_process(sink):
    """One sandbox process for the session, reset before and after each test that uses it."""
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


@pytest.fixture(autouse=True)
def _no_outage_carried_over():
    """A test that took the broker (or Redis) down must not leave the next test's process
    skipping it for ``OUTAGE_SECONDS``."""
    from core.coordination import broker_outage
    from tenants.throttling import limiter_outage

    yield
    broker_outage.until = limiter_outage.until = 0.0
