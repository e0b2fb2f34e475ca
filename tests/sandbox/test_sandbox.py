"""The sandbox over real HTTP: Meta's shapes and codes, signatures, templates, throughput
limits, and each fault knob doing what it says."""

import hashlib
import hmac
import re
from collections import Counter

import pytest
import requests

from devtools.servers import APP_SECRET

from ..waiting import wait_for

WABA = "waba-1"
PHONE = "phone-1"
ORDER_UPDATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
        {
            "type": "BUTTONS",
            "buttons": [{"type": "URL", "text": "Track", "url": "https://example.com/t/{{1}}"}],
        },
    ],
}


def components(name="Ana", order="A-1", suffix="A-1"):
    return [
        {"type": "header", "parameters": [{"type": "text", "text": order}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": name}, {"type": "text", "text": order}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": suffix}],
        },
    ]


def message(to="+15551230001", opaque="", **overrides):
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": components(),
        },
    }
    if opaque:
        body["biz_opaque_callback_data"] = opaque
    return body | overrides


@pytest.fixture
def ready(sandbox):
    """A registered number and an approved template on its WABA."""
    sandbox.post(
        "/_sandbox/numbers",
        {"phone_number_id": PHONE, "waba_id": WABA, "display_phone_number": "15550783881"},
    )
    assert (
        sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE).json()["status"]
        == "APPROVED"
    )
    return sandbox


def send(sandbox, body=None, phone=PHONE, version="v23.0", **kw):
    return sandbox.post(f"/{version}/{phone}/messages", body or message(), **kw)


def assert_meta_error(response, http_status, code):
    assert response.status_code == http_status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["code"] == code
    assert error["message"].startswith(f"(#{code}) ")
    assert error["type"] == "OAuthException"
    assert isinstance(error["error_data"]["details"], str) and error["error_data"]["details"]
    assert error["error_data"]["messaging_product"] == "whatsapp"


# --- the happy path -------------------------------------------------------------------------


def test_accepted_send_answers_metas_success_json_with_unique_wamids(ready):
    first, second = send(ready).json(), send(ready, message(to="+1 (555) 123-0002")).json()
    assert first["messaging_product"] == "whatsapp"
    assert first["contacts"] == [{"input": "+15551230001", "wa_id": "15551230001"}]
    assert second["contacts"][0]["wa_id"] == "15551230002"
    [msg] = first["messages"]
    assert msg["message_status"] == "accepted" and msg["id"].startswith("wamid.")
    assert msg["id"] != second["messages"][0]["id"]


def test_ground_truth_records_every_accepted_message(ready):
    wamid = send(ready, message(opaque="msg-1")).json()["messages"][0]["id"]
    send(ready, message(opaque="msg-1"))  # the same logical message again
    data = ready.get("/_sandbox/messages", params={"biz_opaque_callback_data": "msg-1"}).json()
    assert data["count"] == 2
    record = next(r for r in data["data"] if r["wamid"] == wamid)
    assert record | {"accepted_at": 0} == record | {
        "phone_number_id": PHONE,
        "to": "+15551230001",
        "wa_id": "15551230001",
        "template": {"name": "order_update", "language": "en_US"},
        "biz_opaque_callback_data": "msg-1",
        "submissions": 2,
        "answered": True,
        "accepted_at": 0,
    }
    stats = ready.get("/_sandbox/stats").json()
    assert stats["accepted"] == 2 and stats["duplicate_submissions"] == 1


def test_360dialog_shape(ready):
    ready.post("/_sandbox/numbers", {"phone_number_id": PHONE, "d360_api_key": "d360-key"})
    ok = requests.post(
        f"{ready.url}/messages",
        json=message(opaque="d1"),
        headers={"D360-API-KEY": "d360-key"},
        timeout=5,
    )
    assert ok.status_code == 200 and ok.json()["messages"][0]["message_status"] == "accepted"
    [record] = ready.get("/_sandbox/messages").json()["data"]
    assert record["phone_number_id"] == PHONE
    missing = requests.post(f"{ready.url}/messages", json=message(), timeout=5)
    assert missing.status_code == 401
    assert missing.json() == {
        "meta": {"success": False, "httpCode": 401, "developerMessage": "Invalid api key"}
    }


# --- every error code in Meta's shape ---------------------------------------------------------


def _without(key):
    body = message()
    del body[key]
    return body


def _with_components(comps):
    body = message()
    body["template"] = {**body["template"], "components": comps}
    return body


ERROR_CASES = [
    (
        "unknown template",
        404,
        132001,
        message(template={"name": "nope", "language": {"code": "en_US"}}),
    ),
    (
        "wrong language",
        404,
        132001,
        message(template={"name": "order_update", "language": {"code": "pt_BR"}}),
    ),
    (
        "param count",
        400,
        132000,
        _with_components(
            [
                *components()[:1],
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
                *components()[2:],
            ]
        ),
    ),
    ("missing to", 400, 131008, _without("to")),
    ("missing template", 400, 131008, _without("template")),
    ("invalid to", 400, 131009, message(to="call me")),
    ("wrong messaging_product", 400, 131009, message(messaging_product="sms")),
    ("newline in a parameter", 400, 132018, _with_components(components(name="Ana\nMaria"))),
    ("five spaces in a parameter", 400, 132018, _with_components(components(name="A     B"))),
    (
        "parameter type mismatch",
        400,
        132012,
        _with_components(
            [
                {"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]},
                *components()[1:],
            ]
        ),
    ),
    ("missing URL button parameter", 400, 131008, _with_components(components()[:2])),
    ("unsupported message type", 400, 131051, message(type="sticker")),
]


@pytest.mark.parametrize(
    ("case", "http_status", "code", "body"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_invalid_sends_get_metas_code_and_status(ready, case, http_status, code, body):
    assert_meta_error(send(ready, body), http_status, code)
    stats = ready.get("/_sandbox/stats").json()
    assert stats["rejected"] == {str(code): 1} and stats["accepted"] == 0


def test_missing_or_wrong_token_is_190_401(ready):
    anonymous = requests.post(f"{ready.url}/v23.0/{PHONE}/messages", json=message(), timeout=5)
    assert_meta_error(anonymous, 401, 190)
    ready.configure(token="the-only-token")
    assert_meta_error(send(ready), 401, 190)
    ok = requests.post(
        f"{ready.url}/v23.0/{PHONE}/messages",
        json=message(),
        timeout=5,
        headers={"Authorization": "Bearer the-only-token"},
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("status", "code"), [("PAUSED", 132015), ("DISABLED", 132016), ("PENDING", 132001)]
)
def test_template_not_approved(ready, status, code):
    ready.post(
        "/_sandbox/template_status",
        {"waba_id": WABA, "name": "order_update", "language": "en_US", "status": status},
    )
    assert_meta_error(send(ready), 404 if code == 132001 else 400, code)


def test_throughput_limit_is_130429_and_passes(ready):
    """A number's burst spent answers 130429 until its bucket refills (the arithmetic, with the
    clock as an input: ``test_limiters``). One message a second: the first goes (it did not,
    when a new bucket read its own clock after the request's)."""
    ready.post("/_sandbox/numbers", {"phone_number_id": PHONE, "mps": 1})
    first, second = (send(ready, message(to=f"+1555123{i:04d}")) for i in range(2))
    assert first.status_code == 200
    assert_meta_error(second, 400, 130429)
    wait_for(
        lambda: send(ready, message(to="+15559990000")).status_code == 200,
        5,
        "the number's bucket to refill and a send to be accepted again",
    )


def test_pair_rate_limit_is_131056_and_other_recipients_still_pass(ready):
    ready.configure(pair_burst=2, pair_interval=1.0)
    same = [send(ready) for _ in range(3)]
    assert [a.status_code for a in same[:2]] == [200, 200]
    assert_meta_error(same[2], 400, 131056)
    assert send(ready, message(to="+15557770000")).status_code == 200
    wait_for(
        lambda: send(ready).status_code == 200,
        5,
        "the pair's burst to be paid back and a send to the same recipient accepted again",
    )


def test_free_form_text_only_inside_the_service_window(ready):
    text = {
        "messaging_product": "whatsapp",
        "to": "+15551230001",
        "type": "text",
        "text": {"body": "Hello"},
    }
    assert_meta_error(send(ready, text), 400, 131047)
    assert (
        ready.post(
            "/_sandbox/inbound", {"phone_number_id": PHONE, "from": "+15551230001", "text": "hi"}
        ).status_code
        == 200
    )
    assert send(ready, text).status_code == 200


@pytest.mark.parametrize(
    ("code", "http_status"),
    [(131000, 500), (131049, 400), (368, 403), (131031, 403), (131057, 500)],
)
def test_injected_error_codes(ready, code, http_status):
    ready.configure(error_rates={str(code): 1.0})
    assert_meta_error(send(ready), http_status, code)


def test_injected_http_5xx(ready):
    ready.configure(http_503_rate=1.0)
    assert_meta_error(send(ready), 503, 2)
    ready.configure(http_503_rate=0.0, http_500_rate=1.0)
    assert_meta_error(send(ready), 500, 131000)
    assert ready.get("/_sandbox/stats").json()["http_errors"] == {"500": 1, "503": 1}


# --- webhooks -------------------------------------------------------------------------------


def test_status_webhooks_are_signed_with_the_app_secret(ready, sink):
    wamid = send(ready, message(opaque="m-1")).json()["messages"][0]["id"]
    ready.wait_idle()
    deliveries = sink.wait_for(lambda d: wamid.encode() in d.body)
    for delivery in deliveries:
        signature = delivery.headers["X-Hub-Signature-256"]
        expected = hmac.new(APP_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert signature == f"sha256={expected}"
        wrong = hmac.new(b"another-secret", delivery.body, hashlib.sha256).hexdigest()
        assert signature != f"sha256={wrong}"
    statuses = [s for s in sink.statuses() if s["id"] == wamid]
    assert sorted(s["status"] for s in statuses) == ["delivered", "read", "sent"]
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"m-1"}


def test_failing_recipients_get_a_failed_status_with_errors(ready, sink):
    ready.configure(fail_rules=[[r"^\+1555000", 131026]])
    wamid = send(ready, message(to="+15550001234")).json()["messages"][0]["id"]
    ready.wait_idle()
    [status] = [s for s in sink.statuses() if s["id"] == wamid]
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == 131026
    assert status["errors"][0]["title"] == status["errors"][0]["message"]


def test_webhooks_are_retried_until_answered_200(ready, sink):
    sink.fail_next = 2
    wamid = send(ready).json()["messages"][0]["id"]
    stats = ready.wait_idle()
    assert stats["webhooks"]["retries"] >= 2 and stats["webhooks"]["posts_failed"] == 2
    assert sorted(s["status"] for s in sink.statuses() if s["id"] == wamid) == [
        "delivered",
        "read",
        "sent",
    ]


def test_statuses_are_batched_when_due_together(ready, sink):
    ready.configure(webhook_delay_ms=300)
    for i in range(20):
        send(ready, message(to=f"+1555444{i:04d}"))
    ready.wait_idle()
    assert len(sink.statuses()) == 60
    assert (
        max(
            len(d.json["entry"][0]["changes"][0]["value"].get("statuses", []))
            for d in sink.deliveries
        )
        > 1
    )


def test_inbound_reply_webhook(ready, sink):
    ready.post(
        "/_sandbox/inbound",
        {
            "phone_number_id": PHONE,
            "from": "+15551230001",
            "text": "Does it come in blue?",
            "name": "Sheena",
        },
    )
    [delivery] = sink.wait_for(lambda d: b'"messages"' in d.body)
    value = delivery.json["entry"][0]["changes"][0]["value"]
    [contact] = value["contacts"]
    assert (contact["profile"], contact["wa_id"]) == ({"name": "Sheena"}, "15551230001")
    # 2026 (§11.1): the business-scoped user id, on the contact and the message.
    assert re.fullmatch(r"US\.\d{1,20}", contact["user_id"])
    assert value["messages"][0]["from_user_id"] == contact["user_id"]
    assert value["messages"][0]["text"] == {"body": "Does it come in blue?"}
    assert value["metadata"]["phone_number_id"] == PHONE


# --- templates --------------------------------------------------------------------------------


def test_new_templates_are_pending_then_approved_with_a_signed_webhook(sandbox, sink):
    sandbox.configure(approve_after=0.3)
    created = sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE).json()
    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    [delivery] = sink.wait_for(lambda d: b"message_template_status_update" in d.body)
    value = delivery.json["entry"][0]["changes"][0]["value"]
    assert value["event"] == "APPROVED"
    assert value["message_template_id"] == int(created["id"])
    listed = sandbox.get(f"/v23.0/{WABA}/message_templates").json()["data"]
    assert [t["status"] for t in listed] == ["APPROVED"]


def test_rejection_knob(sandbox, sink):
    sandbox.configure(reject_templates="^bad_")
    created = sandbox.post(
        f"/v23.0/{WABA}/message_templates", ORDER_UPDATE | {"name": "bad_one"}
    ).json()
    assert created["status"] == "REJECTED"
    [delivery] = sink.wait_for(lambda d: b"bad_one" in d.body)
    value = delivery.json["entry"][0]["changes"][0]["value"]
    assert (value["event"], value["reason"]) == ("REJECTED", "INVALID_FORMAT")


def test_duplicate_template_is_refused(sandbox):
    sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE)
    assert_meta_error(sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE), 400, 100)


def test_template_list_pages_with_graph_cursors(sandbox):
    for i in range(5):
        sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE | {"name": f"t_{i}"})
    page = sandbox.get(f"/v23.0/{WABA}/message_templates", params={"limit": 2}).json()
    names = [t["name"] for t in page["data"]]
    assert set(page["paging"]["cursors"]) == {"before", "after"}
    while "next" in page["paging"]:
        page = sandbox.session.get(page["paging"]["next"], timeout=5).json()
        names += [t["name"] for t in page["data"]]
    assert names == [f"t_{i}" for i in range(5)]
    only = sandbox.get(f"/v23.0/{WABA}/message_templates", params={"name": "t_3"}).json()
    assert [t["name"] for t in only["data"]] == ["t_3"]


def test_templates_are_per_waba(sandbox):
    sandbox.post("/v23.0/waba-2/message_templates", ORDER_UPDATE)
    sandbox.post("/_sandbox/numbers", {"phone_number_id": PHONE, "waba_id": WABA})
    assert_meta_error(send(sandbox), 404, 132001)  # registered with a WABA lacking it
    assert send(sandbox, phone="never-registered").status_code == 200  # sees every WABA


# --- fault knobs, measured on seeded runs -------------------------------------------------------


def _run(sandbox, count, prefix):
    sandbox.post("/_sandbox/numbers", {"phone_number_id": PHONE, "mps": 0})  # unthrottled
    wamids = []
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        for i in range(count):
            body = message(to=f"+1{prefix}{i:06d}", opaque=f"{prefix}-{i}")
            wamids.append(
                session.post(f"{sandbox.url}/v23.0/{PHONE}/messages", json=body, timeout=5).json()[
                    "messages"
                ][0]["id"]
            )
    return wamids, sandbox.wait_idle()


def test_duplicate_knob_on_1000_messages(ready, sink):
    ready.configure(webhook_duplicate_rate=0.2)
    _wamids, stats = _run(ready, 1000, "5552")
    statuses = sink.statuses()
    distinct = {(s["id"], s["status"]) for s in statuses}
    assert len(distinct) == 3000
    extra = len(statuses) - len(distinct)
    assert extra == stats["webhooks"]["duplicated"]
    assert 0.16 < extra / 3000 < 0.24, extra


def test_drop_knob_on_1000_messages(ready, sink):
    ready.configure(webhook_drop_rate=0.05)
    _wamids, stats = _run(ready, 1000, "5553")
    received = {(s["id"], s["status"]) for s in sink.statuses()}
    dropped = stats["webhooks"]["dropped"]
    assert len(received) == 3000 - dropped
    assert 0.03 < dropped / 3000 < 0.07, dropped
    records = ready.get("/_sandbox/messages").json()["data"]
    truth = {(r["wamid"], s) for r in records for s in r["statuses_dropped"]}
    assert len(truth) == dropped and not truth & received


def _out_of_order(sink, wamids):
    order = {"sent": 0, "delivered": 1, "read": 2}
    seen: dict[str, list[int]] = {w: [] for w in wamids}
    for status in sink.statuses():
        seen[status["id"]].append(order[status["status"]])
    return sum(1 for ranks in seen.values() if ranks != sorted(ranks))


def test_reorder_knob_on_1000_messages(ready, sink):
    # 500 ms between a message's statuses: a machine loaded by the whole suite let timers
    # 100 ms apart slip past each other (1.4 % in one full run), and 300 ms apart 1.3 %.
    ready.configure(sent_after_ms=20, delivered_after_ms=520, read_after_ms=1020)
    wamids, _ = _run(ready, 1000, "5554")
    # Control: natural order. Posts are in flight side by side, so on a machine loaded by the
    # whole suite one can overtake another: 3.2 % did once. Reordered is 75 % and more.
    assert _out_of_order(sink, wamids) <= 100
    sink.clear()
    ready.configure(webhook_reorder=True)
    wamids, _ = _run(ready, 1000, "5555")
    shuffled = _out_of_order(sink, wamids) / 1000
    assert 0.75 < shuffled < 0.92, shuffled  # 5 of 6 permutations are out of order
    events = [s for s in sink.statuses() if s["id"] == wamids[0]]
    assert len(events) == 3  # reordered, not lost


def test_seeded_runs_reproduce(ready, sink):
    ready.configure(webhook_drop_rate=0.1, webhook_duplicate_rate=0.1, seed=42)

    def run():
        ready.post("/_sandbox/reset")
        sink.clear()
        wamids, stats = _run(ready, 200, "5556")
        order = {wamid: index for index, wamid in enumerate(wamids)}
        records = ready.get("/_sandbox/messages").json()["data"]
        # The faults, by the message's place in the run: its wamid is fresh every time (a
        # sandbox started again must not repeat the ids its last run handed out).
        dropped = sorted((order[r["wamid"]], tuple(r["statuses_dropped"])) for r in records)
        return len(set(wamids)), dropped, stats["webhooks"]["duplicated"], set(wamids)

    first, second = run(), run()
    assert first[:3] == second[:3] and first[0] == 200
    assert not first[3] & second[3]


def test_timeout_after_accept_keeps_the_record_and_sends_webhooks(ready, sink):
    ready.configure(timeout_after_accept_rate=1.0, hang_seconds=3)
    with pytest.raises(requests.Timeout):
        send(ready, message(opaque="lost-1"), timeout=0.5)
    [record] = ready.get("/_sandbox/messages").json()["data"]
    assert record["biz_opaque_callback_data"] == "lost-1" and record["answered"] is False
    ready.wait_idle()
    assert Counter(s["status"] for s in sink.statuses() if s["id"] == record["wamid"]) == {
        "sent": 1,
        "delivered": 1,
        "read": 1,
    }
    assert ready.get("/_sandbox/stats").json()["timeouts_after_accept"] == 1


def test_connection_reset_knob(ready):
    ready.configure(connection_reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        send(ready)
    stats = ready.get("/_sandbox/stats").json()
    assert stats["connection_resets"] == 1 and stats["accepted"] == 0


def test_latency_knob(ready):
    """The answer waits the configured latency: a client that waits less times out, one that
    waits longer is answered."""
    ready.configure(latency_ms=1000)
    with pytest.raises(requests.Timeout):
        send(ready, message(to="+15558880001"), timeout=0.2)
    assert send(ready, message(to="+15558880002"), timeout=10).status_code == 200
    ready.configure(latency_ms=0, latency_spread_ms=100, latency_distribution="uniform")
    assert send(ready, message(to="+15558880000")).status_code == 200


def test_config_rejects_unknown_and_out_of_range_settings(sandbox):
    assert sandbox.post("/_sandbox/config", {"webhook_drop_rate": 2}).status_code == 400
    assert sandbox.post("/_sandbox/config", {"no_such_knob": 1}).status_code == 400
    assert sandbox.get("/_sandbox/config").json()["app_secret"] == "***"
