"""The sandbox speaks 2026 (docs/meta-api.md §11): business-scoped user ids on statuses and
inbound messages, sends to a BSUID, usernames, user preferences, template lifecycle webhooks,
Marketing Messages Lite, a throughput upgrade."""

import pytest

from .test_sandbox import ORDER_UPDATE, PHONE, WABA, assert_meta_error, message, send

OTP = {
    "name": "login_code",
    "language": "en_US",
    "category": "AUTHENTICATION",
    "components": [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
    ],
}
PROMO = {
    "name": "spring_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Spring sale, {{1}}!"}],
}


@pytest.fixture
def ready(sandbox):
    sandbox.post(
        "/_sandbox/numbers",
        {"phone_number_id": PHONE, "waba_id": WABA, "display_phone_number": "15550783881"},
    )
    for template in (ORDER_UPDATE, OTP, PROMO):
        sandbox.post(f"/v24.0/{WABA}/message_templates", template)
    return sandbox


def statuses_of(sink, wamid, count):
    def done(_):
        return len(found()) >= count

    def found():
        out = []
        for delivery in sink.deliveries:
            value = delivery.json["entry"][0]["changes"][0]["value"]
            out += [
                (s, value.get("contacts")) for s in value.get("statuses", []) if s["id"] == wamid
            ]
        return out

    sink.wait_for(done)
    return found()


def test_statuses_carry_the_bsuid_and_a_contact(ready, sink):
    wamid = send(ready, version="v24.0").json()["messages"][0]["id"]
    for status, contacts in statuses_of(sink, wamid, 3):
        assert status["recipient_id"] == "15551230001"
        assert status["recipient_user_id"].startswith("US.")
        [contact] = contacts
        assert (contact["wa_id"], contact["user_id"]) == (
            "15551230001",
            status["recipient_user_id"],
        )


def test_a_failed_status_leaves_contacts_out_as_meta_does(ready, sink):
    ready.configure(fail_rules=[["0001$", 131026]])
    wamid = send(ready).json()["messages"][0]["id"]
    [(status, contacts)] = statuses_of(sink, wamid, 1)
    assert status["status"] == "failed" and contacts is None
    assert "recipient_user_id" not in status  # the send used a phone number


def test_a_send_to_a_bsuid_reaches_the_user_behind_it(ready, sink):
    inbound = ready.post(
        "/_sandbox/inbound", {"phone_number_id": PHONE, "from": "+15551230009", "text": "hi"}
    ).json()
    body = message()
    del body["to"]
    body["recipient"] = inbound["user_id"]
    answer = send(ready, body).json()
    assert answer["contacts"] == [{"input": inbound["user_id"], "user_id": inbound["user_id"]}]
    [record] = ready.get("/_sandbox/messages").json()["data"]
    assert (record["wa_id"], record["user_id"], record["by_phone"]) == (
        "15551230009",
        inbound["user_id"],
        False,
    )


def test_an_authentication_template_to_a_bsuid_is_131062(ready):
    body = message(
        template={
            "name": "login_code",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "123456"}],
                },
            ],
        }
    )
    del body["to"]
    body["recipient"] = "US.13491208655302741918"
    assert_meta_error(send(ready, body), 400, 131062)


def test_a_user_with_a_username_arrives_without_a_phone_number(ready, sink):
    ready.configure(username_rate=1.0)
    ready.post("/_sandbox/inbound", {"phone_number_id": PHONE, "from": "+15551230010", "text": "?"})
    [delivery] = sink.wait_for(lambda d: b'"messages"' in d.body)
    value = delivery.json["entry"][0]["changes"][0]["value"]
    [contact], [inbound] = value["contacts"], value["messages"]
    assert "wa_id" not in contact and contact["profile"]["username"].startswith("@")
    assert "from" not in inbound and inbound["from_user_id"] == contact["user_id"]


def test_user_preferences_on_demand(ready, sink):
    ready.post(
        "/_sandbox/user_preferences",
        {"phone_number_id": PHONE, "from": "+15551230011", "value": "stop"},
    )
    [delivery] = sink.wait_for(lambda d: b"user_preferences" in d.body)
    change = delivery.json["entry"][0]["changes"][0]
    assert change["field"] == "user_preferences"
    [preference] = change["value"]["user_preferences"]
    assert (preference["category"], preference["value"], preference["wa_id"]) == (
        "marketing_messages",
        "stop",
        "15551230011",
    )


def test_template_category_and_components_updates_on_demand(ready, sink):
    ready.post(
        "/_sandbox/template_category",
        {"waba_id": WABA, "name": "order_update", "language": "en_US", "new_category": "MARKETING"},
    )
    ready.post(
        "/_sandbox/template_components",
        {"waba_id": WABA, "name": "order_update", "language": "en_US", "body": "Hi {{1}}!"},
    )
    sink.wait_for(lambda d: b"message_template_components_update" in d.body)
    [category] = sink.wait_for(lambda d: b"template_category_update" in d.body)
    value = category.json["entry"][0]["changes"][0]["value"]
    assert (value["previous_category"], value["new_category"]) == ("UTILITY", "MARKETING")


def test_marketing_messages_lite_takes_marketing_templates_only(ready):
    promo = message(
        template={
            "name": "spring_promo",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        }
    )
    ok = ready.post(f"/v24.0/{PHONE}/marketing_messages", promo)
    assert ok.status_code == 200 and ok.json()["messages"][0]["message_status"] == "accepted"
    [record] = ready.get("/_sandbox/messages").json()["data"]
    assert record["endpoint"] == "marketing_messages"
    assert_meta_error(ready.post(f"/v24.0/{PHONE}/marketing_messages", message()), 400, 131009)


def test_a_throughput_upgrade_on_demand(ready, sink):
    ready.post("/_sandbox/numbers", {"phone_number_id": PHONE, "throughput_upgrade": True})
    [delivery] = sink.wait_for(lambda d: b"THROUGHPUT_UPGRADE" in d.body)
    assert delivery.json["entry"][0]["changes"][0]["field"] == "phone_number_quality_update"


CAROUSEL = {
    "name": "succulents",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "BODY", "text": "Hi {{1}}, these match your taste:"},
        {
            "type": "CAROUSEL",
            "cards": [
                {
                    "components": [
                        {"type": "HEADER", "format": "IMAGE"},
                        {"type": "BODY", "text": "Only {{1}}"},
                    ]
                }
                for _ in range(3)
            ],
        },
    ],
}


def carousel_send(cards):
    return message(
        template={
            "name": "succulents",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
                {
                    "type": "carousel",
                    "cards": [
                        {
                            "card_index": i,
                            "components": [
                                {
                                    "type": "header",
                                    "parameters": [
                                        {"type": "image", "image": {"link": "https://x.test/a.png"}}
                                    ],
                                },
                                {"type": "body", "parameters": [{"type": "text", "text": "$9"}]},
                            ],
                        }
                        for i in range(cards)
                    ],
                },
            ],
        }
    )


def test_a_carousel_sends_with_as_many_cards_as_approved(ready):
    ready.post(f"/v24.0/{WABA}/message_templates", CAROUSEL)
    assert send(ready, carousel_send(3)).status_code == 200
    assert_meta_error(send(ready, carousel_send(2)), 400, 132012)


def test_an_authentication_template_takes_its_code_as_the_bodys_one_parameter(ready):
    """Meta writes the body ("{{1}} is your verification code."): the code is its parameter,
    and the copy-code button's (Meta: authentication templates, send a template)."""
    code = [{"type": "text", "text": "482913"}]
    template = {
        "name": "login_code",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": code},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": code},
        ],
    }
    assert send(ready, message(template=template)).status_code == 200
    without = {**template, "components": template["components"][1:]}
    assert send(ready, message(template=without)).json()["error"]["code"] == 132000
