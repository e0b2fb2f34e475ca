"""``POST /api/v1/messages`` answers the same through its lean path (``core.lean``) as through
DRF alone: each request below goes to the endpoint and, as a twin (another key, another
recipient), to the DRF view by itself; status, headers and body must match (ids and times
aside). Which path answered is checked too: the plain request must not reach DRF."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from messaging import apis
from messaging.models import Message, MessageEvent
from templates_registry.models import TemplateStatus
from tenants.models import ApiKey

from ..factories import MessageTemplateFactory
from .helpers import body

URL = "/api/v1/messages"
VOLATILE = {"id", "created_at", "state_changed_at", "idempotency_key", "to", "next_attempt_at"}
HEADERS = ("Content-Type", "Vary", "Allow", "Idempotent-Replayed", "Retry-After")
factory = RequestFactory()


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def _request(tenant_a, data, *, key, content_type="application/json", auth=None, accept=None):
    raw = data if isinstance(data, (str, bytes)) else json.dumps(data)
    extra = {"HTTP_AUTHORIZATION": auth or f"Bearer {tenant_a.raw_key}"}
    if accept:
        extra["HTTP_ACCEPT"] = accept
    if key:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return factory.post(URL, raw, content_type=content_type, **extra)


def _seen(response) -> tuple:
    response.render() if hasattr(response, "render") else None
    data = json.loads(response.content) if response.content else None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in VOLATILE}
        if isinstance(data.get("error"), dict):
            data["error"] = {k: v for k, v in data["error"].items() if k != "details"} | {
                "details": [
                    {k: v for k, v in d.items() if k != "message_id"}
                    for d in data["error"].get("details", [])
                ]
            }
    return response.status_code, {h: response.get(h) for h in HEADERS}, data


def _both(tenant_a, make, monkeypatch, *, lean_answers: bool):
    """The lean endpoint's answer and the DRF view's (for ``make(n)``'s twin), and whether the
    DRF view was reached on the endpoint."""
    view = apis.MessageListCreateApi.as_view()
    reached = []
    monkeypatch.setattr(apis.MessageListCreateApi, "initial", _spy(reached))
    endpoint = view(make(1))
    assert bool(reached) is (not lean_answers), "which path answered"
    drf = view.drf(make(2))
    return _seen(endpoint), _seen(drf)


def _spy(reached):
    original = apis.MessageListCreateApi.initial

    def initial(self, request, *args, **kwargs):
        reached.append(request)
        return original(self, request, *args, **kwargs)

    return initial


def test_a_plain_send_takes_the_lean_path_and_answers_as_drf(tenant_a, template, monkeypatch):
    def make(n):
        return _request(tenant_a, body(template, to=f"+4915100000{n:03d}"), key=f"k{n}")

    lean, drf = _both(tenant_a, make, monkeypatch, lean_answers=True)
    assert lean == drf
    assert lean[0] == 202 and lean[2]["state"] == "queued"
    assert Message.objects.count() == 2
    assert sorted(MessageEvent.objects.values_list("type", flat=True)) == ["requested"] * 2


def test_a_replay_answers_the_stored_message_as_drf(tenant_a, template, monkeypatch):
    data = body(template, to="+4915100000001")
    view = apis.MessageListCreateApi.as_view()
    first = _seen(view(_request(tenant_a, data, key="same")))
    lean, drf = _both(
        tenant_a, lambda n: _request(tenant_a, data, key="same"), monkeypatch, lean_answers=True
    )
    assert lean == drf
    assert lean[1]["Idempotent-Replayed"] == "true" and lean[2] == first[2]
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "case",
    [
        "template_not_found",
        "template_paused",
        "key_reused_with_another_body",
    ],
)
def test_a_refusal_after_the_token_is_spent_answers_as_drf(tenant_a, template, monkeypatch, case):
    if case == "template_paused":
        template.status = TemplateStatus.PAUSED
        template.save()
    if case == "key_reused_with_another_body":
        apis.MessageListCreateApi.as_view()(
            _request(tenant_a, body(template, to="+4915100000001"), key="reused")
        )

    def make(n):
        data = body(template, to=f"+4915100000{n + 10:03d}")
        if case == "template_not_found":
            data["template"]["name"] = "no_such_template"
        return _request(tenant_a, data, key="reused" if case.startswith("key") else f"r{n}")

    lean, drf = _both(tenant_a, make, monkeypatch, lean_answers=True)
    assert lean == drf and lean[0] in (400, 409)


@pytest.mark.parametrize(
    "case",
    [
        "no_idempotency_key",
        "bad_key",
        "revoked_key",
        "inactive_tenant",
        "invalid_recipient",
        "not_json",
        "nan",
        "array",
        "nul",
        "form",
        "huge",
        "infinity",
        "accept_xml",
    ],
)
def test_anything_else_is_answered_by_drf(tenant_a, template, monkeypatch, case):
    if case == "revoked_key":
        ApiKey.objects.filter(tenant=tenant_a.tenant).update(revoked_at="2026-01-01T00:00:00Z")
    if case == "inactive_tenant":
        tenant_a.tenant.active = False
        tenant_a.tenant.save()
    good = body(template, to="+4915100000001")
    payloads = {
        "invalid_recipient": {**good, "to": "12345"},
        "not_json": "{not json",
        "nan": json.dumps(good)[:-1] + ', "ttl_seconds": NaN}',
        "array": [good],
        "nul": {**good, "metadata": {"a": "x\x00y"}},
        "huge": {**good, "metadata": {"blob": "x" * 3_000_000}},  # over Django's body limit
        "infinity": json.dumps(good)[:-1] + ', "metadata": {"x": 1e400}}',  # parses as inf
    }

    def make(n):
        return _request(
            tenant_a,
            payloads.get(case, good),
            key=None if case == "no_idempotency_key" else f"e{n}",
            auth="Bearer wp_nope_nope" if case == "bad_key" else None,
            content_type="application/x-www-form-urlencoded"
            if case == "form"
            else "application/json",
            accept="application/xml" if case == "accept_xml" else None,
        )

    lean, drf = _both(tenant_a, make, monkeypatch, lean_answers=False)
    assert lean == drf and 400 <= lean[0] < 500
    assert not Message.objects.exists()


def test_an_empty_bucket_is_answered_by_drf_with_429(tenant_a, template, monkeypatch):
    tenant_a.tenant.api_requests_per_second = 1
    tenant_a.tenant.save()
    view = apis.MessageListCreateApi.as_view()
    assert (
        view(_request(tenant_a, body(template, to="+4915100000001"), key="t1")).status_code == 202
    )
    reached = []
    monkeypatch.setattr(apis.MessageListCreateApi, "initial", _spy(reached))
    answer = view(_request(tenant_a, body(template, to="+4915100000002"), key="t2"))
    answer.render()
    assert answer.status_code == 429 and reached
    assert json.loads(answer.content)["error"]["code"] == "rate_limited"
    assert Message.objects.count() == 1
