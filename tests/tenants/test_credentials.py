"""Sender credentials live in the environment, never in the database, admin or logs."""

import pytest

from tenants.models import MissingCredential
from whatsapp import Provider

from ..factories import SenderNumberFactory


@pytest.mark.django_db
def test_credential_is_read_from_the_named_variable(monkeypatch):
    sender = SenderNumberFactory(provider=Provider.META, credentials_env="ACME_TOKEN")
    monkeypatch.setenv("ACME_TOKEN", "EAAG-secret-token")
    assert sender.credential() == "EAAG-secret-token"


@pytest.mark.django_db
def test_missing_variable_fails_loudly_without_leaking(monkeypatch):
    sender = SenderNumberFactory(provider=Provider.META, credentials_env="ACME_TOKEN")
    monkeypatch.delenv("ACME_TOKEN", raising=False)
    with pytest.raises(MissingCredential, match="ACME_TOKEN"):
        sender.credential()


@pytest.mark.django_db
def test_sandbox_sender_needs_no_variable():
    assert SenderNumberFactory(provider=Provider.SANDBOX).credential()


@pytest.mark.django_db
def test_admin_never_shows_the_secret(admin_client, monkeypatch):
    monkeypatch.setenv("ACME_TOKEN", "EAAG-secret-token")
    sender = SenderNumberFactory(provider=Provider.META, credentials_env="ACME_TOKEN")
    change_page = admin_client.get(f"/admin/tenants/sendernumber/{sender.pk}/change/")
    assert "ACME_TOKEN" in change_page.content.decode()  # the variable's name, not its value
    for url in (
        f"/admin/tenants/sendernumber/{sender.pk}/change/",
        f"/admin/tenants/tenant/{sender.tenant.pk}/change/",
        "/admin/tenants/sendernumber/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert "EAAG-secret-token" not in page.content.decode()
