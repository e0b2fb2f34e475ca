"""The tenant settings API, callback destinations, and the outbox written with the changes that
cause it (no deliverer here)."""

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from callbacks.models import CallbackEvent
from callbacks.services import Item, callbacks_enqueue, check_destination
from core.errors import ValidationFailed
from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.inbound import statuses_apply
from messaging.track.ledger import NewEvent, record
from whatsapp.reports import StatusReport

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db
URL = "/api/v1/tenant"


def patch(tenant_client, data):
    return tenant_client.client.patch(URL, data, format="json")


def test_get_and_patch_the_tenants_own_settings(tenant_a):
    data = tenant_a.client.get(URL).json()
    assert data["slug"] == tenant_a.tenant.slug and data["stall_sent_seconds"] == 900
    answer = patch(
        tenant_a,
        {
            "callback_url": "http://127.0.0.1:9/hook",
            "callback_events": ["message.delivered", "message.failed"],
            "stall_sent_seconds": 600,
            "ambiguous_policy": "resend",
        },
    )
    assert answer.status_code == 200, answer.json()
    data = answer.json()
    assert data["callback_secret"].startswith("whsec_")  # made with the first URL, shown once
    assert (data["stall_sent_seconds"], data["ambiguous_policy"]) == (600, "resend")
    assert "callback_secret" not in tenant_a.client.get(URL).json()
    rotated = patch(tenant_a, {"rotate_callback_secret": True}).json()
    assert rotated["callback_secret"] != data["callback_secret"]
    assert rotated["callback_secrets"] == 2  # the old one keeps signing during the overlap


def test_an_unknown_event_type_is_a_400_naming_it(tenant_a):
    answer = patch(tenant_a, {"callback_events": ["message.delivered", "message.teleported"]})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "callback_event_unknown" and "message.teleported" in error["message"]


def test_invalid_settings_are_400s(tenant_a):
    assert patch(tenant_a, {"max_attempts": 0}).status_code == 400
    assert patch(tenant_a, {"param_policy": "ignore"}).status_code == 400
    assert patch(tenant_a, {"callback_url": "ftp://example.com"}).status_code == 400


def test_another_tenants_settings_are_out_of_reach(tenant_a, tenant_b):
    patch(tenant_a, {"callback_url": "http://127.0.0.1:9/a"})
    assert tenant_b.client.get(URL).json()["callback_url"] == ""


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8000/hook", "callback_url_private"),
        ("http://localhost/hook", "callback_url_private"),
        ("http://169.254.169.254/latest/meta-data", "callback_url_private"),
        ("http://10.1.2.3/hook", "callback_url_private"),
        ("http://[::1]/hook", "callback_url_private"),
        ("http://192.168.0.10/hook", "callback_url_private"),
        # The same addresses in the spellings a resolver also takes.
        ("http://0.0.0.0/hook", "callback_url_private"),
        ("http://2130706433/hook", "callback_url_private"),  # 127.0.0.1 as one number
        ("http://0x7f.0.0.1/hook", "callback_url_private"),
        ("http://127.1/hook", "callback_url_private"),
        ("http://[::ffff:169.254.169.254]/hook", "callback_url_private"),
        ("http://[64:ff9b::7f00:1]/hook", "callback_url_private"),  # NAT64 of 127.0.0.1
        ("http://[2002:7f00:1::]/hook", "callback_url_private"),  # 6to4 of 127.0.0.1
        ("http://[::7f00:1]/hook", "callback_url_private"),  # IPv4-compatible 127.0.0.1
        ("http://[::ffff:0:7f00:1]/hook", "callback_url_private"),  # IPv4-translated
        ("http://[64:ff9b:1::a00:1]/hook", "callback_url_private"),  # local-use NAT64
        ("http://[fec0::1]/hook", "callback_url_private"),  # site-local
        ("http://[fd00::1]/hook", "callback_url_private"),
        ("http://[fe80::1]/hook", "callback_url_private"),
        ("http://100.64.0.1/hook", "callback_url_private"),  # carrier-grade NAT
        ("http://224.0.0.1/hook", "callback_url_private"),
        ("gopher://example.com/", "callback_url_invalid"),
        ("http:///hook", "callback_url_invalid"),
        ("file:///etc/passwd", "callback_url_invalid"),
    ],
)
def test_destinations_waypost_must_not_call_are_refused(settings, url, code):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationFailed) as refused:
        check_destination(url)
    assert refused.value.code == code


def test_https_is_required_when_configured(settings):
    settings.WAYPOST_CALLBACK_REQUIRE_HTTPS = True
    with pytest.raises(ValidationFailed) as refused:
        check_destination("http://127.0.0.1/hook")
    assert refused.value.code == "callback_url_insecure"


def test_only_subscribed_events_are_written(tenant_a):
    patch(tenant_a, {"callback_url": "http://127.0.0.1:9/a", "callback_events": ["message.read"]})
    written = callbacks_enqueue(
        tenant_id=tenant_a.tenant.pk,
        items=[Item("message.read", {"x": 1}), Item("message.delivered", {"x": 2})],
    )
    assert written == 1 and CallbackEvent.objects.get().type == "message.read"


def test_a_state_change_writes_its_callback_in_the_same_transaction(tenant_a):
    patch(
        tenant_a,
        {
            "callback_url": "http://127.0.0.1:9/a",
            "callback_events": ["message.delivered", "message.read"],
        },
    )
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["id"]
    message = Message.objects.get(pk=message_id)
    record([NewEvent(message.pk, EventType.ACCEPTED, EventSource.PROVIDER)])
    Message.objects.filter(pk=message.pk).update(provider_message_id="wamid.cb")
    for status in ("read", "delivered", "read"):  # out of order, with a duplicate
        statuses_apply(
            reports=[
                StatusReport(
                    phone_number_id=message.sender.phone_number_id,
                    wamid="wamid.cb",
                    status=status,
                    occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
                )
            ]
        )
    [event] = CallbackEvent.objects.all()  # read outranks delivered: one change, one callback
    assert event.type == "message.read" and event.sequence == 1
    data = event.payload["data"]
    assert (data["message_id"], data["state"], data["metadata"]) == (
        message_id,
        "read",
        {"order": "A-1"},
    )


def test_signatures_verify_with_the_standard_webhooks_library(tenant_a):
    from callbacks.services import active_secrets, endpoint_get

    first = patch(tenant_a, {"callback_url": "http://127.0.0.1:9/a"}).json()["callback_secret"]
    second = patch(tenant_a, {"rotate_callback_secret": True}).json()["callback_secret"]
    endpoint = endpoint_get(tenant=tenant_a.tenant)
    signers = [Webhook(s) for s in active_secrets(endpoint)]
    now = datetime.now(UTC)
    payload = '{"type":"message.read","timestamp":"x","data":{}}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(s.sign("msg_1", now, payload) for s in signers),
    }
    # During the rotation a client holding either secret verifies the same delivery.
    assert Webhook(first).verify(payload, headers)["type"] == "message.read"
    assert Webhook(second).verify(payload, headers)["type"] == "message.read"
