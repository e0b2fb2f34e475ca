"""The whole loop: API → worker → sandbox → signed status webhooks (duplicated 20 %,
reordered, 5 % dropped) → our endpoint → stored → processed by the worker → the ledger.

Every message whose statuses all arrived must end in the state its full history gives; one
with dropped statuses in the state of what did arrive; and the ledger must hold each fact
once."""

from collections import Counter

import pytest

from messaging.models import Message, MessageEvent, OrphanStatus
from webhooks.models import WebhookDelivery

from .conftest import make_live_tenant, send_batch, wait_for, wait_states

pytestmark = pytest.mark.redis
RANK = {"sent": 1, "failed": 2, "delivered": 3, "read": 4}  # messaging/states.py precedence


def final_state(statuses) -> str:
    return max(statuses, key=RANK.__getitem__) if statuses else "accepted"


def test_faulty_webhooks_end_in_the_right_states(
    worker_process, live, live_server, settings, capsys
):
    tenant = make_live_tenant(live, "e2e")
    live.configure(
        webhook_url=f"{live_server.url}/webhooks/whatsapp",
        app_secret=settings.WHATSAPP_APP_SECRET,
        webhook_duplicate_rate=0.2,
        webhook_reorder=True,
        webhook_drop_rate=0.05,
        sent_after_ms=20,
        delivered_after_ms=80,
        read_after_ms=140,
        read_rate=0.7,
        fail_rules=[[r"7$", 131026]],  # recipients ending in 7 fail
    )
    ids = send_batch(tenant, 300, "e2e")
    wait_states(ids, {"accepted", "sent", "delivered", "read", "failed"}, timeout=60)
    stats: dict = {}

    def settled() -> bool:
        """Every webhook answered (the sandbox's pending counts a POST until our 200, which
        follows the store), every stored one processed, every parked status re-applied."""
        stats.update(live.get("/_sandbox/stats").json())
        return (
            stats["webhooks"]["pending"] == 0
            and not WebhookDelivery.objects.filter(status="pending").exists()
            and not OrphanStatus.objects.filter(
                sender=tenant.sender, resolved_at__isnull=True, expired_at__isnull=True
            ).exists()
        )

    wait_for(settled, 60, "the webhooks sent, stored, processed and their orphans re-applied")

    truth = {
        r["biz_opaque_callback_data"]: r for r in live.get("/_sandbox/messages").json()["data"]
    }
    states = {
        str(pk): state
        for pk, state in Message.objects.filter(pk__in=ids).values_list("pk", "state")
    }
    facts = Counter(
        str(pk)
        for pk in MessageEvent.objects.filter(message_id__in=ids, source="webhook").values_list(
            "message_id", flat=True
        )
    )
    complete = wrong = 0
    for message_id in ids:
        record = truth[message_id]
        arrived = [s for s in record["statuses_planned"] if s not in record["statuses_dropped"]]
        if not record["statuses_dropped"]:
            complete += 1
        if states[message_id] != final_state(arrived):
            wrong += 1
        assert facts[message_id] == len(arrived), (message_id, record, facts[message_id])
    with capsys.disabled():
        print(
            f"\n[e2e] {len(ids)} messages, {complete} with every status delivered; "
            f"webhooks: {stats['webhooks']['events_sent']} events sent, "
            f"{stats['webhooks']['duplicated']} duplicated, {stats['webhooks']['dropped']} "
            f"dropped; {WebhookDelivery.objects.count()} deliveries stored; wrong states: "
            f"{wrong}"
        )
    assert wrong == 0
    assert stats["webhooks"]["duplicated"] > 0 and stats["webhooks"]["dropped"] > 0


def test_a_reply_opens_the_window_for_free_form_text(worker_process, live, live_server, settings):
    from messaging.models import Contact

    tenant = make_live_tenant(live, "replies")
    live.configure(
        webhook_url=f"{live_server.url}/webhooks/whatsapp", app_secret=settings.WHATSAPP_APP_SECRET
    )
    text = {"to": "+4915112345678", "text": {"body": "Thanks, on its way!"}}
    refused = tenant.client.post("/api/v1/messages", text, format="json", HTTP_IDEMPOTENCY_KEY="t1")
    assert refused.json()["error"]["code"] == "outside_service_window"
    live.post(
        "/_sandbox/inbound",
        {
            "phone_number_id": tenant.sender.phone_number_id,
            "from": "+4915112345678",
            "text": "Where is my order?",
        },
    )
    wait_for(
        lambda: Contact.objects.filter(tenant=tenant.tenant).exists(),
        20,
        "the inbound webhook processed",
    )
    sent = tenant.client.post("/api/v1/messages", text, format="json", HTTP_IDEMPOTENCY_KEY="t2")
    assert sent.status_code == 202, sent.content
    wait_states([sent.json()["id"]], {"accepted", "sent", "delivered", "read"})
    inbound = tenant.client.get("/api/v1/inbound").json()["results"]
    assert [m["text"] for m in inbound] == ["Where is my order?"]
