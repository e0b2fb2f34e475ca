"""The webhook endpoint under attack, end to end: the HTTP answer, then the processor over what
was stored. Nothing unsigned is processed, nothing crashes the processor, and nothing reaches
another tenant's messages.

(Also covered elsewhere: bad and missing signatures, a one-byte alteration and 413 —
tests/webhooks/test_endpoint.py; another tenant's number on the 360dialog route —
test_a_360dialog_route_cannot_speak_for_another_tenants_number.)"""

import json

import pytest

from messaging.models import Message
from sandbox import wire
from webhooks.models import RejectedWebhook, WebhookDelivery
from webhooks.services import deliveries_drain

from ..factories import SenderNumberFactory
from ..webhooks.helpers import envelope, sign, status
from ..webhooks.test_processing import make_message

pytestmark = pytest.mark.django_db
T0 = 1_750_030_000


@pytest.fixture
def mine():
    """Tenant A's accepted message, which no attack below may move."""
    sender = SenderNumberFactory(phone_number_id="pn-a", waba_id="waba-a")
    return make_message(sender, "wamid.A")


def post(client, body: bytes, *, signature: str | None = "sign", content_type="application/json"):
    headers = {}
    if signature == "sign":
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post("/webhooks/whatsapp", body, content_type=content_type, **headers)


def read_status_for(message, phone_number_id="pn-a") -> bytes:
    return json.dumps(
        envelope(
            phone_number_id,
            statuses=[status(message.provider_message_id, "read", T0, opaque=str(message.pk))],
            waba="waba-a",
        )
    ).encode()


def assert_untouched(message):
    message.refresh_from_db()
    assert message.state == "accepted"


def test_unsigned_or_wrongly_signed_bodies_are_401_and_never_processed(client, mine):
    body = read_status_for(mine)
    for signature in (None, "", "sha256=", "sha256=" + "0" * 64, sign(body, "guess"), "sha1=x"):
        assert post(client, body, signature=signature).status_code == 401
    assert post(client, body + b" ", signature=sign(body)).status_code == 401  # altered body
    assert not WebhookDelivery.objects.exists()
    assert RejectedWebhook.objects.count() == 5  # the two without a signature leave no row
    deliveries_drain()
    assert_untouched(mine)


def test_content_type_does_not_matter_the_signature_does(client, mine):
    body = read_status_for(mine)
    assert post(client, body, signature=None, content_type="text/plain").status_code == 401
    assert post(client, body, content_type="text/plain").status_code == 200
    deliveries_drain()
    mine.refresh_from_db()
    assert mine.state == "read"


HOSTILE = {
    "truncated": lambda good: good[: len(good) // 2],
    "deeply nested": lambda good: b'{"entry": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "not an object": lambda good: b"[1, 2, 3]",
    "entry is a string": lambda good: b'{"object": "whatsapp_business_account", "entry": "x"}',
    "changes of the wrong type": lambda good: json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": 1, "changes": {"a": 1}}]}
    ).encode(),
    "unknown object and field": lambda good: json.dumps(
        {"object": "instagram", "entry": [{"changes": [{"field": "mystery", "value": {}}]}]}
    ).encode(),
    "status with wrong types": lambda good: json.dumps(
        envelope(
            "pn-a",
            statuses=[{"id": 7, "status": ["read"], "timestamp": {"t": 1}, "recipient_id": None}],
        )
    ).encode(),
    "unknown status kind": lambda good: json.dumps(
        envelope("pn-a", statuses=[status("wamid.A", "teleported", T0)])
    ).encode(),
    "metadata missing": lambda good: json.dumps(
        wire.envelope("w", "messages", {"statuses": []})
    ).encode(),
    "invalid UTF-8": lambda good: b'{"entry": "\xff\xfe"}',
    "NUL inside strings": lambda good: json.dumps(
        envelope("pn-a", statuses=[status("wamid.\x00X", "read", T0, opaque="\x00")])
    ).encode(),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_signed_hostile_bodies_are_stored_answered_200_and_processed_without_a_crash(
    client, mine, case
):
    body = HOSTILE[case](read_status_for(mine))
    assert post(client, body).status_code == 200  # signed: Meta's, as far as we can tell
    counts = deliveries_drain()  # must not raise
    delivery = WebhookDelivery.objects.get()
    assert delivery.status in ("processed", "partial", "invalid"), (case, delivery.status)
    assert counts is not None
    assert_untouched(mine)


def test_a_signed_status_naming_another_tenants_number_does_not_touch_their_message(client, mine):
    attacker = SenderNumberFactory(phone_number_id="pn-b", waba_id="waba-b")
    # The attacker knows (or guesses) tenant A's wamid and message id, and names its own number.
    assert (
        post(client, read_status_for(mine, phone_number_id=attacker.phone_number_id)).status_code
        == 200
    )
    deliveries_drain()
    assert_untouched(mine)
    # ... and naming tenant A's number on the 360dialog route of its own sender is refused.
    dialog = SenderNumberFactory(provider="360dialog", phone_number_id="pn-c", waba_id="waba-c")
    answer = client.post(
        f"/webhooks/360dialog/{dialog.webhook_token}",
        read_status_for(mine),
        content_type="application/json",
    )
    assert answer.status_code in (200, 403)
    deliveries_drain()
    assert_untouched(mine)
    assert Message.objects.get(pk=mine.pk).state == "accepted"


def test_a_body_over_the_limit_is_413_before_it_is_read(client, mine, settings):
    settings.WEBHOOK_MAX_BYTES = 1024
    assert post(client, b"{" + b" " * 2048 + b"}").status_code == 413
    assert not WebhookDelivery.objects.exists()
