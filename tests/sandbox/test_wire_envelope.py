"""The one builder of Meta's webhook envelope outside the product (``sandbox.wire``, used by the
sandbox's webhooks, the tests and the benchmarks) builds Meta's documented payloads exactly."""

from sandbox import wire

from ..fixtures import meta


def test_a_status_webhook_is_metas_documented_example():
    value = wire.messages_value(
        "106540352242922",
        "15550783881",
        statuses=[
            wire.status(
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                "sent",
                1750030073,
                recipient_id="16505551234",
            )
        ],
    )
    assert wire.envelope("102290129340398", "messages", value) == meta.payload("status_sent_v24")


def test_a_failed_status_carries_metas_error_object():
    failed = wire.status(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
        "failed",
        "1751142888",
        recipient_id="16505551234",
        errors=[wire.webhook_error(wire.MetaError(131049))],
    )
    value = wire.messages_value("106540352242922", "15550783881", statuses=[failed])
    assert wire.envelope("102290129340398", "messages", value) == meta.payload(
        "status_failed_131049"
    )


def test_a_template_update_has_its_entry_time():
    value = {
        "event": "APPROVED",
        "message_template_id": 1689556908129832,
        "message_template_name": "order_confirmation",
        "message_template_language": "en-US",
        "reason": "NONE",
        "message_template_category": "UTILITY",
    }
    built = wire.envelope(
        "102290129340398", "message_template_status_update", value, time=1751247548
    )
    assert built == meta.payload("template_status_approved")


def test_several_changes_in_one_entry_and_an_entry_without_its_account():
    built = wire.envelope(
        None, "account_update", {"event": "X"}, ("some_future_field", {"anything": True})
    )
    assert built == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {"value": {"event": "X"}, "field": "account_update"},
                    {"value": {"anything": True}, "field": "some_future_field"},
                ]
            }
        ],
    }


def test_a_delivered_status_is_priced_as_meta_prices_it():
    item = wire.status("wamid.1", "delivered", 1, pricing=wire.pricing("UTILITY"))
    documented = meta.payload("status_delivered")["entry"][0]["changes"][0]["value"]
    assert set(item["pricing"]) == set(documented["statuses"][0]["pricing"])
    assert item["pricing"]["category"] == "utility"
