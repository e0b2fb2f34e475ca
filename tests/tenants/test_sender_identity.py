"""A sender is its tenant's own: its credential variable is one reserved for the tenant, Meta's
ids are digits, a WABA belongs to one tenant, and only a superuser points a sender at any of
them (issue 18 §3.1). Each test tries the attack from the issue: staff scoped to tenant A
setting ``phone_number_id="./<B's id>"``, ``credentials_env="PATH"`` or B's ``waba_id``."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from tenants.models import (
    SenderNumber,
    StaffScope,
    Tenant,
    credential_env_allowed,
    credential_env_prefix,
)
from whatsapp import Provider

from ..factories import SenderNumberFactory, TenantFactory

pytestmark = pytest.mark.django_db
SENDERS = "/admin/tenants/sendernumber/"


def identity(sender: SenderNumber) -> tuple:
    sender.refresh_from_db()
    return (
        sender.tenant_id,
        sender.provider,
        sender.phone_number_id,
        sender.waba_id,
        sender.credentials_env,
    )


@pytest.fixture
def staff_a(client, tenant_a):
    """Staff scoped to tenant A who may view and change tenants and senders (not superuser)."""
    user = User.objects.create_user("staff-a", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "view_tenant",
                "change_tenant",
                "view_sendernumber",
                "change_sendernumber",
            ]
        )
    )
    StaffScope.objects.create(user=user).tenants.add(tenant_a.tenant)
    client.force_login(user)
    return client


# --- the rule -------------------------------------------------------------------------------


def test_the_reserved_prefix_follows_the_slug():
    assert credential_env_prefix(Tenant(slug="acme")) == "WAYPOST_ACME__"
    assert credential_env_prefix(Tenant(slug="acme-eu")) == "WAYPOST_ACME_EU__"


@pytest.mark.parametrize(
    ("slug", "name", "allowed"),
    [
        ("acme", "WAYPOST_ACME__ACCESS_TOKEN", True),
        ("acme", "WAYPOST_ACME__TOKEN2", True),
        ("acme-eu", "WAYPOST_ACME_EU__KEY", True),
        ("acme", "PATH", False),
        ("acme", "SECRET_KEY", False),
        ("acme", "DATABASE_URL", False),
        ("acme", "WAYPOST_GLOBEX__ACCESS_TOKEN", False),  # another tenant's
        ("acme", "WAYPOST_ACME__", False),  # no name
        ("acme", "WAYPOST_ACME__X__TOKEN", False),  # would be acme--x's: WAYPOST_ACME__X__
        ("acme", "WAYPOST_ACME___TOKEN", False),
        ("acme", "WAYPOST_ACME__TOKEN_", False),
        ("acme", "WAYPOST_ACME__token", False),
        ("acme", "WAYPOST_ACME_EU__KEY", False),  # acme-eu's
        ("acme-eu", "WAYPOST_ACME__EU_KEY", False),  # acme's
        ("acme--x", "WAYPOST_ACME__X__TOKEN", True),
    ],
)
def test_which_variables_a_tenant_may_name(slug, name, allowed):
    assert credential_env_allowed(Tenant(slug=slug), name) is allowed


def test_no_name_is_reserved_for_two_tenants():
    """However slugs are chosen, a name allowed for one tenant is allowed for no other."""
    slugs = ["acme", "acme-x", "acme--x", "acme-x-y", "acme--x-y", "acme-x--y", "a-cme", "acm"]
    names = [
        "WAYPOST_ACME__X__TOKEN",
        "WAYPOST_ACME_X__Y__TOKEN",
        "WAYPOST_ACME__X_Y__TOKEN",
        "WAYPOST_ACME_X_Y__TOKEN",
        "WAYPOST_ACME__X_Y_TOKEN",
        "WAYPOST_A_CME__TOKEN",
    ]
    for name in names:
        owners = [s for s in slugs if credential_env_allowed(Tenant(slug=s), name)]
        assert len(owners) <= 1, (name, owners)


# --- model validation -----------------------------------------------------------------------


def test_a_variable_outside_the_tenants_names_is_refused_naming_the_prefix(tenant_a, tenant_b):
    sender = tenant_a.tenant.senders.get()
    for name in ("PATH", "SECRET_KEY", "WAYPOST_GLOBEX__ACCESS_TOKEN"):
        sender.credentials_env = name
        with pytest.raises(ValidationError) as refused:
            sender.full_clean()
        [message] = refused.value.message_dict["credentials_env"]
        assert name in message and "WAYPOST_ACME__<NAME>" in message
    sender.credentials_env = "WAYPOST_ACME__ACCESS_TOKEN"
    sender.full_clean()


def test_a_provider_that_needs_a_credential_must_name_one(tenant_a):
    sender = tenant_a.tenant.senders.get()
    sender.provider, sender.credentials_env = Provider.META, ""
    with pytest.raises(ValidationError) as refused:
        sender.full_clean()
    assert "WAYPOST_ACME__ACCESS_TOKEN" in refused.value.message_dict["credentials_env"][0]


@pytest.mark.parametrize(
    "spelling", ["./{id}", "{id}/", "0{id}", "{id}\n", " {id}", "{id}?x=1", "1e5", "", "1" * 33]
)
def test_meta_ids_are_digits_only(tenant_a, tenant_b, spelling):
    theirs = tenant_b.tenant.senders.get()
    sender = tenant_a.tenant.senders.get()
    sender.phone_number_id = spelling.format(id=theirs.phone_number_id)
    sender.waba_id = spelling.format(id=theirs.waba_id)
    with pytest.raises(ValidationError) as refused:
        sender.full_clean()
    assert {"phone_number_id", "waba_id"} <= set(refused.value.message_dict)


def test_a_waba_belongs_to_one_tenant(tenant_a, tenant_b):
    mine = tenant_a.tenant.senders.get()
    theirs = tenant_b.tenant.senders.get()
    second = SenderNumber(
        tenant=tenant_a.tenant,
        provider=Provider.SANDBOX,
        phone_number_id="1234567890",
        waba_id=mine.waba_id,  # the tenant's own WABA, shared by its senders: fine
    )
    second.full_clean()
    second.waba_id = theirs.waba_id
    with pytest.raises(ValidationError) as refused:
        second.full_clean()
    assert "another tenant" in refused.value.message_dict["waba_id"][0]
    # Nor by moving one of B's senders to A while B keeps the WABA.
    SenderNumberFactory(tenant=tenant_b.tenant, waba_id=theirs.waba_id)
    theirs.tenant = tenant_a.tenant
    with pytest.raises(ValidationError, match="another tenant"):
        theirs.full_clean()


# --- the admin: scoped staff -----------------------------------------------------------------


def test_scoped_staff_cannot_point_their_sender_at_another_tenants_number(
    staff_a, tenant_a, tenant_b
):
    """The attack from the issue, on the sender's own page: the forged fields are read-only
    for staff, so the POST saves what they may change and nothing else."""
    mine = tenant_a.tenant.senders.get()
    theirs = tenant_b.tenant.senders.get()
    before = identity(mine)
    page = staff_a.get(f"{SENDERS}{mine.pk}/change/").content.decode()
    for field in ("tenant", "provider", "phone_number_id", "waba_id", "credentials_env"):
        assert f'name="{field}"' not in page, field
    answer = staff_a.post(
        f"{SENDERS}{mine.pk}/change/",
        {
            "tenant": tenant_b.tenant.pk,
            "provider": Provider.META,
            "phone_number_id": f"./{theirs.phone_number_id}",
            "waba_id": theirs.waba_id,
            "credentials_env": "PATH",
            "display_phone_number": "+15550009999",
            "messages_per_second": "40",
        },
    )
    assert answer.status_code == 302
    assert identity(mine) == before
    assert (mine.display_phone_number, mine.messages_per_second) == ("+15550009999", 40)


def test_scoped_staff_cannot_forge_them_through_the_tenants_sender_inline(
    staff_a, tenant_a, tenant_b
):
    tenant = tenant_a.tenant
    mine = tenant.senders.get()
    theirs = tenant_b.tenant.senders.get()
    before = identity(mine)
    page = staff_a.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    for field in ("provider", "phone_number_id", "waba_id", "credentials_env"):
        assert f'name="senders-0-{field}"' not in page, field
    form = {
        k: v
        for k, v in model_to_dict(tenant).items()
        if v is not None and k not in ("id", "active")
    }
    form["marketing_limit_retry"] = ""
    answer = staff_a.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            **form,
            "name": "Acme renamed",
            "senders-TOTAL_FORMS": "2",
            "senders-INITIAL_FORMS": "1",
            "senders-MIN_NUM_FORMS": "0",
            "senders-MAX_NUM_FORMS": "1000",
            "senders-0-id": str(mine.pk),
            "senders-0-tenant": str(tenant.pk),
            "senders-0-provider": Provider.META,
            "senders-0-phone_number_id": f"./{theirs.phone_number_id}",
            "senders-0-waba_id": theirs.waba_id,
            "senders-0-credentials_env": "PATH",
            "senders-0-display_phone_number": "+15550001111",
            "senders-0-messages_per_second": "80",
            # ... and a second sender of their own, on B's WABA, reading SECRET_KEY.
            "senders-1-tenant": str(tenant.pk),
            "senders-1-provider": Provider.META,
            "senders-1-phone_number_id": "5550001",
            "senders-1-waba_id": theirs.waba_id,
            "senders-1-credentials_env": "SECRET_KEY",
            "senders-1-display_phone_number": "+15550002222",
            "senders-1-messages_per_second": "80",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert Tenant.objects.get(pk=tenant.pk).name == "Acme renamed"
    assert identity(mine) == before
    assert tenant.senders.count() == 1


def test_only_a_superuser_adds_a_sender(staff_a, tenant_a):
    """Even with Django's add permission: a new sender is a new identity and credential."""
    User.objects.get(username="staff-a").user_permissions.add(
        Permission.objects.get(codename="add_sendernumber")
    )
    assert staff_a.get(f"{SENDERS}add/").status_code == 403
    answer = staff_a.post(
        f"{SENDERS}add/",
        {
            "tenant": tenant_a.tenant.pk,
            "provider": Provider.META,
            "phone_number_id": "5550001",
            "waba_id": tenant_a.tenant.senders.get().waba_id,
            "credentials_env": "WAYPOST_ACME__ACCESS_TOKEN",
            "messages_per_second": "80",
        },
    )
    assert answer.status_code == 403
    assert tenant_a.tenant.senders.count() == 1


def test_the_slug_behind_the_reserved_names_is_read_only_for_staff(staff_a, tenant_a):
    page = staff_a.get(f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/").content.decode()
    assert 'name="slug"' not in page


def test_a_sender_saved_before_the_rules_says_why_it_cannot_be_saved(staff_a, tenant_a):
    """A variable named before the convention: staff cannot change it (read-only), so the
    objection is shown on the form — not a server error — and nothing is saved."""
    mine = tenant_a.tenant.senders.get()
    SenderNumber.objects.filter(pk=mine.pk).update(
        provider=Provider.META, credentials_env="ACME_WA_TOKEN"
    )
    answer = staff_a.post(
        f"{SENDERS}{mine.pk}/change/",
        {"display_phone_number": "+15550001111", "messages_per_second": "40"},
    )
    assert answer.status_code == 200
    assert "credential variable: ACME_WA_TOKEN is not reserved for tenant acme" in (
        answer.content.decode()
    )
    mine.refresh_from_db()
    assert mine.messages_per_second == 80


# --- the admin: superusers -------------------------------------------------------------------


def test_a_superuser_is_held_to_the_same_rules(admin_client, tenant_a, tenant_b):
    mine = tenant_a.tenant.senders.get()
    theirs = tenant_b.tenant.senders.get()
    before = identity(mine)
    data = {
        "tenant": tenant_a.tenant.pk,
        "provider": Provider.META,
        "phone_number_id": f"./{theirs.phone_number_id}",
        "waba_id": theirs.waba_id,
        "credentials_env": "PATH",
        "display_phone_number": "+15550001111",
        "messages_per_second": "80",
    }
    refused = admin_client.post(f"{SENDERS}{mine.pk}/change/", data)
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "Digits only" in text
    assert "belongs to another tenant" in text
    assert "PATH is not reserved for tenant acme" in text and "WAYPOST_ACME__" in text
    assert identity(mine) == before
    done = admin_client.post(
        f"{SENDERS}{mine.pk}/change/",
        {**data, "phone_number_id": "1234567890", "waba_id": mine.waba_id}
        | {"credentials_env": "WAYPOST_ACME__ACCESS_TOKEN"},
    )
    assert done.status_code == 302
    mine.refresh_from_db()
    assert (mine.provider, mine.phone_number_id, mine.credentials_env) == (
        "meta",
        "1234567890",
        "WAYPOST_ACME__ACCESS_TOKEN",
    )


def test_a_superuser_adds_a_sender_sharing_the_tenants_waba(admin_client, tenant_a):
    waba = tenant_a.tenant.senders.get().waba_id
    answer = admin_client.post(
        f"{SENDERS}add/",
        {
            "tenant": tenant_a.tenant.pk,
            "provider": Provider.META,
            "phone_number_id": "5550001",
            "waba_id": waba,
            "credentials_env": "WAYPOST_ACME__SECOND_NUMBER",
            "messages_per_second": "80",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert tenant_a.tenant.senders.filter(waba_id=waba).count() == 2


def test_factories_make_senders_that_pass_the_rules():
    tenant = TenantFactory(slug="factory-made")
    for sender in (SenderNumberFactory(tenant=tenant), SenderNumberFactory(tenant=tenant)):
        sender.full_clean()
