"""Rejected webhook calls (issue 18 §3.3): only superusers and ``tenants.all_tenants`` holders
see them, on every page; what is stored never holds a route token, and phone numbers in it
are masked."""

import json
import re

import pytest
from django.contrib.auth.models import Permission, User

from tenants.models import StaffScope
from webhooks.models import RejectedWebhook

from ..factories import SenderNumberFactory
from ..webhooks.helpers import envelope

pytestmark = pytest.mark.django_db
URL = "/admin/webhooks/rejectedwebhook/"
NUMBER = "4915112345678"


@pytest.fixture(autouse=True)
def record_every_refusal(monkeypatch):
    """Refused calls are recorded within a budget shared by the whole run (tests/webhooks/
    test_flood.py tests it); here every one is, so each test sees the row it caused."""
    from webhooks import views

    monkeypatch.setattr(views, "_may_record", lambda remote_addr: True, raising=False)


def staff(client, *codenames: str, tenants=()):
    user = User.objects.create_user(f"staff{User.objects.count()}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    if tenants:
        StaffScope.objects.create(user=user).tenants.add(*tenants)
    client.force_login(user)
    return client


@pytest.fixture
def rejected(db):
    return RejectedWebhook.objects.create(
        path="/webhooks/whatsapp", reason="missing_or_invalid_signature", body_prefix="{}"
    )


def pages(row) -> list[str]:
    return [URL, f"{URL}{row.pk}/change/", f"{URL}{row.pk}/history/"]


def test_scoped_staff_cannot_see_rejected_calls_even_with_the_view_permission(
    client, tenant_a, rejected
):
    scoped = staff(
        client,
        "view_rejectedwebhook",
        "delete_rejectedwebhook",
        tenants=[tenant_a.tenant],
    )
    for page in pages(rejected):
        assert scoped.get(page).status_code in (302, 403), page
    assert scoped.get(f"{URL}{rejected.pk}/delete/").status_code in (302, 403)
    assert URL not in scoped.get("/admin/").content.decode()


def test_staff_without_permissions_cannot_see_them(client, rejected):
    nobody = staff(client)
    for page in pages(rejected):
        assert nobody.get(page).status_code in (302, 403), page


@pytest.mark.parametrize("who", ["all_tenants", "superuser"])
def test_staff_who_see_every_tenant_review_them(client, admin_client, rejected, who):
    reviewer = (
        admin_client if who == "superuser" else staff(client, "all_tenants", "view_rejectedwebhook")
    )
    for page in pages(rejected):
        assert reviewer.get(page).status_code == 200, page
    assert URL in reviewer.get("/admin/").content.decode()
    # Read-only even for them: a record of what arrived.
    assert reviewer.post(f"{URL}{rejected.pk}/change/", {"path": "/x"}).status_code == 403


def test_a_route_token_is_never_stored(client, tenant_a, tenant_b, settings):
    """A sender's valid token with a body naming another tenant's number (403), a guessed
    token (401), and a valid token with a bad signature (401): the path is kept, the token
    cut to 4 characters."""
    mine = SenderNumberFactory(tenant=tenant_a.tenant, provider="360dialog")
    theirs = tenant_b.tenant.senders.get()
    forged = json.dumps(envelope(theirs.phone_number_id, waba=mine.waba_id)).encode()
    token = mine.webhook_token
    answer = client.post(f"/webhooks/360dialog/{token}", forged, "application/json")
    assert answer.status_code == 403
    guessed = "guessed-" + "x" * 36
    client.post(f"/webhooks/360dialog/{guessed}", b"{}", "application/json")
    settings.DIALOG360_WEBHOOK_SECRET = "route-secret"
    client.post(
        f"/webhooks/360dialog/{token}",
        forged,
        "application/json",
        HTTP_X_360DIALOG_SIGNATURE="sha256=" + "0" * 64,
    )
    rows = list(RejectedWebhook.objects.order_by("pk"))
    assert [r.reason for r in rows] == [
        "body_names_another_sender",
        "unknown_route_token",
        "missing_or_invalid_signature",
    ]
    assert [r.path for r in rows] == [
        f"/webhooks/360dialog/{token[:4]}…",
        "/webhooks/360dialog/gues…",
        f"/webhooks/360dialog/{token[:4]}…",
    ]
    for row in rows:
        stored = json.dumps([row.path, row.headers, row.body_prefix])
        assert token not in stored and guessed not in stored


def test_phone_numbers_are_masked_in_the_stored_excerpt_and_headers(client):
    message = {"from": NUMBER, "text": {"body": f"call me on +{NUMBER}"}}
    body = json.dumps(envelope("106540352242922", messages=[message], waba="102290129340398"))
    client.post(
        "/webhooks/whatsapp",
        body.encode(),
        "application/json",
        HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64,
        HTTP_USER_AGENT=f"forger/1.0 (+{NUMBER})",
    )
    [row] = RejectedWebhook.objects.all()
    stored = json.dumps([row.headers, row.body_prefix])
    assert NUMBER not in stored
    assert "491*******678" in row.body_prefix and "+491*******678" in row.headers["User-Agent"]


def test_a_number_cut_by_the_excerpts_end_is_masked_whole(client):
    lead = '{"pad": "'
    body = f'{lead}{"x" * (512 - len(lead) - 7)} {NUMBER}"}}'.encode()  # 6 digits before it
    client.post("/webhooks/whatsapp", body, "application/json", HTTP_X_HUB_SIGNATURE_256="x")
    [row] = RejectedWebhook.objects.all()
    assert len(row.body_prefix) == 512
    assert re.search(r"\d{4}", row.body_prefix) is None, row.body_prefix[-20:]
