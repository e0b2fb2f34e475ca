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


META_IDS = ("--phone-number-id", "106540352242922", "--waba-id", "102290129340398")


@pytest.mark.django_db
def test_meta_provider_needs_a_credential_variable():
    with pytest.raises(CommandError, match=r"access-token-env.*WAYPOST_ACME__ACCESS_TOKEN"):
        run("acme", "--name", "Acme", "--provider", "meta", *META_IDS)
    result = run(
        "acme",
        "--name",
        "Acme",
        "--provider",
        "meta",
        *META_IDS,
        "--access-token-env",
        "WAYPOST_ACME__ACCESS_TOKEN",
    )
    sender = SenderNumber.objects.get(tenant__slug=result["tenant"])
    assert sender.credentials_env == "WAYPOST_ACME__ACCESS_TOKEN"


@pytest.mark.django_db
def test_meta_provider_needs_metas_ids():
    with pytest.raises(CommandError, match="--phone-number-id and --waba-id are required"):
        run("acme", "--name", "Acme", "--provider", "meta", "--access-token-env", "WAYPOST_ACME__T")
    assert not Tenant.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["PATH", "SECRET_KEY", "WAYPOST_GLOBEX__ACCESS_TOKEN"])
def test_a_variable_not_reserved_for_the_tenant_is_refused(name):
    with pytest.raises(CommandError, match=rf"credentials_env: {name} .*WAYPOST_ACME__<NAME>"):
        run("acme", "--name", "Acme", "--provider", "meta", *META_IDS, "--access-token-env", name)
    assert not Tenant.objects.exists() and not SenderNumber.objects.exists()


@pytest.mark.django_db
def test_ids_must_be_digits_and_a_waba_one_tenants():
    theirs = run("globex", "--name", "Globex")["sender"]
    with pytest.raises(CommandError, match="phone_number_id: Digits only"):
        run("acme", "--name", "Acme", "--phone-number-id", f"./{theirs['phone_number_id']}")
    with pytest.raises(CommandError, match="waba_taken"):
        run("acme", "--name", "Acme", "--waba-id", theirs["waba_id"])
    assert list(Tenant.objects.values_list("slug", flat=True)) == ["globex"]


@pytest.mark.django_db
def test_sandbox_ids_default_to_digits_derived_from_the_slug():
    first, second = run("acme", "--name", "Acme"), run("globex", "--name", "Globex")
    for sender in (first["sender"], second["sender"]):
        assert sender["phone_number_id"].isdigit() and sender["waba_id"].isdigit()
    assert first["sender"]["phone_number_id"] != second["sender"]["phone_number_id"]
    assert first["sender"]["waba_id"] != second["sender"]["waba_id"]


@pytest.mark.django_db
def test_invalid_slug_is_refused():
    with pytest.raises(CommandError):
        run("Not A Slug!", "--name", "x")
    assert not Tenant.objects.exists()
