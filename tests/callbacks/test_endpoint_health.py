"""A callback endpoint's health says what really happened: callbacks overdue with nothing
attempting them are "stuck", not "ok" (issue 19: the demo's endpoint read "ok" while every
callback stayed pending); failing, disabled and delivering endpoints say when, and what the
receiver answered. The same words on the endpoints' list, an endpoint's page and the
operations page."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent
from callbacks.selectors import endpoint_health
from callbacks.services import Item, callbacks_enqueue

pytestmark = pytest.mark.django_db
LIST = "/admin/callbacks/callbackendpoint/"


def words(response) -> str:
    assert response.status_code == 200, response.status_code
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def endpoint(tenant_a):
    endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant_a.tenant)
    endpoint.url, endpoint.event_types = "https://hooks.example.com/waypost", ["message.read"]
    endpoint.secrets = [{"secret": "whsec_dGVzdA=="}]
    endpoint.save()
    return endpoint


def enqueue(tenant, count: int, *, due_ago: timedelta) -> list[CallbackEvent]:
    callbacks_enqueue(
        tenant_id=tenant.pk,
        items=[Item("message.read", {"n": i}) for i in range(count)],
    )
    events = CallbackEvent.objects.filter(tenant=tenant)
    events.update(next_attempt_at=timezone.now() - due_ago)
    return list(events)


def test_callbacks_nobody_attempts_make_the_endpoint_stuck_not_ok(admin_client, endpoint):
    enqueue(endpoint.tenant, 3, due_ago=timedelta(minutes=12))
    health = endpoint_health(endpoint=endpoint)
    assert (health.state, health.pending, health.overdue) == ("stuck", 3, 3)
    listed = words(admin_client.get(LIST))
    assert "stuck 3 callbacks overdue" in listed and "ok" not in listed.split()
    assert "last attempt: never — is the callback deliverer running?" in listed
    page = words(admin_client.get(f"{LIST}{endpoint.pk}/change/"))
    assert "stuck 3 callbacks overdue" in page
    operations = words(admin_client.get("/admin/operations/"))
    assert "stuck https://hooks.example.com/waypost 3 callbacks overdue" in operations


def test_callbacks_just_due_are_waiting_not_stuck(endpoint):
    enqueue(endpoint.tenant, 2, due_ago=timedelta(seconds=5))
    health = endpoint_health(endpoint=endpoint)
    assert (health.state, health.level) == ("waiting", "warn")
    assert health.detail.startswith("2 callbacks waiting, none overdue; last attempt: never")


def test_a_delivering_endpoint_says_when_and_what_the_receiver_answered(admin_client, endpoint):
    [event] = enqueue(endpoint.tenant, 1, due_ago=timedelta(seconds=0))
    CallbackAttempt.objects.create(event=event, url=endpoint.url, status_code=204, duration_ms=35)
    CallbackEvent.objects.filter(pk=event.pk).update(status="delivered")
    attempt = CallbackAttempt.objects.get()
    listed = words(admin_client.get(LIST))
    at = f"{attempt.attempted_at:%Y-%m-%d %H:%M:%S} UTC"
    assert f"delivering Last delivered at {at} (HTTP 204 in 35 ms); 0 callbacks waiting" in listed


def test_a_failing_endpoint_names_the_answer_and_the_backoff(admin_client, endpoint):
    [event] = enqueue(endpoint.tenant, 1, due_ago=timedelta(seconds=0))
    CallbackAttempt.objects.create(
        event=event,
        url=endpoint.url,
        status_code=502,
        duration_ms=80,
        response_excerpt="Bad Gateway",
    )
    retry_at = timezone.now() + timedelta(minutes=5)
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(failures=3, retry_at=retry_at)
    CallbackEvent.objects.filter(pk=event.pk).update(next_attempt_at=retry_at)
    listed = words(admin_client.get(LIST))
    assert "failing 3 failed attempts in a row" in listed
    assert "HTTP 502 in 80 ms (Bad Gateway)" in listed
    assert f"backed off until {retry_at:%Y-%m-%d %H:%M:%S} UTC; 1 callback waiting" in listed


def test_a_disabled_endpoint_says_why_and_how_to_enable_it(admin_client, endpoint):
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="410 Gone from the receiver", disabled_at=timezone.now()
    )
    enqueue(endpoint.tenant, 1, due_ago=timedelta(minutes=30))
    CallbackEvent.objects.filter(tenant=endpoint.tenant).update(status="dead")
    listed = words(admin_client.get(LIST))
    assert "disabled Disabled at" in listed and "410 Gone from the receiver" in listed
    assert "setting a URL again re-enables it; 1 dead-lettered" in listed


def test_an_endpoint_without_a_url_says_nothing_is_sent(endpoint):
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(url="")
    endpoint.refresh_from_db()
    health = endpoint_health(endpoint=endpoint)
    assert (health.state, health.level) == ("not configured", "off")


def test_the_receivers_answer_is_never_cut_inside_a_number(endpoint):
    """A number cut short keeps too few digits to look like one, and the admin's masking
    (tests/security/test_admin_numbers.py) would show them: the cut drops it whole."""
    [event] = enqueue(endpoint.tenant, 1, due_ago=timedelta(seconds=0))
    answer = "x" * 48 + " +4915112345678 is not a known customer"
    CallbackAttempt.objects.create(
        event=event, url=endpoint.url, status_code=422, duration_ms=9, response_excerpt=answer
    )
    retry_at = timezone.now() + timedelta(minutes=5)
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(failures=1, retry_at=retry_at)
    CallbackEvent.objects.filter(pk=event.pk).update(next_attempt_at=retry_at)
    endpoint.refresh_from_db()
    detail = endpoint_health(endpoint=endpoint).detail
    assert "HTTP 422" in detail and "+49151" not in detail and "4915112" not in detail, detail
