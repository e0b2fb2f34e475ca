"""Meta's webhook parser on Meta's documented payloads (``tests/fixtures/meta``) and on broken
ones."""

import json

import pytest

from sandbox import wire
from whatsapp.meta import MetaCloudProvider
from whatsapp.reports import InboundReport, StatusReport, TemplateEvent

from ..fixtures import meta

META = MetaCloudProvider(base_url="http://unused")


@pytest.fixture(scope="module")
def examples():
    return {letter: meta.body(name) for letter, name in meta.EXAMPLES.items()}


def one(body):
    parsed = META.parse_webhook(body)
    assert not parsed.invalid
    [event] = parsed.events
    return event


def test_status_sent(examples):
    event = one(examples["a"])
    assert isinstance(event, StatusReport)
    assert (event.phone_number_id, event.status, int(event.occurred_at.timestamp())) == (
        "106540352242922",
        "sent",
        1750030073,
    )


def test_status_delivered_with_opaque_data(examples):
    event = one(examples["c"])
    assert (event.status, event.biz_opaque_callback_data) == ("delivered", "job-42")


def test_status_failed_with_errors(examples):
    event = one(examples["d"])
    assert event.status == "failed" and event.error_code == 131049
    assert event.error_class == "never_retry"  # a policy outcome (§11.2), not retried blindly
    assert event.error_title.startswith("This message was not delivered")


def test_inbound_text(examples):
    event = one(examples["e"])
    assert isinstance(event, InboundReport)
    assert (event.wa_id, event.type, event.text, event.profile_name) == (
        "16505551234",
        "text",
        "Does it come in another color?",
        "Sheena Nelson",
    )


def test_template_button_reply(examples):
    event = one(examples["f"])
    assert (event.type, event.payload, event.context_wamid[:6]) == (
        "button",
        "Unsubscribe",
        "wamid.",
    )


def test_template_status_update(examples):
    event = one(examples["g"])
    assert isinstance(event, TemplateEvent)
    assert (event.kind, event.event, event.name, event.language, event.template_id) == (
        "status",
        "APPROVED",
        "order_confirmation",
        "en_US",
        "1689556908129832",
    )


def test_quality_account_and_system_error_events():
    body = wire.envelope(
        "w",
        "message_template_quality_update",
        {
            "previous_quality_score": "GREEN",
            "new_quality_score": "YELLOW",
            "message_template_id": 1,
            "message_template_name": "t",
            "message_template_language": "en-US",
        },
        (
            "phone_number_quality_update",
            {"display_phone_number": "1555", "event": "THROUGHPUT_UPGRADE"},
        ),
        ("account_update", {"event": "ACCOUNT_VIOLATION"}),
        (
            "messages",
            {
                "metadata": {"phone_number_id": "p"},
                "errors": [{"code": 130429, "title": "Rate limit hit"}],
            },
        ),
        ("some_future_field", {"anything": True}),
    )
    events = META.parse_webhook(json.dumps(body).encode()).events
    assert [type(e).__name__ for e in events] == [
        "TemplateEvent",
        "NumberEvent",  # 2026: a throughput change raises the sender's rate
        "AccountEvent",
        "SystemErrorEvent",
        "AccountEvent",
    ]
    assert (events[0].kind, events[0].quality) == ("quality", "YELLOW")
    assert events[1].event == "THROUGHPUT_UPGRADE"


def test_one_bad_item_affects_only_itself(examples):
    body = json.loads(examples["a"])
    statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
    statuses.insert(0, {"id": "wamid.bad", "status": "sent"})  # no timestamp
    statuses.append({**statuses[1], "id": "wamid.second", "status": "delivered"})
    events = META.parse_webhook(json.dumps(body).encode()).events
    assert [type(e).__name__ for e in events] == ["ItemError", "StatusReport", "StatusReport"]
    assert events[0].where == "entry[0].changes[0].statuses[0]"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not Meta's envelope (no entry[])"),
        (b'{"object": "page"}', "not Meta's envelope (no entry[])"),
    ],
)
def test_unusable_bodies(body, why):
    assert META.parse_webhook(body).invalid == why


# --- 2026: business-scoped user ids, preferences, pricing, template lifecycle ---------------------


def test_an_inbound_message_from_a_user_with_a_username_has_no_phone_number():
    [event] = META.parse_webhook(meta.body("inbound_text_username")).events
    assert isinstance(event, InboundReport)
    assert (event.wa_id, event.user_id, event.username) == (
        "",
        "US.13491208655302741918",
        "@kfisher",
    )
    assert event.text == "Is my order on its way?" and event.profile_name == "Kerry Fisher"


def test_a_status_names_the_user_both_ways_and_carries_pricing():
    [event] = META.parse_webhook(meta.body("status_delivered_bsuid")).events
    assert (event.recipient_id, event.recipient_user_id, event.username) == (
        "16505551234",
        "US.13491208655302741918",
        "@kfisher",
    )
    assert (event.pricing.model, event.pricing.type, event.pricing.category) == (
        "PMP",
        "regular",
        "marketing",
    )
    assert event.pricing.billable is True


def test_a_status_of_a_send_to_a_bsuid_without_contacts():
    body = json.loads(meta.body("status_delivered_bsuid"))
    value = body["entry"][0]["changes"][0]["value"]
    del value["contacts"]
    status = value["statuses"][0]
    status["recipient_id"] = status.pop("recipient_user_id")
    [event] = META.parse_webhook(json.dumps(body).encode()).events
    assert (event.recipient_id, event.recipient_user_id) == ("", "US.13491208655302741918")


def test_user_preferences_stop():
    from whatsapp.reports import PreferenceReport

    [event] = META.parse_webhook(meta.body("user_preferences_stop")).events
    assert isinstance(event, PreferenceReport)
    assert (event.category, event.value, event.wa_id, event.user_id) == (
        "marketing_messages",
        "stop",
        "16505551234",
        "US.13491208655302741918",
    )


def test_template_category_update():
    [event] = META.parse_webhook(meta.body("template_category_update")).events
    assert isinstance(event, TemplateEvent)
    assert (event.kind, event.template_id, event.language) == ("category", "12345678", "he")
    assert (event.previous_category, event.new_category) == ("UTILITY", "MARKETING")


def test_components_update_and_throughput_upgrade():
    from whatsapp.reports import NumberEvent

    body = wire.envelope(
        "w",
        "message_template_components_update",
        {
            "message_template_id": 7,
            "message_template_name": "welcome",
            "message_template_language": "en_US",
            "message_template_element": "Hi {{1}}! Welcome to our service.",
            "message_template_footer": "Reply STOP to opt out",
        },
        (
            "phone_number_quality_update",
            {"display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE"},
        ),
    )
    components, number = META.parse_webhook(json.dumps(body).encode()).events
    assert components.kind == "components"
    assert components.components == [
        {"type": "BODY", "text": "Hi {{1}}! Welcome to our service."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
    ]
    assert isinstance(number, NumberEvent) and number.messages_per_second == 1000


def test_an_inbound_message_naming_nobody_is_an_item_error_not_a_drop():
    body = json.loads(meta.body("inbound_text_username"))
    value = body["entry"][0]["changes"][0]["value"]
    del value["contacts"]
    del value["messages"][0]["from_user_id"]
    [event] = META.parse_webhook(json.dumps(body).encode()).events
    assert type(event).__name__ == "ItemError" and "names no sender" in event.error
