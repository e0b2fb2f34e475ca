"""One webhook view per provider's route, on one base (django-anymail's ``webhooks/base.py``):
the handshake is the provider's method, the checks are the classes' ``validate_request`` run
base first, and a new provider's route is a subclass naming it — nothing branches on Meta."""

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, get_resolver, reverse

from webhooks import views
from webhooks.models import WebhookDelivery
from whatsapp import Provider, get_provider, provider_class
from whatsapp.registry import PROVIDERS

from ..factories import SenderNumberFactory
from ..whatsapp.relay import RelayProvider

HANDSHAKE = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "7"}


def webhook_routes() -> dict[str, type]:
    [webhooks] = [p for p in get_resolver().url_patterns if str(p.pattern) == "webhooks/"]
    return {
        str(route.pattern): route.callback.view_class
        for route in webhooks.url_patterns
        if isinstance(route, URLPattern)
    }


@pytest.mark.django_db
def test_the_paths_providers_are_configured_with_do_not_change():
    assert reverse("webhook-whatsapp") == "/webhooks/whatsapp"
    assert reverse("webhook-360dialog", kwargs={"token": "t0k"}) == "/webhooks/360dialog/t0k"
    # Every token a sender is given (secrets.token_urlsafe) is a slug: the same URLs resolve.
    token = SenderNumberFactory().webhook_token
    assert reverse("webhook-360dialog", kwargs={"token": token}) == f"/webhooks/360dialog/{token}"
    assert webhook_routes() == {
        "whatsapp": views.MetaWebhookView,
        "360dialog/<slug:token>": views.Dialog360WebhookView,
    }


def test_each_route_is_the_kind_its_provider_delivers_on():
    """A provider that delivers on each sender's own route gets a per-sender view; every other
    route is app-wide and signed. Every provider is received somewhere: the sandbox speaks
    Meta's format and posts on Meta's route."""
    received = set()
    for view in webhook_routes().values():
        per_sender = provider_class(view.provider).per_sender_webhooks
        assert issubclass(view, views.SenderRouteWebhookView) == per_sender, view
        assert issubclass(view, views.SignedWebhookView) != per_sender, view
        received.add(view.provider)
    assert received | {Provider.SANDBOX} == set(PROVIDERS)


def test_the_handshake_is_the_providers():
    meta, dialog, sandbox = (
        get_provider(p) for p in (Provider.META, Provider.DIALOG360, "sandbox")
    )
    assert meta.verification_challenge(HANDSHAKE, "test-verify-token") == "7"
    assert meta.verification_challenge(HANDSHAKE, "another-token") is None
    assert meta.verification_challenge(HANDSHAKE, "") is None  # no token configured: refused
    assert sandbox.verification_challenge(HANDSHAKE, "test-verify-token") == "7"
    # 360dialog has none: refused whatever the token.
    assert dialog.verify_token_setting == ""
    assert dialog.verification_challenge(HANDSHAKE, "test-verify-token") is None


def test_a_get_is_answered_only_where_the_provider_has_a_handshake(client):
    meta = client.get("/webhooks/whatsapp", HANDSHAKE)
    assert (meta.status_code, meta.content) == (200, b"7")
    assert client.get("/webhooks/360dialog/some-token", HANDSHAKE).status_code == 405
    assert client.head("/webhooks/whatsapp", HANDSHAKE).status_code == 405


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("get", "/webhooks/360dialog/some-token", "POST"),  # 360dialog has no handshake
        ("put", "/webhooks/360dialog/some-token", "POST"),
        ("delete", "/webhooks/whatsapp", "GET, POST"),
    ],
)
def test_a_method_a_route_does_not_answer_is_the_apis_json_405(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == allowed
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed" and method.upper() in error["message"]


def test_the_checks_run_base_first():
    base = views.WebhookView.validate_request
    assert views.MetaWebhookView.validators == [base, views.SignedWebhookView.validate_request]
    assert views.Dialog360WebhookView.validators == [
        base,
        views.SenderRouteWebhookView.validate_request,
    ]


@pytest.mark.django_db
def test_a_body_too_large_is_refused_before_a_route_token_is_looked_up(
    client, settings, django_assert_num_queries
):
    settings.WEBHOOK_MAX_BYTES = 10
    with django_assert_num_queries(0):
        response = client.post(
            "/webhooks/360dialog/no-such-token", b"{" + b" " * 20 + b"}", "application/json"
        )
    assert response.status_code == 413


# --- a provider of our own: one subclass, the same sequence -------------------------------------


class HandshakingRelay(RelayProvider):
    """Relay (tests/whatsapp/relay.py) with a handshake of its own: ``GET ?ping=<token>&echo=``."""

    verify_token_setting = "RELAY_VERIFY_TOKEN"
    webhook_secret_setting = "RELAY_SECRET"

    def verification_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None:
        given = params.get("ping", "").encode()
        if verify_token and hmac.compare_digest(given, verify_token.encode()):
            return params.get("echo", "")
        return None


@pytest.fixture
def relay(monkeypatch, settings):
    monkeypatch.setitem(PROVIDERS, "relay", HandshakingRelay)
    settings.RELAY_URL, settings.RELAY_VERIFY_TOKEN, settings.RELAY_SECRET = "http://x", "pong", "s"
    get_provider.cache_clear()

    class RelayWebhookView(views.SignedWebhookView):
        provider = "relay"

    yield RelayWebhookView.as_view()
    get_provider.cache_clear()


def relay_signed(body: bytes, secret: str = "s") -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"HTTP_X_RELAY_SIGNATURE": base64.b64encode(digest).decode()}


@pytest.mark.django_db
def test_a_new_providers_route_is_one_subclass_with_its_handshake_and_signature(relay):
    factory = RequestFactory()
    assert relay(factory.get("/webhooks/relay", {"ping": "pong", "echo": "hi"})).content == b"hi"
    assert relay(factory.get("/webhooks/relay", {"ping": "nope", "echo": "hi"})).status_code == 403
    body = json.dumps({"events": []}).encode()
    post = factory.post("/webhooks/relay", body, "application/json", **relay_signed(body))
    assert relay(post).status_code == 200
    assert WebhookDelivery.objects.get().provider == "relay"
    forged = factory.post("/webhooks/relay", body, "application/json", **relay_signed(body, "x"))
    answer = relay(forged)
    assert answer.status_code == 401 and answer.headers["Content-Type"] == "application/json"
    assert WebhookDelivery.objects.count() == 1
