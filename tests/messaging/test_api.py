"""The message API in process (no worker): validation, idempotency, batch, reads, cancel."""

import pytest

from messaging.models import Message, MessageEvent
from messaging.states import MessageState

from ..factories import MessageTemplateFactory
from .helpers import body, components

URL = "/api/v1/messages"


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def post(client, data, key="key-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, data, format="json", **headers)


def test_create_answers_202_with_a_queued_message(api, template):
    response = post(api, body(template, to="+49 151 1234 5678"))
    assert response.status_code == 202, response.json()
    data = response.json()
    assert data["state"] == "queued" and data["to"] == "+4915112345678"
    assert data["template"] == {"name": template.name, "language": "en_US", "category": "UTILITY"}
    message = Message.objects.get(pk=data["id"])
    assert [e.type for e in message.events.all()] == ["requested"]


def test_idempotency_key_is_required(api, template):
    response = post(api, body(template), key=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_missing"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"to": "12345"}, "recipient_invalid"),
        ({"to": "015112345678"}, "recipient_invalid"),  # no country code: Meta would guess
        ({"components": components(name="Ana\nMaria")}, "param_newline"),
        ({"components": components()[:1]}, "param_count"),
        ({"metadata": "x"}, "validation_error"),
    ],
)
def test_invalid_requests_are_400_and_create_nothing(api, template, change, code):
    data = body(template, **{k: v for k, v in change.items() if k != "to"})
    if "to" in change:
        data["to"] = change["to"]
    response = post(api, data)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not Message.objects.exists()


def test_unknown_or_unapproved_template_is_400(api, tenant_a, template):
    data = body(template)
    data["template"]["name"] = "nope"
    assert post(api, data).json()["error"]["code"] == "template_not_found"
    paused = MessageTemplateFactory(tenant=tenant_a.tenant, status="PAUSED")
    assert post(api, body(paused)).json()["error"]["code"] == "template_not_approved"
    assert not Message.objects.exists()


def test_sanitize_policy_records_the_change(api, tenant_a, template):
    tenant_a.tenant.param_policy = "sanitize"
    tenant_a.tenant.save()
    data = post(api, body(template, components=components(name="Ana\n  Maria"))).json()
    message = Message.objects.get(pk=data["id"])
    assert message.parameters[1]["parameters"][0]["text"] == "Ana Maria"
    [sanitized] = message.events.filter(type="sanitized")
    assert sanitized.detail["changes"][0]["before"] == "Ana\n  Maria"


def test_same_key_same_body_returns_the_same_message(api, template):
    first = post(api, body(template))
    again = post(api, body(template))
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1


def test_same_key_different_body_is_409(api, template):
    post(api, body(template))
    response = post(api, body(template, to="+4915199999999"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_are_per_tenant(api, tenant_b, template):
    post(api, body(template))
    b_template = MessageTemplateFactory(tenant=tenant_b.tenant, name=template.name)
    response = post(tenant_b.client, body(b_template))
    assert response.status_code == 202
    assert Message.objects.count() == 2


def test_batch_accepts_valid_items_and_reports_each(api, template):
    items = [
        {"idempotency_key": "b-1", **body(template)},
        {"idempotency_key": "b-2", **body(template, to="bad")},
        {"idempotency_key": "b-3", **body(template, to="+4915100000003")},
        {"idempotency_key": "b-1", **body(template)},  # same key, same body in one batch
        {"idempotency_key": "b-3", **body(template, to="+4915100000009")},  # reused
        {**body(template)},  # no key
    ]
    response = api.post(f"{URL}/batch", {"messages": items}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert [r["status"] for r in data["results"]] == [202, 400, 202, 200, 409, 400]
    assert data["results"][1]["error"]["code"] == "recipient_invalid"
    assert data["results"][3]["message"]["id"] == data["results"][0]["message"]["id"]
    assert (data["accepted"], data["rejected"]) == (3, 3)
    assert Message.objects.count() == 2


def test_batch_limits(api, template):
    too_many = [{"idempotency_key": f"k{i}", **body(template)} for i in range(1001)]
    response = api.post(f"{URL}/batch", {"messages": too_many}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "batch_too_large"
    assert api.post(f"{URL}/batch", {"messages": []}, format="json").status_code == 400


def test_detail_has_the_timeline(api, template):
    message_id = post(api, body(template)).json()["id"]
    data = api.get(f"{URL}/{message_id}").json()
    assert data["events"][0] | {"occurred_at": None, "recorded_at": None} == {
        "type": "requested",
        "source": "api",
        "state": "queued",
        "round": 0,
        "occurred_at": None,
        "recorded_at": None,
        "detail": {"idempotency_key": "key-1"},
    }


def test_list_filters_and_paginates(api, template):
    for i in range(3):
        post(api, body(template, to=f"+491511234567{i}"), key=f"k{i}")
    page = api.get(URL, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(api.get(page["next"]).json()["results"]) == 1
    only = api.get(URL, {"recipient": "+4915112345671"}).json()["results"]
    assert [m["to"] for m in only] == ["+4915112345671"]
    assert api.get(URL, {"state": "queued"}).json()["results"]
    assert api.get(URL, {"state": "delivered"}).json()["results"] == []
    assert api.get(URL, {"stalled": "true"}).json()["results"] == []
    assert api.get(URL, {"template": template.name}).json()["results"]
    assert api.get(URL, {"state": "bogus"}).status_code == 400


def test_cancel_only_before_submission(api, template):
    message_id = post(api, body(template)).json()["id"]
    response = api.post(f"{URL}/{message_id}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    again = api.post(f"{URL}/{message_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_cancellable"


def test_ledger_is_append_only_in_the_database(api, template):
    from django.db import DatabaseError, transaction

    message_id = post(api, body(template)).json()["id"]
    event = MessageEvent.objects.get(message_id=message_id)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(pk=event.pk).update(type="cancelled")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(pk=event.pk).delete()
    assert Message.objects.get(pk=message_id).state == MessageState.QUEUED


def text_body(to="+4915112345678", body="Your parcel is at the door."):
    return {"to": to, "text": {"body": body}}


def test_free_form_text_outside_the_window_is_refused(api, template):
    response = post(api, text_body())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "outside_service_window"
    assert not Message.objects.exists()


def test_free_form_text_inside_the_window(api, tenant_a):
    from django.utils import timezone

    from messaging.models import Contact

    Contact.objects.create(
        tenant=tenant_a.tenant,
        wa_id="4915112345678",
        last_inbound_at=timezone.now() - timezone.timedelta(hours=23),
    )
    data = post(api, text_body()).json()
    assert (data["kind"], data["text"], data["template"]) == (
        "text",
        "Your parcel is at the door.",
        None,
    )
    stale = post(api, text_body(to="+4915199999999"), key="k2")
    assert stale.status_code == 400
    assert post(api, text_body(body=""), key="k3").json()["error"]["code"] == "validation_error"
