"""Floods of unauthenticated webhook calls (issue 18 §5): each used to read up to 3 MB and insert
a ``RejectedWebhook`` row. Now a call without a signature is refused unread and unrecorded,
refused calls are recorded only within a budget (per remote address and overall), and a signed
delivery in the middle of a flood is stored as always."""

from __future__ import annotations

import json
import time

import pytest

from core.coordination import in_redis, redis_client
from core.ratelimit import get_rate_limiter
from webhooks import views
from webhooks.models import RejectedWebhook, WebhookDelivery

from ..factories import SenderNumberFactory
from .helpers import envelope, sign, status

pytestmark = pytest.mark.django_db
FLOOD = 1000
LARGE = 2 * 1024 * 1024  # under WEBHOOK_MAX_BYTES: only the signature can refuse it


class CountedBody:
    """A request body of ``size`` bytes that counts how much of it the server reads."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes = size, 0

    def read(self, size: int | None = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if size is None or size < 0 else min(size, left)
        self.read_bytes += n
        return b" " * n

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)


def post_counted(client, path: str, body: CountedBody, *, remote_addr: str, **headers):
    return client.post(
        path,
        b"",
        content_type="application/json",
        REMOTE_ADDR=remote_addr,
        **{"wsgi.input": body, "CONTENT_LENGTH": str(body.size)},
        **headers,
    )


def post_signed(client, body: bytes, *, signature: str, remote_addr: str):
    return client.post(
        "/webhooks/whatsapp",
        body,
        content_type="application/json",
        REMOTE_ADDR=remote_addr,
        HTTP_X_HUB_SIGNATURE_256=signature,
    )


def _clear_budgets() -> None:
    if in_redis():
        redis = redis_client()
        keys = list(redis.scan_iter("waypost:rl:webhooks:rejected*"))
        if keys:
            redis.delete(*keys)
    else:
        limiter = get_rate_limiter()
        for key in [k for k in limiter.buckets if k.startswith("webhooks:rejected")]:
            del limiter.buckets[key]


@pytest.fixture(autouse=True)
def fresh_budgets():
    """The recording budgets live in Redis, shared across tests: start full, leave full."""
    _clear_budgets()
    yield
    _clear_budgets()


def cap(budget: tuple[float, int], started: float) -> int:
    """What a budget allows since ``started``: its burst and what refilled meanwhile."""
    rate, burst = budget
    return burst + int(rate * (time.monotonic() - started)) + 1


def test_unsigned_calls_are_refused_unread_and_leave_no_row(client, settings):
    settings.DIALOG360_WEBHOOK_SECRET = "partner-secret"  # 360dialog routes need a signature too
    route = SenderNumberFactory(provider="360dialog").webhook_token
    bodies = []
    for index in range(FLOOD):
        body = CountedBody(LARGE)
        path = "/webhooks/whatsapp" if index % 2 else f"/webhooks/360dialog/{route}"
        answer = post_counted(client, path, body, remote_addr="198.51.100.7")
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_signature"
        bodies.append(body)
    assert sum(body.read_bytes for body in bodies) == 0
    assert not RejectedWebhook.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_refused_calls_are_recorded_within_budget_and_signed_ones_always_stored(client):
    good = json.dumps(envelope("pn-1", statuses=[status("wamid.1", "sent", 1750030073)])).encode()
    forged = good.replace(b"sent", b"read")
    started = time.monotonic()
    # One address floods with a wrong signature; Meta's delivery arrives from the same
    # address in the middle of it (behind a proxy everyone shares one).
    for index in range(FLOOD):
        answer = post_signed(
            client, forged, signature=sign(forged, "guess"), remote_addr="198.51.100.7"
        )
        assert answer.status_code == 401
        if index == FLOOD // 2:
            stored = post_signed(client, good, signature=sign(good), remote_addr="198.51.100.7")
            assert stored.status_code == 200
    from_one = RejectedWebhook.objects.count()
    assert 1 <= from_one <= cap(views.RECORD_PER_ADDRESS, started)
    # Then from as many addresses as calls: the overall budget holds.
    for index in range(FLOOD):
        answer = post_signed(
            client,
            forged,
            signature=sign(forged, "guess"),
            remote_addr=f"10.7.{index // 250}.{index % 250}",
        )
        assert answer.status_code == 401
    assert from_one < RejectedWebhook.objects.count() <= cap(views.RECORD_OVERALL, started)
    [delivery] = WebhookDelivery.objects.all()
    assert bytes(delivery.body) == good


def test_unknown_route_tokens_past_the_budget_are_not_even_read(client):
    started = time.monotonic()
    bodies = []
    for _ in range(200):
        body = CountedBody(LARGE // 2)
        answer = post_counted(
            client, "/webhooks/360dialog/not-a-token", body, remote_addr="198.51.100.9"
        )
        assert answer.status_code == 401
        bodies.append(body)
    recorded = RejectedWebhook.objects.filter(reason="unknown_route_token").count()
    assert 1 <= recorded <= cap(views.RECORD_PER_ADDRESS, started)
    read = [body for body in bodies if body.read_bytes]
    assert len(read) == recorded  # only the recorded ones were read
