"""The health webhooks through the real endpoint (signed on Meta's route, or on a sender's own
360dialog route), processed: the business portfolio's messaging limit learned from
``business_capability_update`` and ``phone_number_quality_update``, a number's quality rating,
``account_alerts`` recorded and alerted — each change in the sender's health history, a replay
or an older fact never taking anything back."""

import json
import logging

import pytest

from sandbox import wire
from tenants.limits import UNLIMITED
from tenants.models import HealthKind, PortfolioLimit, SenderHealthEvent
from tenants.selectors import portfolio_limit
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_drain, deliveries_replay

from ..factories import SenderNumberFactory
from ..fixtures import meta
from .helpers import post

pytestmark = pytest.mark.django_db
WABA = "102290129340398"  # the WABA of Meta's examples
BUSINESS = "506914307656634"
T0 = 1739321024


@pytest.fixture
def sender():
    return SenderNumberFactory(
        waba_id=WABA, business_id=BUSINESS, display_phone_number="+1 555-078-3881"
    )


def deliver(client, payload: dict):
    assert post(client, payload).status_code == 200
    return deliveries_drain()


def capability(limit, *, time=T0, waba=WABA) -> dict:
    return wire.envelope(
        waba,
        "business_capability_update",
        {"max_daily_conversations_per_business": limit},
        time=time,
    )


def events(kind: str) -> list[tuple[str, str, str]]:
    return list(
        SenderHealthEvent.objects.filter(kind=kind)
        .order_by("occurred_at", "id")
        .values_list("previous", "value", "source")
    )


def test_metas_example_teaches_the_portfolio_its_limit(client, sender):
    payload = meta.payload("business_capability_update")  # the limit as the integer 2000
    payload["entry"][0]["id"] = WABA
    counts = deliver(client, payload)
    assert counts["limits_changed"] == 1
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == 2000
    row = PortfolioLimit.objects.get()
    assert (row.tier, row.source, int(row.learned_at.timestamp())) == ("2000", "webhook", T0)
    assert events(HealthKind.LIMIT) == [("", "2,000", "webhook")]


def test_the_tier_form_and_unlimited(client, sender):
    deliver(client, meta.payload("business_capability_update_tier") | {})  # TIER_UNLIMITED
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == UNLIMITED
    deliver(client, capability("TIER_10K", time=T0 + 60))
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == 10_000
    assert events(HealthKind.LIMIT) == [
        ("", "unlimited", "webhook"),
        ("unlimited", "10,000", "webhook"),
    ]


def test_a_lowered_limit_alerts(client, sender, caplog, django_capture_on_commit_callbacks):
    deliver(client, capability("TIER_10K"))
    with (
        caplog.at_level(logging.WARNING, logger="waypost.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deliver(client, capability("TIER_2K", time=T0 + 60))
    assert "messaging limit lowered" in caplog.text


def test_an_older_fact_a_replay_and_not_set_take_nothing_back(client, sender):
    deliver(client, capability("TIER_10K"))
    deliver(client, capability("TIER_250", time=T0 - 3600))  # an older webhook, late
    deliver(client, capability("TIER_NOT_SET", time=T0 + 60))  # nothing known: keeps 10K
    assert deliveries_replay(delivery_id=WebhookDelivery.objects.order_by("pk").first().pk) == 1
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == 10_000
    assert events(HealthKind.LIMIT) == [("", "10,000", "webhook")]


def test_every_portfolio_of_the_wabas_senders_learns_it_and_no_other(client, sender):
    default = SenderNumberFactory(tenant=sender.tenant, waba_id=WABA, business_id="")
    elsewhere = SenderNumberFactory(business_id=BUSINESS)  # another tenant, another WABA
    deliver(client, capability("TIER_2K"))
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == 2000
    assert portfolio_limit(tenant=default.tenant, business_id="") == 2000
    assert portfolio_limit(tenant=elsewhere.tenant, business_id=BUSINESS) is None


def test_a_waba_without_senders_changes_nothing(client, sender):
    counts = deliver(client, capability("TIER_2K", waba="999"))
    assert counts["health_unmatched"] == 1 and not PortfolioLimit.objects.exists()
    assert WebhookDelivery.objects.get().status == "processed"


def test_a_throughput_upgrade_raises_the_rate_and_teaches_the_limit_not_unlimited(client, sender):
    deliver(client, meta.payload("phone_number_quality_update"))
    sender.refresh_from_db()
    assert sender.messages_per_second == 1000
    assert portfolio_limit(tenant=sender.tenant, business_id=BUSINESS) == 2000  # not TIER_UNLIMITED
    assert events(HealthKind.THROUGHPUT) == [("80", "1000", "webhook")]
    assert SenderHealthEvent.objects.get(kind=HealthKind.LIMIT).sender == sender


def test_a_bad_quality_rating_is_learned_recorded_and_alerted(
    client, sender, caplog, django_capture_on_commit_callbacks
):
    value = {"display_phone_number": "15550783881", "event": "FLAGGED", "quality_rating": "RED"}
    with (
        caplog.at_level(logging.WARNING, logger="waypost.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deliver(client, wire.envelope(WABA, "phone_number_quality_update", value, time=T0))
    sender.refresh_from_db()
    assert sender.quality_rating == "RED"
    assert events(HealthKind.QUALITY) == [("", "RED", "webhook")]
    assert "sender quality rating is RED" in caplog.text  # first told: not GREEN
    other = SenderNumberFactory(tenant=sender.tenant, waba_id=WABA, display_phone_number="+1555999")
    other.refresh_from_db()
    assert other.quality_rating == ""  # the event named one number of the WABA


def test_an_account_alert_is_recorded_once_and_alerted(
    client, sender, caplog, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.WARNING, logger="waypost.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        counts = deliver(client, meta.payload("account_alerts"))
    assert counts["alerts"] == 1
    [event] = SenderHealthEvent.objects.filter(kind=HealthKind.ALERT)
    assert (event.value, event.business_id, event.sender, event.source) == (
        "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
        BUSINESS,
        None,
        "webhook",
    )
    assert event.detail["severity"] == "WARNING" and event.detail["entity_id"] == BUSINESS
    assert int(event.occurred_at.timestamp()) == T0
    assert "Meta deferred its decision on raising" in caplog.text
    deliveries_replay(delivery_id=WebhookDelivery.objects.get().pk)
    assert SenderHealthEvent.objects.filter(kind=HealthKind.ALERT).count() == 1


def test_an_alert_naming_a_number_is_that_senders(client, sender):
    value = {
        "entity_type": "PHONE_NUMBER",
        "entity_id": sender.phone_number_id,
        "alert_info": {
            "alert_type": "OBA_APPROVED",
            "alert_severity": "INFORMATIONAL",
            "alert_status": "NONE",
        },
    }
    deliver(client, wire.envelope(WABA, "account_alerts", value, time=T0))
    assert SenderHealthEvent.objects.get(kind=HealthKind.ALERT).sender == sender


# --- a sender's own route (360dialog) speaks for its own number and portfolio only ------------


def on_route(client, route_sender, payload: dict):
    response = client.post(
        f"/webhooks/360dialog/{route_sender.webhook_token}",
        json.dumps(payload).encode(),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return deliveries_drain()


def test_a_route_teaches_its_own_portfolio(client):
    own = SenderNumberFactory(provider="360dialog", waba_id="7001", business_id="8001")
    sibling = SenderNumberFactory(
        tenant=own.tenant, provider="360dialog", waba_id="7001", business_id="8002"
    )
    on_route(client, own, capability("TIER_100K", waba="7001"))
    assert portfolio_limit(tenant=own.tenant, business_id="8001") == 100_000
    assert portfolio_limit(tenant=own.tenant, business_id="8002") is None
    assert sibling.pk  # the WABA's other number's portfolio is not the route's to change


def test_a_route_cannot_record_an_alert_on_another_number(client):
    own = SenderNumberFactory(provider="360dialog", waba_id="7002")
    sibling = SenderNumberFactory(tenant=own.tenant, provider="360dialog", waba_id="7002")
    value = {
        "entity_type": "PHONE_NUMBER",
        "entity_id": sibling.phone_number_id,
        "alert_info": {"alert_type": "OBA_REJECTED"},
    }
    on_route(client, own, wire.envelope("7002", "account_alerts", value, time=T0))
    assert not SenderHealthEvent.objects.exists()
    assert WebhookDelivery.objects.get().status == "partial"


def test_a_route_learns_its_own_numbers_quality(client):
    own = SenderNumberFactory(provider="360dialog", waba_id="7003", display_phone_number="")
    value = {
        "display_phone_number": "",
        "event": "UPGRADE",
        "quality_rating": "GREEN",
        "current_limit": "TIER_2K",
    }
    on_route(client, own, wire.envelope("7003", "phone_number_quality_update", value, time=T0))
    own.refresh_from_db()
    assert own.quality_rating == "GREEN"
    assert portfolio_limit(tenant=own.tenant, business_id="") == 2000
