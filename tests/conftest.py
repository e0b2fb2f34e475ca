"""Shared fixtures: API clients authenticated as a tenant, and a second tenant for isolation."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create

from .factories import SenderNumberFactory, TenantFactory
from .support.servers import SandboxProcess, start_sink


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
