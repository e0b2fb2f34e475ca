"""`manage.py create_tenant` prints one JSON object; the key works; re-running fails cleanly."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenants.models import SenderNumber, Tenant


def run(*args):
    out = io.StringIO()
    call_command("create_tenant", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_creates_tenant_sender_and_working_key():
    result = run(
        "acme",
        "--name",
        "Acme Ltd",
        "--phone-number-id",
        "106540352242922",
        "--waba-id",
        "102290129340398",
        "--display-phone-number",
        "+15550783881",
        "--mps",
        "120",
    )
    assert result["tenant"] == "acme"
    tenant = Tenant.objects.get(slug="acme")
    sender = SenderNumber.objects.get(tenant=tenant)
    assert (
        sender.provider,
        sender.phone_number_id,
        sender.waba_id,
        sender.messages_per_second,
    ) == ("sandbox", "106540352242922", "102290129340398", 120)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {result['api_key']}")
    assert client.get("/api/v1/templates").status_code == 200


@pytest.mark.django_db
def test_rerun_with_same_slug_fails_cleanly_and_changes_nothing():
    run("acme", "--name", "Acme")
    with pytest.raises(CommandError, match="tenant_exists"):
        run("acme", "--name", "Acme again", "--phone-number-id", "other")
    assert Tenant.objects.count() == 1 and SenderNumber.objects.count() == 1


@pytest.mark.django_db
def test_meta_provider_needs_a_credential_variable():
    with pytest.raises(CommandError, match="access-token-env"):
        run("acme", "--name", "Acme", "--provider", "meta")
    result = run(
        "acme", "--name", "Acme", "--provider", "meta", "--access-token-env", "ACME_WA_TOKEN"
    )
    assert (
        SenderNumber.objects.get(tenant__slug=result["tenant"]).credentials_env == "ACME_WA_TOKEN"
    )


@pytest.mark.django_db
def test_invalid_slug_is_refused():
    with pytest.raises(CommandError):
        run("Not A Slug!", "--name", "x")
    assert not Tenant.objects.exists()
