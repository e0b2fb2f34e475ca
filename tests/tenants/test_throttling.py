"""Per-tenant API throttling: 429 with Retry-After and the API's error shape, per tenant."""

import pytest

from tests.conftest import make_tenant_client

URL = "/api/v1/templates"


@pytest.fixture
def slow(db):
    return make_tenant_client(slug="slow", api_requests_per_second=3)


def test_over_its_rate_a_tenant_gets_429_with_retry_after(slow):
    answers = [slow.client.get(URL) for _ in range(8)]
    codes = [a.status_code for a in answers]
    assert codes[:3] == [200, 200, 200]  # one second's worth at once
    assert 429 in codes[3:]
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert set(limited.json()["error"]) == {"code", "message", "details"}
    assert int(limited["Retry-After"]) >= 1


def test_one_tenants_limit_does_not_spend_anothers(slow, tenant_b):
    # The slow tenant until it is refused (on a loaded machine a request can take long enough
    # for its bucket to refill a token), then at once the other tenant, five times.
    codes = []
    while 429 not in codes[-1:] and len(codes) < 50:
        codes.append(slow.client.get(URL).status_code)
    assert codes[-1] == 429, codes
    assert [tenant_b.client.get(URL).status_code for _ in range(5)] == [200] * 5


def test_zero_means_no_limit(db):
    free = make_tenant_client(slug="free", api_requests_per_second=0)
    assert {free.client.get(URL).status_code for _ in range(20)} == {200}


def test_unauthenticated_requests_are_401_not_throttled(db):
    from rest_framework.test import APIClient

    assert {APIClient().get(URL).status_code for _ in range(5)} == {401}
