"""One front door: the webhook routes are served by the WSGI application gunicorn runs
(``config.wsgi.application``), through the same middleware as every other route — the database
outage's 503, the security headers, the host check — with sessions, authentication and messages
skipped inside it (``webhooks.middleware``). These tests call that application itself, not
Django's test client (which builds a handler of its own)."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessions
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from config.wsgi import application
from devtools.servers import free_port
from webhooks import middleware

from .helpers import envelope, sign, status

SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
)
HANDSHAKE = "hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=42"


def call(path, *, method="GET", query="", body=b"", host="testserver", headers=None):
    """One request through ``config.wsgi.application``: (status code, headers, body)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": host,
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in (headers or {}).items()
        },
    }
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    # As Django's test client does: the test's database connection is not the request's.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content


@pytest.fixture
def database_down(django_db_blocker, monkeypatch):
    """The database refuses connections (a port nothing listens on), as during a restart."""
    with django_db_blocker.unblock():
        connection.close()
        monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        monkeypatch.setitem(connection.settings_dict, "PORT", str(free_port()))
        yield
        connection.close()


@pytest.mark.parametrize("route", ["whatsapp", "360dialog/some-route-token"])
def test_a_webhook_meets_a_database_outage_with_503_and_retry_after(database_down, route, settings):
    settings.WAYPOST_DB_RETRY_AFTER = 7
    body = json.dumps(envelope("pn-1", statuses=[status("wamid.1", "sent", 1750030073)])).encode()
    code, headers, content = call(
        f"/webhooks/{route}",
        method="POST",
        body=body,
        headers={"X-Hub-Signature-256": sign(body)},
    )
    # Not a 500: Meta and 360dialog retry a 5xx, and the delivery is stored when it comes again.
    assert code == 503
    assert headers["Retry-After"] == "7"
    assert json.loads(content)["error"]["code"] == "database_unavailable"


@pytest.fixture
def production_security():
    """Production's security settings, read by the application's middleware as at start-up
    (``SecurityMiddleware`` reads them when it is built)."""
    with override_settings(
        ALLOWED_HOSTS=["waypost.example"],
        SECURE_HSTS_SECONDS=31_536_000,
        SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
        SECURE_HSTS_PRELOAD=True,
        SECURE_CONTENT_TYPE_NOSNIFF=True,
    ):
        application.load_middleware()
        yield
    application.load_middleware()  # the test settings' again


def test_the_webhook_routes_get_the_security_headers_and_the_host_check(production_security):
    code, webhook, content = call("/webhooks/whatsapp", query=HANDSHAKE, host="waypost.example")
    assert (code, content) == (200, b"42")
    _, health, _ = call("/healthz", host="waypost.example")
    for header in SECURITY_HEADERS:
        assert webhook.get(header), header
        assert webhook.get(header) == health.get(header), header
    code, headers, content = call("/webhooks/whatsapp", query=HANDSHAKE, host="evil.example")
    assert code == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(content)["error"]["code"] == "disallowed_host"


def test_a_webhook_sets_no_cookie_and_varies_on_none():
    """No session, CSRF or messages cookie, and no ``Vary: Cookie``: nothing of the admin's."""
    _, headers, _ = call("/webhooks/whatsapp", query=HANDSHAKE)
    assert "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", "")


@pytest.mark.parametrize(
    ("skipping", "attribute"),
    [
        (middleware.SessionMiddleware, "session"),
        (middleware.AuthenticationMiddleware, "user"),
        (middleware.MessageMiddleware, "_messages"),
    ],
)
def test_sessions_authentication_and_messages_are_skipped_on_webhook_routes_only(
    skipping, attribute
):
    seen = {}

    def view(request):
        seen[request.path] = hasattr(request, attribute)
        return HttpResponse()

    chain = skipping(view)
    if skipping is not middleware.SessionMiddleware:  # the others read the session
        chain = DjangoSessions(chain)
    for path in ("/webhooks/whatsapp", "/webhooks/360dialog/token", "/admin/", "/api/v1/x"):
        chain(RequestFactory().get(path))
    assert seen == {
        "/webhooks/whatsapp": False,
        "/webhooks/360dialog/token": False,
        "/admin/": True,
        "/api/v1/x": True,
    }
