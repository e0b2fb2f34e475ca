"""The health webhooks, parsed on Meta's documented payloads (``tests/fixtures/meta``) and on the
other shapes Meta has used: ``business_capability_update`` (the limit as ``2000`` or
``TIER_…``), ``phone_number_quality_update`` (never the throughput level as the limit),
``account_alerts`` (nested in ``alert_info`` or flat). Every field past the event is optional:
Meta marks them "subject to change"."""

import json
from datetime import UTC, datetime

from sandbox import wire
from whatsapp.meta import MetaCloudProvider
from whatsapp.reports import AccountEvent, AlertEvent, CapabilityEvent, NumberEvent

from ..fixtures import meta

META = MetaCloudProvider(base_url="http://unused")
AT = datetime.fromtimestamp(1739321024, tz=UTC)


def one(body: bytes):
    parsed = META.parse_webhook(body)
    assert not parsed.invalid
    [event] = parsed.events
    return event


def change(field: str, value: dict, time: int | None = 1739321024) -> bytes:
    return json.dumps(wire.envelope("102290129340398", field, value, time=time)).encode()


def test_business_capability_update_with_the_limit_as_a_number():
    event = one(meta.body("business_capability_update"))
    assert isinstance(event, CapabilityEvent) and isinstance(event, AccountEvent)
    assert (event.waba_id, event.messaging_limit, event.occurred_at) == (
        "524126980791429",
        "2000",
        AT,
    )


def test_business_capability_update_with_the_limit_as_a_tier():
    event = one(meta.body("business_capability_update_tier"))
    assert (event.messaging_limit, event.field) == ("TIER_UNLIMITED", "business_capability_update")


def test_business_capability_update_before_v24_names_the_limit_per_phone():
    event = one(
        change(
            "business_capability_update",
            {"max_daily_conversation_per_phone": 1000, "max_phone_numbers_per_business": 2},
        )
    )
    assert (event.messaging_limit, event.max_phone_numbers) == ("1000", 2)


def test_business_capability_update_without_a_limit():
    event = one(change("business_capability_update", {"max_phone_numbers_per_waba": 25}, time=None))
    assert (event.messaging_limit, event.occurred_at) == ("", None)


def test_a_throughput_upgrade_names_the_portfolios_limit_not_its_throughput_level():
    """Meta's example: current_limit TIER_UNLIMITED (the throughput) beside the portfolio's
    TIER_2K. Read as the limit, TIER_UNLIMITED would lift every campaign's limit."""
    event = one(meta.body("phone_number_quality_update"))
    assert isinstance(event, NumberEvent)
    assert (event.event, event.messages_per_second, event.messaging_limit) == (
        "THROUGHPUT_UPGRADE",
        1000,
        "TIER_2K",
    )
    assert (event.display_phone_number, event.occurred_at, event.quality) == ("15550783881", AT, "")


def test_a_throughput_upgrade_with_current_limit_only_teaches_no_limit():
    event = one(
        change(
            "phone_number_quality_update",
            {
                "display_phone_number": "15550783881",
                "event": "THROUGHPUT_UPGRADE",
                "current_limit": "TIER_UNLIMITED",
            },
        )
    )
    assert (event.messages_per_second, event.messaging_limit) == (1000, "")


def test_current_limit_is_read_until_meta_removes_it():
    event = one(
        change(
            "phone_number_quality_update",
            {
                "display_phone_number": "15550783881",
                "event": "UPGRADE",
                "old_limit": "TIER_250",
                "current_limit": "TIER_2K",
                "quality_rating": "yellow",
            },
        )
    )
    assert (event.messaging_limit, event.messages_per_second, event.quality) == (
        "TIER_2K",
        None,
        "YELLOW",
    )


def test_account_alerts_as_metas_reference_nests_them():
    event = one(meta.body("account_alerts"))
    assert isinstance(event, AlertEvent) and isinstance(event, AccountEvent)
    assert (event.event, event.entity_type, event.entity_id, event.severity, event.status) == (
        "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
        "BUSINESS",
        "506914307656634",
        "WARNING",
        "ACTIVE",
    )
    assert event.description.startswith("Limits cannot be increased") and event.occurred_at == AT


def test_account_alerts_flat():
    event = one(
        change(
            "account_alerts",
            {
                "entity_type": "PHONE_NUMBER",
                "entity_id": "106540352242922",
                "alert_severity": "CRITICAL",
                "alert_status": "ACTIVE",
                "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED",
                "alert_description": "Your business is not eligible.",
            },
        )
    )
    assert (event.event, event.entity_type, event.severity) == (
        "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED",
        "PHONE_NUMBER",
        "CRITICAL",
    )


def test_an_alert_without_a_type_is_an_item_error_and_the_rest_stands():
    body = json.dumps(
        wire.envelope(
            "1",
            "account_alerts",
            {"entity_type": "BUSINESS", "alert_info": {}},
            ("business_capability_update", {"max_daily_conversations_per_business": "TIER_10K"}),
        )
    ).encode()
    bad, good = META.parse_webhook(body).events
    assert type(bad).__name__ == "ItemError" and "alert_type" in bad.error
    assert good.messaging_limit == "TIER_10K"
