"""Tenant isolation for every API endpoint: another tenant's object is a 404, never a 403.

The test enumerates the URL patterns under /api/v1/, so an endpoint added without a case
here fails ``test_every_api_endpoint_has_an_isolation_case``.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from .factories import MessageTemplateFactory
from .messaging.helpers import body as message_body
from .templates_registry.builders import body, send_body, text


def _api_patterns(patterns=None, prefix=""):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from _api_patterns(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and (prefix + str(p.pattern)).startswith("api/v1/"):
            yield p.name


# url name -> (method, kind of object, path builder taking the other tenant's object, body)
OBJECT_ENDPOINTS = {
    "template-detail": ("get", "template", lambda t: f"/api/v1/templates/{t.pk}", None),
    "template-validate": (
        "post",
        "template",
        lambda t: f"/api/v1/templates/{t.pk}/validate",
        {"components": [send_body(text("x"))]},
    ),
    "message-detail": ("get", "message", lambda m: f"/api/v1/messages/{m}", None),
    "message-cancel": ("post", "message", lambda m: f"/api/v1/messages/{m}/cancel", None),
    "media-detail": ("get", "media", lambda m: f"/api/v1/media/{m.pk}", None),
    "campaign-detail": ("get", "campaign", lambda c: f"/api/v1/campaigns/{c}", None),
    "campaign-report": ("get", "campaign", lambda c: f"/api/v1/campaigns/{c}/report", None),
    "campaign-invalid-rows": (
        "get",
        "campaign",
        lambda c: f"/api/v1/campaigns/{c}/invalid-rows.csv",
        None,
    ),
    "campaign-start": ("post", "campaign", lambda c: f"/api/v1/campaigns/{c}/start", {}),
    "campaign-pause": ("post", "campaign", lambda c: f"/api/v1/campaigns/{c}/pause", {}),
    "campaign-resume": ("post", "campaign", lambda c: f"/api/v1/campaigns/{c}/resume", {}),
    "campaign-cancel": ("post", "campaign", lambda c: f"/api/v1/campaigns/{c}/cancel", {}),
}
# What the owner gets where it is not 200: a draft cannot be paused or resumed.
OWN_STATUS = {"campaign-pause": 409, "campaign-resume": 409}
COLLECTION_ENDPOINTS = {
    "template-list",
    "template-sync",
    "message-list",
    "message-batch",
    "inbound-list",
    "pricing-report",
    "tenant-settings",  # the caller's own tenant only (tests/callbacks: another's is unreachable)
    "media-upload",  # through the caller's own senders only (tests/media/test_api.py)
    "campaign-list",  # the caller's own (tests/campaigns/test_api.py), made from its templates
}


def test_every_api_endpoint_has_an_isolation_case():
    names = set(_api_patterns())
    assert names == set(OBJECT_ENDPOINTS) | COLLECTION_ENDPOINTS


@pytest.fixture
def b_template(tenant_b):
    return MessageTemplateFactory(tenant=tenant_b.tenant, components=[body("Hi {{1}}, ok.")])


@pytest.fixture
def b_message(tenant_b):
    template = MessageTemplateFactory(tenant=tenant_b.tenant)
    response = tenant_b.client.post(
        "/api/v1/messages", message_body(template), format="json", HTTP_IDEMPOTENCY_KEY="b-key"
    )
    return response.json()["id"]


@pytest.fixture
def b_media(tenant_b):
    from media.models import MediaAsset

    return MediaAsset.objects.create(
        tenant=tenant_b.tenant,
        sender=tenant_b.tenant.senders.get(),
        file=b"%PDF-1.7",
        filename="b.pdf",
        content_type="application/pdf",
        size=8,
        sha256="0" * 64,
    )


@pytest.fixture
def b_campaign(tenant_b):
    template = MessageTemplateFactory(tenant=tenant_b.tenant)
    row = {"to": "+4915112345678", "header.1": "A-1", "1": "Ana", "2": "A-1"}
    response = tenant_b.client.post(
        "/api/v1/campaigns",
        {"template": {"name": template.name, "language": "en_US"}, "audience": [row]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="b-campaign",
    )
    return response.json()["id"]


@pytest.mark.parametrize("name", sorted(OBJECT_ENDPOINTS))
def test_other_tenants_object_is_404(
    name, tenant_a, tenant_b, b_template, b_message, b_media, b_campaign
):
    method, kind, path, payload = OBJECT_ENDPOINTS[name]
    target = {
        "template": b_template,
        "message": b_message,
        "media": b_media,
        "campaign": b_campaign,
    }[kind]
    foreign = getattr(tenant_a.client, method)(path(target), payload, format="json")
    assert foreign.status_code == 404, foreign.content
    assert foreign.json()["error"]["code"] == f"{kind}_not_found"
    own = getattr(tenant_b.client, method)(path(target), payload, format="json")
    assert own.status_code == OWN_STATUS.get(name, 200), own.content


def test_message_list_shows_only_own_messages(tenant_a, b_message):
    assert tenant_a.client.get("/api/v1/messages").json()["results"] == []


def test_batch_cannot_reach_another_tenants_template_or_keys(tenant_a, tenant_b, b_message):
    b_template = MessageTemplateFactory(tenant=tenant_b.tenant, name="only_b")
    item = {"idempotency_key": "b-key", **message_body(b_template)}
    result = tenant_a.client.post(
        "/api/v1/messages/batch", {"messages": [item]}, format="json"
    ).json()["results"][0]
    assert result["status"] == 400 and result["error"]["code"] == "template_not_found"


def test_pricing_report_counts_only_own_messages(tenant_a, tenant_b, b_message):
    from django.utils import timezone

    from messaging.models import Message

    Message.objects.filter(pk=b_message).update(
        pricing_type="regular", pricing_category="utility", priced_at=timezone.now()
    )
    assert tenant_b.client.get("/api/v1/reports/pricing").json()["billable"] == 1
    mine = tenant_a.client.get("/api/v1/reports/pricing").json()
    assert (mine["billable"], mine["free"], mine["rows"]) == (0, 0, [])


def test_list_shows_only_own_templates(tenant_a, tenant_b, b_template):
    mine = MessageTemplateFactory(tenant=tenant_a.tenant)
    ids = {t["id"] for t in tenant_a.client.get("/api/v1/templates").json()["results"]}
    assert ids == {str(mine.pk)}
    by_name = tenant_a.client.get("/api/v1/templates", {"name": b_template.name}).json()
    assert by_name["results"] == []


def test_names_are_unique_per_tenant_not_globally(tenant_a, b_template):
    payload = {
        "name": b_template.name,
        "language": b_template.language,
        "category": "UTILITY",
        "components": [body("Hi {{1}}, ok.")],
    }
    assert tenant_a.client.post("/api/v1/templates", payload, format="json").status_code == 201


# Every endpoint, with a stand-in path and method: who may call it at all.
EVERY_ENDPOINT = {
    "template-list": ("get", "/api/v1/templates"),
    "template-sync": ("post", "/api/v1/templates/sync"),
    "template-detail": ("get", "/api/v1/templates/00000000-0000-0000-0000-000000000000"),
    "template-validate": (
        "post",
        "/api/v1/templates/00000000-0000-0000-0000-000000000000/validate",
    ),
    "message-list": ("get", "/api/v1/messages"),
    "message-batch": ("post", "/api/v1/messages/batch"),
    "message-detail": ("get", "/api/v1/messages/00000000-0000-0000-0000-000000000000"),
    "message-cancel": ("post", "/api/v1/messages/00000000-0000-0000-0000-000000000000/cancel"),
    "inbound-list": ("get", "/api/v1/inbound"),
    "pricing-report": ("get", "/api/v1/reports/pricing"),
    "tenant-settings": ("get", "/api/v1/tenant"),
    "media-upload": ("post", "/api/v1/media"),
    "media-detail": ("get", "/api/v1/media/00000000-0000-0000-0000-000000000000"),
    "campaign-list": ("post", "/api/v1/campaigns"),
    **{
        f"campaign-{name}": (
            "get" if name in ("detail", "report", "invalid-rows") else "post",
            "/api/v1/campaigns/00000000-0000-0000-0000-000000000000"
            + {"detail": "", "invalid-rows": "/invalid-rows.csv"}.get(name, f"/{name}"),
        )
        for name in ("detail", "report", "invalid-rows", "start", "pause", "resume", "cancel")
    },
}


def test_the_401_matrix_names_every_endpoint():
    assert set(EVERY_ENDPOINT) == set(_api_patterns())


def _revoked(tenant):
    from tenants.models import ApiKey
    from tenants.services import api_key_create, api_key_revoke

    made = api_key_create(tenant=tenant)
    api_key_revoke(api_key=ApiKey.objects.get(pk=made.api_key.pk))
    return made.raw


@pytest.mark.parametrize("name", sorted(EVERY_ENDPOINT))
@pytest.mark.parametrize("credential", ["missing", "malformed", "unknown", "revoked", "inactive"])
def test_every_endpoint_refuses_bad_credentials_with_401(name, credential, tenant_a):
    from rest_framework.test import APIClient

    from tests.conftest import make_tenant_client

    method, path = EVERY_ENDPOINT[name]
    header = {
        "missing": None,
        "malformed": "Bearer",
        "unknown": "Bearer wp_abcdefgh_" + "x" * 32,
        "revoked": f"Bearer {_revoked(tenant_a.tenant)}",
        "inactive": f"Bearer {make_tenant_client(slug='gone', active=False).raw_key}",
    }[credential]
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    answer = getattr(client, method)(path, {}, format="json")
    assert answer.status_code == 401, (name, credential, answer.content)
    codes = ("not_authenticated", "authentication_failed", "tenant_inactive")
    assert answer.json()["error"]["code"] in codes
    assert answer["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("name", sorted(EVERY_ENDPOINT))
def test_every_endpoint_is_throttled_per_tenant_with_retry_after(name, tenant_a, tenant_b):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(api_requests_per_second=1)
    method, path = EVERY_ENDPOINT[name]
    answers = [getattr(tenant_a.client, method)(path, {}, format="json") for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert int(limited[0]["Retry-After"]) >= 1
    other = getattr(tenant_b.client, method)(path, {}, format="json")
    assert other.status_code != 429
