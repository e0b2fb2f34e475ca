"""A campaign on a real worker process and the sandbox: scheduled, paced, paused and resumed,
held at the portfolio's messaging limit learned from the sandbox's webhook, completed — with
its callbacks, and its report's counts equal to the ledger's."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.models import CallbackEvent
from callbacks.services import endpoint_configure
from campaigns.models import Campaign, CampaignState, HeldReason
from messaging.models import Message, MessageEvent
from tenants.models import PortfolioLimit

from ..waiting import wait_for

pytestmark = pytest.mark.system


def audience(count: int, start: int = 0) -> list[dict]:
    return [
        {"to": f"+49152{i:08d}", "1": "Ana", "2": f"C-{i}"} for i in range(start, start + count)
    ]


def create(tenant, rows, key, **fields) -> dict:
    body = {"template": {"name": "order_update", "language": "en_US"}, "audience": rows}
    response = tenant.client.post(
        "/api/v1/campaigns", body | fields, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 201, response.content
    return response.json()


def detail(tenant, campaign_id) -> dict:
    return tenant.client.get(f"/api/v1/campaigns/{campaign_id}").json()


def wait_state(tenant, campaign_id, state, timeout):
    try:
        wait_for(lambda: detail(tenant, campaign_id)["state"] == state, timeout, state)
    except AssertionError as exc:
        progress = detail(tenant, campaign_id)["progress"]
        raise AssertionError(f"{exc}; the campaign's progress: {progress}") from None


def test_a_campaign_runs_paused_held_and_completed_on_a_real_worker(shop, live, sink):
    tenant = shop
    sender = tenant.sender
    sender.messages_per_second = 50  # the campaign's share: 40 a second
    sender.save()
    endpoint_configure(
        tenant=tenant.tenant,
        url=sink.url,  # written with each change (delivering them is the deliverer's test)
        event_types=["campaign.started", "campaign.paused", "campaign.completed"],
    )
    # The portfolio's messaging limit, as Meta's webhook tells it: 50 users a day.
    live.post("/_sandbox/limits", {"waba_id": sender.waba_id, "limit": 50, "webhook": "integer"})
    wait_for(
        lambda: PortfolioLimit.objects.filter(tenant=tenant.tenant, limit=50).exists(),
        10,
        "the limit learned from business_capability_update",
    )
    send_at = timezone.now() + timedelta(seconds=2)
    campaign = create(tenant, audience(120), "live-1", start=True, send_at=send_at.isoformat())
    assert campaign["state"] == "scheduled"
    limit = campaign["preflight"]["messaging_limit"]
    assert (limit["limit"], limit["remaining"], limit["fits"]) == (50, 50, False)
    cid = campaign["id"]
    assert not Message.objects.filter(campaign_id=cid).exists()  # nothing before send_at
    wait_for(lambda: Message.objects.filter(campaign_id=cid).exists(), 15, "the first release")
    first = Message.objects.filter(campaign_id=cid).order_by("created_at").first()
    assert first.created_at >= send_at

    paused = tenant.client.post(
        f"/api/v1/campaigns/{cid}/pause", {"reason": "check"}, format="json"
    )
    assert paused.json()["state"] == "paused"
    at_pause = Message.objects.filter(campaign_id=cid, attempts__gt=0).count()
    wait_for(
        lambda: not Message.objects.filter(campaign_id=cid, state="submitting").exists(),
        10,
        "in-flight submits answered",
    )
    submitted = Message.objects.filter(campaign_id=cid, attempts__gt=0).count()
    assert submitted - at_pause <= 50  # at most what was claimed (the messaging limit is 50)
    tenant.client.post(f"/api/v1/campaigns/{cid}/resume", {}, format="json")
    wait_for(
        lambda: detail(tenant, cid)["progress"]["held_reason"] == HeldReason.MESSAGING_LIMIT,
        30,
        "held at the messaging limit",
    )
    # Held once the last of the limit's 50 is released; they are submitted moments later.
    assert Message.objects.filter(campaign_id=cid).count() == 50  # all it may, not one more
    wait_for(
        lambda: Message.objects.filter(campaign_id=cid, attempts__gt=0).count() == 50,
        15,
        "the released 50 submitted",
    )
    refused = live.get("/_sandbox/limits").json()["data"]
    assert sum(p["refused"] for p in refused) == 0  # none sent into Meta's refusal
    # The limit is raised: the campaign goes on and completes.
    live.post(
        "/_sandbox/limits", {"waba_id": sender.waba_id, "limit": "unlimited", "webhook": "tier"}
    )
    wait_state(tenant, cid, CampaignState.COMPLETED, 60)
    counts = detail(tenant, cid)["progress"]["counts"]
    states = Counter(Message.objects.filter(campaign_id=cid).values_list("state", flat=True))
    assert counts["rows"] == 120 and sum(states.values()) == 120
    for state in ("accepted", "sent", "delivered", "read", "failed"):
        assert counts[state] == states.get(state, 0), state
    # No message of the campaign was sent twice: one submit each, and one more claim for each
    # the pause recalled (claimed, its batch's requests not begun: it waited, parked).
    events = MessageEvent.objects.filter(message__campaign_id=cid)
    submits = events.filter(type="submit_started")
    recalled = events.filter(type="requeued", detail__reason="its campaign was paused").count()
    assert submits.values("message_id").distinct().count() == 120
    assert submits.count() == 120 + recalled
    assert live.get("/_sandbox/stats").json()["duplicate_submissions"] == 0
    types = list(
        CallbackEvent.objects.filter(tenant=tenant.tenant)
        .order_by("created_at")
        .values_list("type", flat=True)
    )
    assert types == ["campaign.started", "campaign.paused", "campaign.completed"]
    assert Campaign.objects.get(pk=cid).finished_at is not None
