"""2026 lifecycle through the real endpoint and worker: Marketing Messages Lite, a template
recategorized or edited by Meta, a number's throughput upgrade."""

import pytest

from messaging.models import Message
from templates_registry.models import MessageTemplate
from templates_registry.services import template_create
from tenants.models import SenderNumber

from .conftest import PROMO, message_body, promo_body, wait_for, wait_states

pytestmark = pytest.mark.redis


def test_marketing_goes_through_marketing_messages_lite_when_the_sender_says_so(shop, live):
    SenderNumber.objects.filter(pk=shop.sender.pk).update(marketing_messages_lite=True)
    template_create(tenant=shop.tenant, definition=PROMO)
    promo = promo_body("+4915199993001")
    ids = [
        shop.client.post(
            "/api/v1/messages", promo, format="json", HTTP_IDEMPOTENCY_KEY="mm"
        ).json()["id"],
        shop.client.post(
            "/api/v1/messages",
            message_body(to="+4915199993002"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="ut",
        ).json()["id"],
    ]
    wait_states(ids, {"delivered"}, timeout=30)
    endpoints = {
        r["biz_opaque_callback_data"]: r["endpoint"]
        for r in live.get("/_sandbox/messages").json()["data"]
    }
    assert endpoints == {ids[0]: "marketing_messages", ids[1]: "messages"}


def test_meta_recategorizes_and_edits_a_template(shop, live):
    template = {"waba_id": shop.sender.waba_id, "name": "order_update", "language": "en_US"}
    live.post("/_sandbox/template_category", template | {"correct_category": "MARKETING"})
    stored = wait_for(
        lambda: MessageTemplate.objects.filter(
            pk=shop.template.pk, pending_category="MARKETING"
        ).first()
    )
    assert stored.category == "UTILITY" and stored.pending_category_at is not None
    live.post("/_sandbox/template_category", template | {"new_category": "MARKETING"})
    wait_for(lambda: MessageTemplate.objects.filter(pk=shop.template.pk, category="MARKETING"))
    # A message created after the change carries the new category.
    sent = shop.client.post(
        "/api/v1/messages", message_body(), format="json", HTTP_IDEMPOTENCY_KEY="after"
    ).json()
    assert Message.objects.get(pk=sent["id"]).template_category == "MARKETING"
    live.post("/_sandbox/template_components", template | {"body": "Hello {{1}}, order {{2}}!"})
    wait_for(
        lambda: MessageTemplate.objects.filter(
            pk=shop.template.pk, components__contains=[{"text": "Hello {{1}}, order {{2}}!"}]
        ).exists()
    )


def test_a_throughput_upgrade_raises_the_senders_rate(shop, live):
    # Meta names the number by its display number in this webhook.
    SenderNumber.objects.filter(pk=shop.sender.pk).update(
        display_phone_number="+1 555 000 9999", messages_per_second=80
    )
    live.post(
        "/_sandbox/numbers",
        {
            "phone_number_id": shop.sender.phone_number_id,
            "display_phone_number": "15550009999",
            "throughput_upgrade": True,
        },
    )
    sender = wait_for(
        lambda: SenderNumber.objects.filter(pk=shop.sender.pk, messages_per_second=1000).first()
    )
    assert sender.status_reason.startswith("THROUGHPUT_UPGRADE")
