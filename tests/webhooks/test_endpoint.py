"""The webhook endpoint through real HTTP requests (Django's test client)."""

import json

import pytest

from webhooks.models import RejectedWebhook, WebhookDelivery

from .helpers import envelope, post, sign, status

pytestmark = pytest.mark.django_db
BODY = envelope("pn-1", statuses=[status("wamid.1", "sent", 1750030073)])


def test_handshake_answers_the_challenge(client):
    ok = client.get(
        "/webhooks/whatsapp",
        {
            "hub.mode": "subscribe",
            "hub.verify_token": "test-verify-token",
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200 and ok.content == b"1158201444"
    assert ok["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "x"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "x"},
        {"hub.challenge": "x"},
    ],
)
def test_handshake_refuses_anything_else(client, params):
    refused = client.get("/webhooks/whatsapp", params)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["error"]["code"] == "verification_failed"


def test_valid_signature_is_stored_and_answered_200(client):
    response = post(client, BODY)
    assert response.status_code == 200
    [delivery] = WebhookDelivery.objects.all()
    assert bytes(delivery.body) == json.dumps(BODY).encode()
    assert delivery.status == "pending" and delivery.headers["X-Hub-Signature-256"]


@pytest.mark.parametrize(
    ("case", "signature", "recorded"),
    [
        ("missing", "", False),  # refused before the body is read, and not recorded
        ("wrong secret", sign(json.dumps(BODY).encode(), "another-secret"), True),
        ("not sha256=", "md5=abc", True),
        ("non-ASCII", "sha256=\u00e9" + "0" * 63, True),  # compared as bytes, not a 500
    ],
)
def test_bad_signatures_are_401_and_nothing_is_processed(client, case, signature, recorded):
    response = post(client, BODY, signature=signature)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookDelivery.objects.exists()
    reasons = list(RejectedWebhook.objects.values_list("reason", flat=True))
    assert reasons == (["missing_or_invalid_signature"] if recorded else [])


def test_body_altered_by_one_byte_is_401(client):
    body = json.dumps(BODY).encode()
    signature = sign(body)
    altered = body.replace(b"1750030073", b"1750030074")
    assert post(client, None, raw=altered, signature=signature).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_oversize_body_is_413(client, settings):
    settings.WEBHOOK_MAX_BYTES = 100
    response = post(client, BODY)
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()


def test_signed_non_json_is_stored_answered_200_and_flagged(client):
    from webhooks.services import deliveries_drain

    assert post(client, None, raw=b"this is not json").status_code == 200
    deliveries_drain()
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.status, delivery.error) == ("invalid", "not JSON")


def test_the_same_body_twice_is_stored_once(client):
    assert post(client, BODY).status_code == 200
    assert post(client, BODY).status_code == 200
    assert WebhookDelivery.objects.count() == 1


def test_360dialog_route_needs_the_senders_token(client, settings):
    from ..factories import SenderNumberFactory

    sender = SenderNumberFactory(provider="360dialog")
    own = envelope(
        sender.phone_number_id,
        statuses=[status("wamid.1", "sent", 1750030073)],
        waba=sender.waba_id,
    )
    body = json.dumps(own).encode()
    url = f"/webhooks/360dialog/{sender.webhook_token}"
    assert client.post(url, body, content_type="application/json").status_code == 200
    assert (
        client.post(
            "/webhooks/360dialog/not-a-token", body, content_type="application/json"
        ).status_code
        == 401
    )
    settings.DIALOG360_WEBHOOK_SECRET = "partner-secret"
    assert client.post(url, body + b" ", content_type="application/json").status_code == 401
    import hashlib
    import hmac

    good = hmac.new(b"partner-secret", body + b"  ", hashlib.sha256).hexdigest()
    assert (
        client.post(
            url, body + b"  ", content_type="application/json", HTTP_X_360DIALOG_SIGNATURE=good
        ).status_code
        == 200
    )
    assert WebhookDelivery.objects.filter(provider="360dialog", sender=sender).count() == 2


def test_operators_see_deliveries_and_rejected_calls(client, admin_client):
    post(client, BODY)
    post(client, BODY, signature="sha256=00")
    deliveries = admin_client.get("/admin/webhooks/webhookdelivery/")
    rejected = admin_client.get("/admin/webhooks/rejectedwebhook/")
    assert deliveries.status_code == rejected.status_code == 200
    assert "pending" in deliveries.content.decode()
    assert "missing_or_invalid_signature" in rejected.content.decode()
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert "wamid.1" in page.content.decode()
    response = admin_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "replay", "_selected_action": [str(delivery.pk)]},
    )
    assert response.status_code == 302
    assert WebhookDelivery.objects.get().status == "processed"


def test_a_broker_that_does_not_answer_does_not_hold_the_endpoint(client, monkeypatch):
    """The processor's run is published from a thread of the process (the webhooks' doorbell
    is a background bell): deliveries are stored and answered while the broker hangs."""
    import threading
    import uuid

    from core import coordination
    from webhooks import services

    from ..waiting import wait_for

    broker_answers, attempts = threading.Event(), []

    def hanging_publish(queue, args, *, countdown):
        attempts.append(countdown)
        broker_answers.wait(30)
        coordination.broker_outage.failed()  # what a failed publish records
        return False

    monkeypatch.setattr(services._processing, "_publish", hanging_publish)
    # A bell of this test's own: earlier tests' rings (no worker runs here) are still pending.
    monkeypatch.setattr(services._processing, "name", f"webhooks-{uuid.uuid4().hex}")
    try:
        for i in range(5):
            body = envelope("pn-1", statuses=[status(f"wamid.{i}", "sent", 1750030073)])
            assert post(client, body).status_code == 200
        assert WebhookDelivery.objects.count() == 5
        assert not broker_answers.is_set()  # all five answered while the publish hangs
        wait_for(lambda: attempts, 10, "the publish attempt")
        assert len(attempts) == 1  # one run asked for: the other rings were absorbed
    finally:
        broker_answers.set()
    wait_for(lambda: coordination.broker_outage.ongoing, 10, "the failed publish recorded")


def test_a_360dialog_route_cannot_speak_for_another_tenants_number(client):
    """A tenant holding its own route token posts a STOP "from" another tenant's number: the
    body is refused (403, recorded for operators), nothing is stored or applied."""
    from messaging.models import Suppression
    from webhooks.services import deliveries_drain

    from ..factories import SenderNumberFactory

    attacker = SenderNumberFactory(provider="360dialog")
    victim = SenderNumberFactory(provider="360dialog")
    stop = stop_from("4915112345678", "wamid.stop")
    for forged in (
        envelope(victim.phone_number_id, messages=[stop], waba=attacker.waba_id),
        envelope(attacker.phone_number_id, messages=[stop], waba=victim.waba_id),
    ):
        response = client.post(
            f"/webhooks/360dialog/{attacker.webhook_token}",
            json.dumps(forged).encode(),
            content_type="application/json",
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "sender_mismatch"
    assert not WebhookDelivery.objects.exists()
    assert RejectedWebhook.objects.filter(reason="body_names_another_sender").count() == 2
    deliveries_drain()
    assert not Suppression.objects.exists()


def test_a_stored_360dialog_delivery_applies_only_its_senders_events(db):
    """Defence in depth (deliveries stored before the endpoint check, replays): processing
    turns events naming another sender into item errors."""
    from messaging.models import Suppression
    from webhooks.services import deliveries_process

    from ..factories import SenderNumberFactory

    attacker = SenderNumberFactory(provider="360dialog")
    victim = SenderNumberFactory(provider="360dialog")
    stop = stop_from("4915112345678", "wamid.stop2")
    body = json.dumps(envelope(victim.phone_number_id, messages=[stop])).encode()
    WebhookDelivery.objects.create(
        provider="360dialog",
        sender=attacker,
        body=body,
        body_sha256="x" * 64,
        headers={},
        received_at="2026-11-23T00:00:00Z",
    )
    counts = deliveries_process()
    assert counts["item_errors"] == 1 and counts["inbound"] == 0
    assert not Suppression.objects.exists()


def stop_from(wa_id: str, wamid: str) -> dict:
    """An inbound STOP: the message an attacker would forge to suppress someone's users."""
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": "1750091045",
        "type": "text",
        "text": {"body": "STOP"},
    }
