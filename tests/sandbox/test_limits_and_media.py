"""The sandbox plays Meta's account side for campaigns (docs/meta-api.md §3.3, §12): business
portfolios with a messaging limit counted in unique users outside a service window (beyond it
a send is accepted, then fails with 131026), the capability, quality and alert webhooks on
demand, 131048 on demand, the fields of ``GET /{phone-number-id}``, and media upload with a
30-day id. Every new payload is compared with the Meta example in tests/fixtures/meta."""

import hashlib

import pytest
import requests

from ..fixtures import meta
from ..waiting import wait_for
from .test_sandbox import ORDER_UPDATE, PHONE, WABA, assert_meta_error, message, send
from .test_wire_shapes import shape, with_2026

BUSINESS = "biz-1"
OTHER_PHONE, OTHER_WABA = "phone-2", "waba-2"
FIELDS = (
    "whatsapp_business_manager_messaging_limit,quality_rating,messaging_limit_tier,"
    "throughput,display_phone_number"
)
PHOTO_PROMO = {
    "name": "photo_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "New in, {{1}}!"},
    ],
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def ready(sandbox):
    """Two numbers in two WABAs of one business portfolio, a third WABA on its own."""
    for phone, waba in ((PHONE, WABA), (OTHER_PHONE, OTHER_WABA)):
        sandbox.post(
            "/_sandbox/numbers",
            {
                "phone_number_id": phone,
                "waba_id": waba,
                "business_id": BUSINESS,
                "display_phone_number": "15550783881",
            },
        )
        sandbox.post(f"/v24.0/{waba}/message_templates", ORDER_UPDATE)
        sandbox.post(f"/v24.0/{waba}/message_templates", PHOTO_PROMO)
    sandbox.post("/_sandbox/numbers", {"phone_number_id": "phone-3", "waba_id": "waba-3"})
    sandbox.post("/v24.0/waba-3/message_templates", ORDER_UPDATE)
    return sandbox


def to(index: int) -> str:
    return f"+1555200{index:04d}"


def send_to(sandbox, index: int, phone: str = PHONE) -> str:
    answer = send(sandbox, message(to=to(index)), phone=phone, version="v24.0")
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"][0]["id"]


def set_limit(sandbox, limit, webhook="none", **target):
    answer = sandbox.post(
        "/_sandbox/limits",
        {**(target or {"business_id": BUSINESS}), "limit": limit, "webhook": webhook},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def portfolio(sandbox, business_id=BUSINESS, waba_id=None) -> dict:
    for item in sandbox.get("/_sandbox/limits").json()["data"]:
        if (business_id and item["business_id"] == business_id) or (
            waba_id and item["waba_ids"] == [waba_id] and item["business_id"] is None
        ):
            return item
    raise AssertionError("no such portfolio")


def final_status(sink, wamid) -> dict:
    """The status of ``wamid`` that tells how it ended: ``failed`` or ``delivered``."""

    def found():
        ends = ("failed", "delivered")
        return [s for s in sink.statuses() if s["id"] == wamid and s["status"] in ends]

    return wait_for(found, 10, f"a delivered or failed status for {wamid}")[0]


def account_webhooks(sink, field: str, count: int = 1) -> list[dict]:
    def found():
        payloads = [d.json for d in sink.deliveries]
        return [p for p in payloads if p["entry"][0]["changes"][0]["field"] == field]

    return wait_for(lambda: len(found()) >= count and found(), 10, f"{count} {field} webhook(s)")


def upload(sandbox, data=PNG, mime="image/png", **fields):
    form = {"type": mime, "messaging_product": "whatsapp"} | fields
    files = {"file": ("photo.png", data, mime)} if data is not None else None
    return sandbox.session.post(
        f"{sandbox.url}/v24.0/{PHONE}/media", data=form, files=files, timeout=10
    )


def photo_message(header: dict, to_number="+15552009999") -> dict:
    return message(
        to=to_number,
        template={
            "name": "photo_promo",
            "language": {"code": "en_US"},
            "components": [
                {"type": "header", "parameters": [{"type": "image", "image": header}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
            ],
        },
    )


# --- the messaging limit --------------------------------------------------------------------


def test_by_default_a_portfolio_is_unlimited_and_counts_unique_users(ready):
    for index in (1, 2, 2, 3):
        send_to(ready, index)
    item = portfolio(ready)
    assert item | {"window_seconds": 0} == {
        "business_id": BUSINESS,
        "waba_ids": [WABA, OTHER_WABA],
        "limit": "unlimited",
        "tier": "TIER_UNLIMITED",
        "explicit": False,
        "reached": 3,
        "refused": 0,
        "window_seconds": 0,
    }


def test_a_template_beyond_the_limit_is_accepted_then_fails_with_131026(ready, sink):
    set_limit(ready, 50)
    wamids = [send_to(ready, index) for index in range(50)]
    beyond = send_to(ready, 50)  # accepted: 200 and a wamid, as Meta does

    status = final_status(sink, beyond)
    assert status["status"] == "failed"
    [error] = status["errors"]
    assert (error["code"], error["title"]) == (131026, "Message undeliverable")
    assert "messaging limit" in error["error_data"]["details"]
    assert all(final_status(sink, wamid)["status"] == "delivered" for wamid in wamids[:3])
    assert (portfolio(ready)["reached"], portfolio(ready)["refused"]) == (50, 1)
    assert ready.get("/_sandbox/stats").json()["limit_refused"] == 1
    records = {r["wamid"]: r for r in ready.get("/_sandbox/messages").json()["data"]}
    assert records[beyond]["limit_refused"] and not records[wamids[0]]["limit_refused"]


def test_the_refusal_has_the_shape_of_metas_failed_status(ready, sink):
    ready.configure(webhook_batch_max=1)  # its own POST: no other user's contacts beside it
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    beyond = send_to(ready, 50)
    final_status(sink, beyond)
    [payload] = [
        d.json
        for d in sink.deliveries
        if any(
            s["id"] == beyond for s in d.json["entry"][0]["changes"][0]["value"].get("statuses", [])
        )
    ]
    assert shape(payload) == shape(with_2026(meta.payload("status_failed_131049"), failed=True))


def test_a_user_already_reached_in_the_window_is_not_counted_twice(ready, sink):
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    again = send_to(ready, 7)
    assert final_status(sink, again)["status"] == "delivered"
    assert (portfolio(ready)["reached"], portfolio(ready)["refused"]) == (50, 0)


def test_a_template_inside_a_service_window_is_not_counted(ready, sink):
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    ready.post("/_sandbox/inbound", {"phone_number_id": PHONE, "from": to(60), "text": "hi"})
    inside = send_to(ready, 60)
    assert final_status(sink, inside)["status"] == "delivered"
    assert portfolio(ready)["reached"] == 50


def test_wabas_of_one_business_share_its_limit_and_others_do_not(ready, sink):
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    from_the_other_waba = send_to(ready, 99, phone=OTHER_PHONE)
    assert final_status(sink, from_the_other_waba)["status"] == "failed"
    set_limit(ready, 50, waba_id="waba-3")
    elsewhere = send_to(ready, 99, phone="phone-3")  # its own portfolio: nobody reached yet
    assert final_status(sink, elsewhere)["status"] == "delivered"
    assert portfolio(ready, business_id=None, waba_id="waba-3")["reached"] == 1


def test_the_window_moves(ready, sink):
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    ready.configure(limit_window_seconds=1.0)
    wait_for(lambda: portfolio(ready)["reached"] == 0, 10, "the reached users to leave the window")
    assert final_status(sink, send_to(ready, 70))["status"] == "delivered"


def test_a_limit_set_by_waba_id_is_its_business_portfolios(ready):
    answer = set_limit(ready, 250, waba_id=OTHER_WABA)
    assert (answer["business_id"], answer["limit"], answer["tier"]) == (BUSINESS, 250, "TIER_250")


@pytest.mark.parametrize(
    "body",
    [
        {"business_id": BUSINESS, "limit": 1234},
        {"business_id": BUSINESS, "limit": "TIER_3K"},
        {"business_id": BUSINESS},
        {"limit": 250},
        {"business_id": BUSINESS, "limit": 250, "webhook": "loud"},
    ],
)
def test_a_wrong_limit_body_is_refused(ready, body):
    assert ready.post("/_sandbox/limits", body).status_code == 400


# --- business_capability_update ---------------------------------------------------------------


def test_a_new_limit_is_announced_to_every_waba_of_the_portfolio_as_an_integer(ready, sink):
    answer = set_limit(ready, 2000, webhook="integer")
    assert answer["webhooks_sent_to"] == [WABA, OTHER_WABA]
    payloads = account_webhooks(sink, "business_capability_update", 2)
    assert sorted(p["entry"][0]["id"] for p in payloads) == [WABA, OTHER_WABA]
    example = meta.payload("business_capability_update")
    for payload in payloads:
        assert shape(payload) == shape(example)
        value = payload["entry"][0]["changes"][0]["value"]
        assert value["max_daily_conversations_per_business"] == 2000


def test_the_tier_form_and_unlimited(ready, sink):
    wabas = set_limit(ready, "TIER_100K", webhook="tier")["webhooks_sent_to"]
    assert len(wabas) == 2  # one webhook per WABA of the portfolio: all in before the next step
    payload = account_webhooks(sink, "business_capability_update", count=len(wabas))[0]
    assert shape(payload) == shape(meta.payload("business_capability_update_tier"))
    value = payload["entry"][0]["changes"][0]["value"]
    assert value["max_daily_conversations_per_business"] == "TIER_100K"
    sink.clear()
    set_limit(ready, "unlimited", webhook="integer")
    payloads = account_webhooks(sink, "business_capability_update", count=len(wabas))
    assert [
        p["entry"][0]["changes"][0]["value"]["max_daily_conversations_per_business"]
        for p in payloads
    ] == [-1, -1]


def test_at_250_the_webhook_carries_the_portfolios_phone_numbers_as_metas_table_says(ready, sink):
    set_limit(ready, 250, webhook="integer")
    value = account_webhooks(sink, "business_capability_update", 2)[0]["entry"][0]["changes"][0]
    assert value["value"] == {
        "max_daily_conversations_per_business": 250,
        "max_phone_numbers_per_business": 2,
    }


def test_webhook_none_changes_the_limit_silently(ready, sink):
    assert set_limit(ready, 10000, webhook="none")["webhooks_sent_to"] == []
    ready.wait_idle()
    assert not [d for d in sink.deliveries if b"business_capability_update" in d.body]
    assert portfolio(ready)["limit"] == 10000


# --- quality, alerts, spam ----------------------------------------------------------------------


def test_a_quality_change_sends_phone_number_quality_update(ready, sink):
    set_limit(ready, 2000)
    answer = ready.post(
        "/_sandbox/quality",
        {"phone_number_id": PHONE, "quality": "RED", "event": "DOWNGRADE", "current_limit": 2000},
    )
    assert answer.status_code == 200, answer.text
    [payload] = account_webhooks(sink, "phone_number_quality_update")
    assert shape(payload) == shape(meta.payload("phone_number_quality_update"))
    assert payload["entry"][0]["id"] == WABA
    assert payload["entry"][0]["changes"][0]["value"] == {
        "display_phone_number": "15550783881",
        "event": "DOWNGRADE",
        "current_limit": "TIER_2K",
        "max_daily_conversations_per_business": "TIER_2K",
    }
    fields = ready.get(f"/v24.0/{PHONE}", params={"fields": "quality_rating"}).json()
    assert fields == {"quality_rating": "RED", "id": PHONE}


def test_without_a_set_limit_the_quality_update_carries_no_portfolio_limit(ready, sink):
    ready.post("/_sandbox/quality", {"phone_number_id": PHONE, "event": "FLAGGED"})
    [payload] = account_webhooks(sink, "phone_number_quality_update")
    value = payload["entry"][0]["changes"][0]["value"]
    assert value == {"display_phone_number": "15550783881", "event": "FLAGGED"}


def test_a_throughput_upgrade_through_quality_raises_the_numbers_throughput(ready):
    assert ready.get(f"/v24.0/{PHONE}", params={"fields": "throughput"}).json()["throughput"] == {
        "level": "STANDARD"
    }
    ready.post("/_sandbox/quality", {"phone_number_id": PHONE, "event": "THROUGHPUT_UPGRADE"})
    assert ready.get(f"/v24.0/{PHONE}", params={"fields": "throughput"}).json()["throughput"] == {
        "level": "HIGH"
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"phone_number_id": "nobody", "event": "DOWNGRADE"}, 404),
        ({"phone_number_id": PHONE, "event": "WORSE"}, 400),
        ({"phone_number_id": PHONE, "event": "DOWNGRADE", "quality": "PURPLE"}, 400),
        ({"phone_number_id": PHONE, "event": "DOWNGRADE", "current_limit": "TIER_7"}, 400),
    ],
)
def test_a_wrong_quality_body_is_refused(ready, body, status):
    assert ready.post("/_sandbox/quality", body).status_code == status


def test_an_account_alert_on_demand(ready, sink):
    answer = ready.post(
        "/_sandbox/account_alert",
        {"waba_id": WABA, "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED"},
    )
    assert answer.status_code == 200, answer.text
    [payload] = account_webhooks(sink, "account_alerts")
    assert shape(payload) == shape(meta.payload("account_alerts"))
    value = payload["entry"][0]["changes"][0]["value"]
    assert (payload["entry"][0]["id"], value["entity_type"], value["entity_id"]) == (
        WABA,
        "BUSINESS",
        BUSINESS,
    )
    assert value["alert_info"]["alert_severity"] == "WARNING"
    ready.post(
        "/_sandbox/account_alert",
        {"waba_id": WABA, "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED"},
    )
    failed = account_webhooks(sink, "account_alerts", 2)[1]["entry"][0]["changes"][0]["value"]
    assert failed["alert_info"]["alert_severity"] == "CRITICAL"
    assert ready.post("/_sandbox/account_alert", {"waba_id": WABA}).status_code == 400


def test_the_spam_limit_answers_131048_to_every_send_from_the_number_until_lifted(ready):
    assert ready.post("/_sandbox/spam_limit", {"phone_number_id": PHONE, "on": True}).ok
    assert_meta_error(send(ready), 400, 131048)
    marketing = ready.post(f"/v24.0/{PHONE}/marketing_messages", photo_message({"link": "x"}))
    assert_meta_error(marketing, 400, 131048)
    assert send(ready, phone=OTHER_PHONE).status_code == 200  # that number only
    assert ready.post("/_sandbox/spam_limit", {"phone_number_id": PHONE, "on": False}).ok
    assert send(ready).status_code == 200
    assert ready.post("/_sandbox/spam_limit", {"phone_number_id": PHONE}).status_code == 400


# --- GET /{phone-number-id} ---------------------------------------------------------------------


def test_the_number_answers_the_fields_asked_for(ready):
    set_limit(ready, 2000)
    answer = ready.get(f"/v24.0/{PHONE}", params={"fields": FIELDS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert shape(body) == shape(meta.payload("phone_number_limit_fields"))
    assert body == {
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "quality_rating": "GREEN",
        "messaging_limit_tier": None,
        "throughput": {"level": "STANDARD"},
        "display_phone_number": "15550783881",
        "id": PHONE,
    }
    only = ready.get(
        f"/v24.0/{PHONE}", params={"fields": "whatsapp_business_manager_messaging_limit"}
    )
    assert only.json() == {"whatsapp_business_manager_messaging_limit": "TIER_2K", "id": PHONE}
    unset = ready.get(
        "/v24.0/phone-3", params={"fields": "whatsapp_business_manager_messaging_limit"}
    )
    assert unset.json()["whatsapp_business_manager_messaging_limit"] == "TIER_UNLIMITED"


def test_an_unknown_number_or_field_is_graphs_error_100(ready):
    assert_meta_error(ready.get("/v24.0/nobody", params={"fields": FIELDS}), 400, 100)
    assert_meta_error(ready.get(f"/v24.0/{PHONE}", params={"fields": "favourite_colour"}), 400, 100)


# --- media --------------------------------------------------------------------------------------


def test_an_upload_answers_a_numeric_id_and_keeps_the_file(ready):
    answer = upload(ready)
    assert answer.status_code == 200, answer.text
    assert shape(answer.json()) == shape(meta.payload("media_upload"))
    media_id = answer.json()["id"]
    assert media_id.isdigit()

    info = ready.get(f"/v24.0/{media_id}").json()
    assert shape(info) == shape(meta.payload("media_url"))
    assert (info["mime_type"], info["file_size"], info["id"]) == ("image/png", len(PNG), media_id)
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    download = ready.get(info["url"].removeprefix(ready.url))
    assert (download.content, download.headers["Content-Type"]) == (PNG, "image/png")
    assert ready.get("/_sandbox/stats").json()["media_uploads"] == 1


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (None, {}),  # no file
        (PNG, {"type": ""}),  # no type
        (PNG, {"messaging_product": "telegram"}),
        (PNG, {"type": "application/zip"}),  # a type Meta does not take
        (b"x" * (5 * 1024 * 1024 + 1), {}),  # over an image's 5 MB
    ],
)
def test_a_wrong_upload_is_metas_400_error_100(ready, data, fields):
    assert_meta_error(upload(ready, data, **fields), 400, 100)
    assert ready.get("/_sandbox/stats").json()["media_uploads"] == 0


def test_a_template_header_may_name_an_uploaded_id_or_a_link(ready):
    media_id = upload(ready).json()["id"]
    assert send(ready, photo_message({"id": media_id})).status_code == 200
    assert send(ready, photo_message({"link": "https://example.com/a.png"})).status_code == 200


def test_an_unknown_or_wrong_kind_of_media_id_is_131053(ready):
    assert_meta_error(send(ready, photo_message({"id": "123456"})), 400, 131053)
    pdf = upload(ready, b"%PDF-1.4", "application/pdf").json()["id"]
    assert_meta_error(send(ready, photo_message({"id": pdf})), 400, 131053)


def test_an_expired_media_id_is_131053_and_gone(ready):
    media_id = upload(ready).json()["id"]
    ready.configure(media_ttl_seconds=0)
    assert_meta_error(send(ready, photo_message({"id": media_id})), 400, 131053)
    assert_meta_error(ready.get(f"/v24.0/{media_id}"), 400, 100)


def test_a_deleted_media_id_is_gone(ready):
    media_id = upload(ready).json()["id"]
    deleted = ready.session.delete(f"{ready.url}/v24.0/{media_id}", timeout=10)
    assert deleted.json() == {"success": True}
    assert_meta_error(send(ready, photo_message({"id": media_id})), 400, 131053)


# --- reset ----------------------------------------------------------------------------------------


def test_a_reset_forgets_the_traffic_and_keeps_the_accounts_until_everything(ready):
    set_limit(ready, 50)
    for index in range(50):
        send_to(ready, index)
    send_to(ready, 50)
    media_id = upload(ready).json()["id"]
    ready.post("/_sandbox/spam_limit", {"phone_number_id": PHONE, "on": True})

    ready.post("/_sandbox/reset", {})
    item = portfolio(ready)
    assert (item["limit"], item["reached"], item["refused"]) == (50, 0, 0)
    assert_meta_error(ready.get(f"/v24.0/{media_id}"), 400, 100)
    assert send(ready, message(to=to(1))).status_code == 200  # the spam limit is lifted
    assert ready.get("/_sandbox/stats").json()["limit_refused"] == 0

    ready.post("/_sandbox/reset", {"everything": True})
    ready.post("/_sandbox/numbers", {"phone_number_id": PHONE, "waba_id": WABA})
    limit = ready.get(
        f"/v24.0/{PHONE}", params={"fields": "whatsapp_business_manager_messaging_limit"}
    )
    assert limit.json()["whatsapp_business_manager_messaging_limit"] == "TIER_UNLIMITED"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_sandbox/limits"),
        ("POST", "/_sandbox/limits"),
        ("POST", "/_sandbox/quality"),
        ("POST", "/_sandbox/account_alert"),
        ("POST", "/_sandbox/spam_limit"),
    ],
)
def test_the_new_control_endpoints_need_the_control_token(sandbox_process, method, path):
    answer = requests.request(method, sandbox_process.url + path, json={}, timeout=5)
    assert answer.status_code == 401, answer.text
