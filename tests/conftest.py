"""Shared fixtures: API clients authenticated as a tenant, and a second tenant for isolation."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create

from .factories import SenderNumberFactory, TenantFactory


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
