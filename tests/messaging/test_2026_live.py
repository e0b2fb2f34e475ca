"""WhatsApp as it is in 2026, through the real endpoint and a real worker: users without a
phone number, sends to a business-scoped user id, marketing preferences, pricing.

The sandbox posts its signed webhooks to this test's live server; the worker processes them."""

import pytest

from messaging.models import Contact, InboundMessage, Message
from templates_registry.services import template_create

from .conftest import PROMO, message_body, promo_body, wait_for, wait_states

pytestmark = pytest.mark.redis


def test_a_message_from_a_user_without_a_phone_number_is_stored_and_listed(shop, live):
    answer = live.post(
        "/_sandbox/inbound",
        {
            "phone_number_id": shop.sender.phone_number_id,
            "from": "+4915199990001",
            "text": "Where is my order?",
            "username": True,
        },
    ).json()
    assert answer["hidden_number"]
    stored = wait_for(lambda: InboundMessage.objects.filter(wamid=answer["id"]).first())
    assert (stored.contact.wa_id, stored.contact.user_id) == ("", answer["user_id"])
    [item] = shop.client.get("/api/v1/inbound").json()["results"]
    assert (item["wa_id"], item["user_id"], item["text"]) == (
        "",
        answer["user_id"],
        "Where is my order?",
    )
    assert item["username"].startswith("@")


def test_a_user_known_only_by_bsuid_is_messaged_end_to_end(shop, live):
    user_id = live.post(
        "/_sandbox/inbound",
        {
            "phone_number_id": shop.sender.phone_number_id,
            "from": "+4915199990002",
            "text": "Hi",
            "username": True,
        },
    ).json()["user_id"]
    body = message_body() | {"recipient": user_id}
    del body["to"]
    response = shop.client.post(
        "/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="bsuid-1"
    )
    assert response.status_code == 202, response.content
    assert (response.json()["to"], response.json()["recipient"]) == ("", user_id)
    message_id = response.json()["id"]
    wait_states([message_id], {"delivered"}, timeout=30)
    [record] = live.get(
        "/_sandbox/messages", params={"biz_opaque_callback_data": message_id}
    ).json()["data"]
    assert (record["user_id"], record["by_phone"]) == (user_id, False)
    message = Message.objects.get(pk=message_id)
    assert message.recipient_user_id == user_id and message.pricing_type == "regular"


def test_both_identifiers_are_refused_together_and_a_bsuid_is_validated(shop):
    both = message_body() | {"recipient": "US.13491208655302741918"}
    response = shop.client.post("/api/v1/messages", both, format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "recipient_ambiguous"
    bad = message_body() | {"recipient": "not-a-bsuid"}
    del bad["to"]
    response = shop.client.post("/api/v1/messages", bad, format="json", HTTP_IDEMPOTENCY_KEY="c")
    assert response.json()["error"]["code"] == "recipient_invalid"


def test_stop_refuses_marketing_and_lets_utility_through(shop, live):
    number = "+4915199990003"
    template_create(tenant=shop.tenant, definition=PROMO)
    live.post(
        "/_sandbox/user_preferences",
        {"phone_number_id": shop.sender.phone_number_id, "from": number, "value": "stop"},
    )
    wait_for(
        lambda: Contact.objects.filter(
            tenant=shop.tenant, wa_id=number[1:], marketing_stopped_at__isnull=False
        ).exists()
    )
    promo = promo_body(number)
    marketing = shop.client.post("/api/v1/messages", promo, format="json", HTTP_IDEMPOTENCY_KEY="m")
    utility = shop.client.post(
        "/api/v1/messages", message_body(to=number), format="json", HTTP_IDEMPOTENCY_KEY="u"
    )
    ids = [marketing.json()["id"], utility.json()["id"]]
    states = wait_states(ids, {"rejected", "delivered"}, timeout=30)
    assert states == {ids[0]: "rejected", ids[1]: "delivered"}
    refused = shop.client.get(f"/api/v1/messages/{ids[0]}").json()
    assert refused["error"]["code"] == "marketing_stopped"
    live.post(
        "/_sandbox/user_preferences",
        {"phone_number_id": shop.sender.phone_number_id, "from": number, "value": "resume"},
    )
    wait_for(
        lambda: Contact.objects.filter(
            tenant=shop.tenant, wa_id=number[1:], marketing_stopped_at__isnull=True
        ).exists()
    )


def test_pricing_is_recorded_on_every_delivered_message_and_counted(shop):
    ids = [
        shop.client.post(
            "/api/v1/messages",
            message_body(to=f"+4915199991{i:03d}", order=f"P-{i}"),
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"p-{i}",
        ).json()["id"]
        for i in range(5)
    ]
    wait_states(ids, {"delivered"}, timeout=30)
    wait_for(lambda: not Message.objects.filter(pk__in=ids, pricing_type="").exists())
    priced = Message.objects.filter(pk__in=ids)
    assert {(m.pricing_type, m.pricing_category, m.pricing_model) for m in priced} == {
        ("regular", "utility", "PMP")
    }
    report = shop.client.get("/api/v1/reports/pricing").json()
    assert (report["billable"], report["free"]) == (5, 0)
    [row] = report["rows"]
    assert (row["category"], row["country"], row["sender"], row["billable"]) == (
        "utility",
        "DE",
        shop.sender.phone_number_id,
        5,
    )


OTP = {
    "name": "login_code",
    "language": "en_US",
    "category": "AUTHENTICATION",
    "components": [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
    ],
}


def test_an_expired_otp_never_reaches_the_provider(shop, live):
    from tenants.services import sender_set_status

    template_create(tenant=shop.tenant, definition=OTP)
    sender_set_status(sender=shop.sender, status="disabled", reason="test", by="test")
    code = [
        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "123456"}],
        },
    ]
    body = {
        "to": "+4915199992001",
        "template": {"name": "login_code", "language": "en_US", "components": code},
    }
    response = shop.client.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="o")
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert 590 <= (message.expires_at - message.created_at).total_seconds() <= 610  # 10 minutes
    # Ten minutes pass while the sender is stopped; then it is resumed.
    Message.objects.filter(pk=message.pk).update(expires_at=message.created_at)
    sender_set_status(sender=shop.sender, status="active", reason="test", by="test")
    wait_states([str(message.pk)], {"expired"}, timeout=20)
    detail = shop.client.get(f"/api/v1/messages/{message.pk}").json()
    assert detail["error"]["code"] == "expired"
    assert "submit_started" not in [e["type"] for e in detail["events"]]
    found = live.get("/_sandbox/messages", params={"biz_opaque_callback_data": str(message.pk)})
    assert found.json()["count"] == 0
