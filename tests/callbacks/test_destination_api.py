"""Setting a callback URL through ``PATCH /api/v1/tenant``: a URL Waypost would not call is a
400 with its own code, whatever the destination rules, and before anything else is looked at.
And how an attempt's outcome is classified, delivered in this process by the deliverer's own
function (``deliver_tenant``) to a socket on 127.0.0.1."""

import pytest

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent, CallbackStatus
from callbacks.services import Item, callbacks_enqueue, deliver_tenant, endpoint_get
from callbacks.transport import Transport

from .hostile import head

pytestmark = pytest.mark.django_db
URL = "/api/v1/tenant"


@pytest.mark.parametrize("allow_private", [True, False])
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com:99999/", "callback_url_invalid"),
        ("https://example.com:0/hook", "callback_url_invalid"),
        ("https://example.com:1234567/", "callback_url_invalid"),
        ("not a url", "callback_url_invalid"),
        ("ftp://example.com/", "callback_url_invalid"),
    ],
)
def test_a_url_with_a_bad_port_or_form_is_a_400_in_every_configuration(
    tenant_a, settings, allow_private, url, code
):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = allow_private
    answer = tenant_a.client.patch(URL, {"callback_url": url}, format="json")
    assert answer.status_code == 400, answer.json()
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["details"] == [{"field": "callback_url", "code": code}]
    assert endpoint_get(tenant=tenant_a.tenant).url == ""


@pytest.mark.parametrize("port", [1, 22, 25, 1023])
def test_a_privileged_port_is_refused_where_private_destinations_are(tenant_a, settings, port):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    url = f"https://example.com:{port}/hook"
    answer = tenant_a.client.patch(URL, {"callback_url": url}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "callback_url_port"
    # A developer's machine (private destinations allowed) takes any port.
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = True
    assert tenant_a.client.patch(URL, {"callback_url": url}, format="json").status_code == 200


def test_the_url_is_judged_before_anything_else_in_the_request(tenant_a, settings):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    answer = tenant_a.client.patch(
        URL,
        {
            "callback_url": "https://example.com:99999/",
            "callback_events": ["message.teleported"],
            "stall_sent_seconds": 600,
        },
        format="json",
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "callback_url_invalid"
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.stall_sent_seconds == 900


def test_an_allowed_port_is_stored(tenant_a):
    answer = tenant_a.client.patch(
        URL, {"callback_url": "http://127.0.0.1:8080/hook"}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["callback_url"].endswith(":8080/hook")


# --- outcomes ------------------------------------------------------------------------------------


def attempt_once(tenant, url: str, *, deadline: float = 10.0) -> CallbackEvent:
    endpoint = endpoint_get(tenant=tenant)
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
        url=url, event_types=["message.read"], secrets=[{"secret": "whsec_" + "A" * 32}]
    )
    callbacks_enqueue(tenant_id=tenant.pk, items=[Item("message.read", {"n": 1})])
    deliver_tenant(tenant_id=tenant.pk, transport=Transport(deadline=deadline))
    return CallbackEvent.objects.get(tenant=tenant)


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "308 Permanent Redirect"])
def test_a_redirect_is_dead_at_once_and_says_where_it_pointed(tenant_a, hostile, status):
    location = {"Location": "http://127.0.0.1:9/inside", "Content-Length": "0"}
    redirecting = hostile(lambda s, conn, r, i: conn.sendall(head(status, location)))
    event = attempt_once(tenant_a.tenant, redirecting.url())
    assert event.status == CallbackStatus.DEAD and event.attempts == 1
    assert event.last_error == "redirects are not followed (to http://127.0.0.1:9/inside)"


def test_a_name_that_does_not_resolve_at_delivery_is_retried(tenant_a):
    event = attempt_once(tenant_a.tenant, "https://callbacks.invalid/hook", deadline=3.0)
    assert event.status == CallbackStatus.PENDING and event.attempts == 1
    assert "resolve" in event.last_error
    assert CallbackEndpoint.objects.get(tenant=tenant_a.tenant).failures == 1


def test_a_private_address_at_delivery_is_refused_and_dead(tenant_a, settings, hostile):
    settings.WAYPOST_CALLBACK_ALLOW_PRIVATE = False
    inside = hostile(lambda s, conn, r, i: conn.sendall(head("200 OK")))
    event = attempt_once(tenant_a.tenant, inside.url())
    assert event.status == CallbackStatus.DEAD
    assert event.last_error.startswith("destination refused: The callback URL resolves to 127.")
    assert inside.connections == 0


def test_nul_bytes_in_an_answer_are_stored_readable(tenant_a, hostile):
    body = b"\x00oops\x00"
    answer = head("500 Internal Server Error", {"Content-Length": str(len(body))}) + body
    broken = hostile(lambda s, conn, r, i: conn.sendall(answer))
    attempt_once(tenant_a.tenant, broken.url())
    assert CallbackAttempt.objects.get().response_excerpt == "\ufffdoops\ufffd"
