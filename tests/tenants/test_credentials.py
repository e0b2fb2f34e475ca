"""Sender credentials live in the environment, never in the database, admin or logs; a sender
reads only a variable reserved for its tenant, and the sandbox provider only where the
deployment allows it."""

import pytest
from django.core.exceptions import ValidationError

from tenants.models import MissingCredential, credential_env_prefix
from whatsapp import Provider

from ..factories import SenderNumberFactory, TenantFactory


def meta_sender():
    tenant = TenantFactory(slug="acme")
    name = f"{credential_env_prefix(tenant)}TOKEN"
    assert name == "WAYPOST_ACME__TOKEN"
    return SenderNumberFactory(tenant=tenant, provider=Provider.META, credentials_env=name), name


@pytest.mark.django_db
def test_credential_is_read_from_the_named_variable(monkeypatch):
    sender, name = meta_sender()
    monkeypatch.setenv(name, "EAAG-secret-token")
    assert sender.credential() == "EAAG-secret-token"


@pytest.mark.django_db
def test_missing_variable_fails_loudly_without_leaking(monkeypatch):
    sender, name = meta_sender()
    monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredential, match=name):
        sender.credential()


@pytest.mark.django_db
def test_a_variable_not_reserved_for_the_tenant_is_never_read(monkeypatch):
    """A row that escaped the forms' rule (written before it, or by SQL) still cannot read
    another tenant's token or the process's own settings."""
    sender, _ = meta_sender()
    for name in ("PATH", "SECRET_KEY", "WAYPOST_GLOBEX__TOKEN"):
        monkeypatch.setenv(name, "someone-elses-secret")
        type(sender).objects.filter(pk=sender.pk).update(credentials_env=name)
        sender.refresh_from_db()
        with pytest.raises(MissingCredential, match="not one reserved for its tenant") as refused:
            sender.credential()
        assert "someone-elses-secret" not in str(refused.value)


@pytest.mark.django_db
def test_sandbox_sender_needs_no_variable():
    assert SenderNumberFactory(provider=Provider.SANDBOX).credential()


@pytest.mark.django_db
def test_the_sandbox_provider_only_where_the_deployment_allows_it(settings):
    sender = SenderNumberFactory(provider=Provider.SANDBOX)
    settings.WAYPOST_SANDBOX_PROVIDER = False
    with pytest.raises(MissingCredential, match="WAYPOST_SANDBOX_PROVIDER"):
        sender.credential()
    with pytest.raises(ValidationError) as refused:
        sender.full_clean()
    assert "provider" in refused.value.message_dict
    settings.WAYPOST_SANDBOX_PROVIDER = True
    sender.full_clean()


@pytest.mark.django_db
def test_admin_never_shows_the_secret(admin_client, monkeypatch):
    sender, name = meta_sender()
    monkeypatch.setenv(name, "EAAG-secret-token")
    change_page = admin_client.get(f"/admin/tenants/sendernumber/{sender.pk}/change/")
    assert name in change_page.content.decode()  # the variable's name, not its value
    for url in (
        f"/admin/tenants/sendernumber/{sender.pk}/change/",
        f"/admin/tenants/tenant/{sender.tenant.pk}/change/",
        "/admin/tenants/sendernumber/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert "EAAG-secret-token" not in page.content.decode()


@pytest.mark.django_db
def test_a_senders_rate_stays_under_the_operators_cap(settings):
    sender = SenderNumberFactory(provider=Provider.SANDBOX, messages_per_second=200)
    settings.WAYPOST_SENDER_MPS_CAP = 100
    with pytest.raises(ValidationError) as refused:
        sender.full_clean()
    assert "WAYPOST_SENDER_MPS_CAP" in refused.value.message_dict["messages_per_second"][0]
    sender.messages_per_second = 100
    sender.full_clean()


@pytest.mark.django_db
def test_senders_from_before_the_rules_are_listed_at_upgrade():
    """A database check (run by migrate): the rows the forms would refuse today."""
    from tenants.checks import senders_check

    assert senders_check(databases=["default"]) == []
    acme, globex = TenantFactory(slug="acme"), TenantFactory(slug="globex")
    SenderNumberFactory(tenant=acme, provider=Provider.META, credentials_env="ACME_WA_TOKEN")
    SenderNumberFactory(tenant=globex, waba_id="2000000042", phone_number_id="./1000000001")
    SenderNumberFactory(tenant=acme, waba_id="2000000042")
    found = {w.id: w.msg for w in senders_check(databases=["default"])}
    assert set(found) == {"tenants.W001", "tenants.W002", "tenants.W003"}
    assert "ACME_WA_TOKEN" in found["tenants.W003"] and "WAYPOST_ACME__" in found["tenants.W003"]
    assert "2000000042" in found["tenants.W002"]
    assert senders_check() == []  # only when a command asks for database checks


@pytest.mark.system
def test_migrate_on_a_new_database_passes_the_senders_check(tmp_path):
    """migrate runs database checks before it migrates: no senders table yet."""
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=django_settings.BASE_DIR,
        env=os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
            "CELERY_BROKER_URL": "memory://",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
