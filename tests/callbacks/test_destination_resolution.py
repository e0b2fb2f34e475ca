"""Setting a callback URL resolves its name (the tenant's DNS) outside any transaction and one
at a time per tenant: one tenant's slow names cannot hold every web thread, nor row locks."""

import threading

import pytest
from django.db import connection

from callbacks import services
from operations.services import tenant_settings_update


@pytest.mark.django_db(transaction=True)
def test_a_slow_name_is_resolved_outside_the_transaction_one_at_a_time(
    tenant_a, tenant_b, monkeypatch
):
    resolving, release, seen = threading.Event(), threading.Event(), []

    def slow_check(url):
        seen.append(connection.in_atomic_block)
        if "slow" in url:
            resolving.set()
            release.wait(10)

    monkeypatch.setattr(services, "check_destination", slow_check)
    first = threading.Thread(
        target=tenant_settings_update,
        kwargs={"tenant": tenant_a.tenant, "data": {"callback_url": "https://slow.example/a"}},
    )
    first.start()
    try:
        assert resolving.wait(10)
        answer = tenant_a.client.patch(
            "/api/v1/tenant", {"callback_url": "https://slow.example/b"}, format="json"
        )
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "callback_url_busy"
        # Another tenant is not held up by this one's name.
        answer = tenant_b.client.patch(
            "/api/v1/tenant", {"callback_url": "https://fast.example/"}, format="json"
        )
        assert answer.status_code == 200, answer.json()
    finally:
        release.set()
        first.join(10)
    assert seen == [False, False]  # no transaction (no row lock) open while names resolved
    assert services.endpoint_get(tenant=tenant_a.tenant).url == "https://slow.example/a"
    assert services._resolving == {}
