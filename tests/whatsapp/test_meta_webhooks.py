"""Meta's webhook parser on Meta's documented payloads (``tests/fixtures/meta``) and on broken
ones."""

import json

import pytest

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
    assert event.error_class == "cool_down"  # Meta's code, classified by Meta's table
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
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "w",
                "changes": [
                    {
                        "field": "message_template_quality_update",
                        "value": {
                            "previous_quality_score": "GREEN",
                            "new_quality_score": "YELLOW",
                            "message_template_id": 1,
                            "message_template_name": "t",
                            "message_template_language": "en-US",
                        },
                    },
                    {
                        "field": "phone_number_quality_update",
                        "value": {"display_phone_number": "1555", "event": "THROUGHPUT_UPGRADE"},
                    },
                    {"field": "account_update", "value": {"event": "ACCOUNT_VIOLATION"}},
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": "p"},
                            "errors": [{"code": 130429, "title": "Rate limit hit"}],
                        },
                    },
                    {"field": "some_future_field", "value": {"anything": True}},
                ],
            }
        ],
    }
    events = META.parse_webhook(json.dumps(body).encode()).events
    assert [type(e).__name__ for e in events] == [
        "TemplateEvent",
        "AccountEvent",
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
