"""The sandbox's payloads against Meta's documented example payloads.

Each example is a fixture in ``tests/fixtures/meta`` (with the Meta page it comes from) and is
compared with what the sandbox really sends or answers: the same keys with the same JSON
types, field by field, at every level — plus the fields Meta added in 2026 (business-scoped
user ids, docs/meta-api.md §11.1), which the 2025 examples predate: ``with_2026`` adds them to
an example, and nothing else.
"""

import pytest

from ..fixtures import meta
from .test_sandbox import PHONE, WABA, message, send


def shape(value):
    """Keys and JSON types, recursively; a list is described by its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def with_2026(example, *, failed=False):
    """``example`` as Meta sends it since April 2026: statuses carry ``recipient_user_id`` and
    a ``contacts[]`` entry (``wa_id`` for a send to a number, ``user_id``) — except a failed
    status to a phone number, which has neither; inbound messages carry ``from_user_id`` and
    their contact a ``user_id``."""
    value = example["entry"][0]["changes"][0]["value"]
    if "statuses" in value and not failed:
        value["statuses"][0]["recipient_user_id"] = "US.1"
        value["contacts"] = [{"profile": {"name": "x"}, "wa_id": "1", "user_id": "US.1"}]
    if "messages" in value:
        value["messages"][0]["from_user_id"] = "US.1"
        value["contacts"][0]["user_id"] = "US.1"
    return example


@pytest.fixture(scope="module")
def examples():
    return {key: meta.payload(name) for key, name in meta.EXAMPLES.items()}


@pytest.fixture
def live(sandbox):
    sandbox.post(
        "/_sandbox/numbers",
        {"phone_number_id": PHONE, "waba_id": WABA, "display_phone_number": "15550783881"},
    )
    from .test_sandbox import ORDER_UPDATE

    sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE)
    return sandbox


def status_envelope(sink, wamid, status):
    """The delivery carrying ``status`` for ``wamid``, narrowed to that one status."""

    def carries(delivery):
        value = delivery.json["entry"][0]["changes"][0]["value"]
        return any(s["id"] == wamid and s["status"] == status for s in value.get("statuses", []))

    payload = sink.wait_for(carries)[0].json
    value = payload["entry"][0]["changes"][0]["value"]
    value["statuses"] = [s for s in value["statuses"] if s["id"] == wamid and s["status"] == status]
    return payload


def test_send_success_matches_1_3(live, examples):
    assert shape(send(live).json()) == shape(examples["success"])


def test_error_matches_1_5(live, examples):
    example = examples["error"]
    # §1.5: error_subcode is "Deprecated. Not returned in v16.0+ responses" — so not sent.
    del example["error"]["error_subcode"]
    response = send(live, message(template={"name": "nope", "language": {"code": "en_US"}}))
    assert shape(response.json()) == shape(example)


def test_sent_v23_matches_4_9_a(live, sink, examples):
    wamid = send(live, version="v23.0").json()["messages"][0]["id"]
    assert shape(status_envelope(sink, wamid, "sent")) == shape(with_2026(examples["a"]))


def test_sent_v24_matches_4_9_b(live, sink, examples):
    wamid = send(live, version="v24.0").json()["messages"][0]["id"]
    assert shape(status_envelope(sink, wamid, "sent")) == shape(with_2026(examples["b"]))


def test_delivered_matches_4_9_c(live, sink, examples):
    wamid = send(live, message(opaque="job-42"), version="v24.0").json()["messages"][0]["id"]
    assert shape(status_envelope(sink, wamid, "delivered")) == shape(with_2026(examples["c"]))


def test_failed_matches_4_9_d(live, sink, examples):
    live.configure(fail_rules=[["^\\+1555000", 131049]])
    wamid = send(live, message(to="+15550001111"), version="v24.0").json()["messages"][0]["id"]
    payload = status_envelope(sink, wamid, "failed")
    assert shape(payload) == shape(with_2026(examples["d"], failed=True))
    assert (
        payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"]
        == examples["d"]["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"]
    )


def test_inbound_text_matches_4_9_e(live, sink, examples):
    live.post(
        "/_sandbox/inbound",
        {"phone_number_id": PHONE, "from": "16505551234", "text": "Does it come in another color?"},
    )
    [delivery] = sink.wait_for(lambda d: b'"type":"text"' in d.body)
    assert shape(delivery.json) == shape(with_2026(examples["e"]))


def test_button_reply_matches_4_9_f(live, sink, examples):
    wamid = send(live).json()["messages"][0]["id"]
    live.post(
        "/_sandbox/inbound",
        {
            "phone_number_id": PHONE,
            "from": "16505551234",
            "button": {"payload": "Unsubscribe", "text": "Unsubscribe"},
            "context_wamid": wamid,
        },
    )
    [delivery] = sink.wait_for(lambda d: b'"type":"button"' in d.body)
    assert shape(delivery.json) == shape(with_2026(examples["f"]))


def test_template_status_matches_4_9_g(sandbox, sink, examples):
    from .test_sandbox import ORDER_UPDATE

    sandbox.post(f"/v23.0/{WABA}/message_templates", ORDER_UPDATE)
    [delivery] = sink.wait_for(lambda d: b"message_template_status_update" in d.body)
    assert shape(delivery.json) == shape(examples["g"])
