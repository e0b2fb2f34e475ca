"""A tenant's callback receiver turns hostile — a gzip bomb, a trickle, a redirect to loopback —
while another tenant's receiver is healthy. The real deliverer process
(``manage.py deliver_callbacks``) delivers from the outbox on the real database; the receivers
are sockets on 127.0.0.1 (the test settings allow private destinations; which addresses may be
called is ``test_transport``'s subject)."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction

from callbacks.models import CallbackAttempt, CallbackEvent, CallbackStatus
from callbacks.services import BACKOFF_BASE, Item, callbacks_enqueue, endpoint_configure
from callbacks.transport import DEADLINE
from devtools.servers import start_receiver
from devtools.worker import CallbackDeliverer, worker_env

from ..factories import TenantFactory
from ..waiting import wait_for
from .hostile import bomb, gzip_bomb, head, ok, trickle_headers

pytestmark = pytest.mark.redis


@pytest.fixture
def deliverer(transactional_db):
    process = CallbackDeliverer(worker_env("http://127.0.0.1:9"))
    yield process
    process.stop()


@pytest.fixture
def healthy():
    """Tenant B and its receiver, which answers 200 at once."""
    receiver, server = start_receiver()
    tenant = subscribed("healthy", receiver.url)
    yield tenant, receiver
    server.shutdown()


def subscribed(slug: str, url: str):
    tenant = TenantFactory(slug=slug)
    endpoint_configure(tenant=tenant, url=url, event_types=["message.read"])
    return tenant


def enqueue(tenant, count: int = 1) -> list[str]:
    with transaction.atomic():
        callbacks_enqueue(
            tenant_id=tenant.pk,
            items=[Item("message.read", {"n": n, "tenant": tenant.slug}) for n in range(count)],
        )
    return [e.webhook_id for e in CallbackEvent.objects.filter(tenant=tenant)]


def delivered(tenant, receiver, count: int) -> float:
    """Enqueue ``count`` callbacks for the healthy tenant and wait until its receiver has all;
    the seconds it took, to print (a figure, not asserted: the tests assert what happened
    meanwhile to the hostile tenant's attempt)."""
    before = len(receiver.delivered())
    started = time.monotonic()
    enqueue(tenant, count)
    wait_for(
        lambda: len(receiver.delivered()) >= before + count,
        20,
        f"{count} callbacks of the healthy tenant",
    )
    return time.monotonic() - started


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_gzip_bomb_costs_the_deliverer_kilobytes_and_the_other_tenant_nothing(
    deliverer, healthy, hostile, capsys
):
    """~1 MB of gzip inflating to 1 GiB, answered with a 503 so that it is fetched again: the
    deliverer's peak memory does not move, the healthy tenant's callbacks keep arriving."""
    gzip_bomb()
    b, b_receiver = healthy
    bomber = hostile(bomb("503 Service Unavailable"))
    a = subscribed("bomber", bomber.url())
    delivered(b, b_receiver, 1)  # the deliverer is up and warm
    before = peak_rss(deliverer.proc.pid)

    enqueue(a)
    attempts = CallbackAttempt.objects.filter(event__tenant=a)
    wait_for(lambda: attempts.exists(), 10, "the first bomb's attempt")
    b_seconds = delivered(b, b_receiver, 5)
    # The healthy tenant did not wait for the bomber's backoff (5 s) to pass.
    assert attempts.count() == 1, "the healthy tenant's callbacks waited for the bomber's retry"
    wait_for(lambda: attempts.count() >= 2, 20, "a second attempt after the backoff")
    after = peak_rss(deliverer.proc.pid)

    with capsys.disabled():
        print(
            f"\n[callbacks] gzip bomb ({len(gzip_bomb()) / 1e6:.1f} MB → 1 GiB) fetched twice: "
            f"deliverer peak RSS {before / 1e6:.1f} → {after / 1e6:.1f} MB; the healthy "
            f"tenant's 5 callbacks took {b_seconds:.2f} s"
        )
    assert after - before < 8 * 1024 * 1024
    first = attempts.order_by("attempted_at").first()
    assert first.status_code == 503 and first.error == ""
    # The excerpt is the inflated start (NULs, which PostgreSQL cannot hold, shown as U+FFFD).
    assert first.response_excerpt == "\ufffd" * 500
    event = CallbackEvent.objects.get(tenant=a)
    assert event.status == CallbackStatus.PENDING and event.last_status_code == 503


def test_a_trickling_receiver_loses_its_attempt_at_the_deadline_and_is_retried(
    deliverer, healthy, hostile
):
    """The status line, then one header byte a second: the attempt ends at the 10 s deadline,
    the event is retried after the backoff (and delivered, as the receiver is well again), and
    the healthy tenant's callbacks arrive meanwhile as fast as ever."""
    stop = threading.Event()
    trickle, well = trickle_headers(1.0, stop), ok()

    def answer(server, conn, request, index):
        return (trickle if index == 0 else well)(server, conn, request, index)

    b, b_receiver = healthy
    trickler = hostile(answer)
    a = subscribed("trickler", trickler.url())
    attempts = CallbackAttempt.objects.filter(event__tenant=a)
    try:
        enqueue(a)
        wait_for(lambda: trickler.requests, 10, "the trickled attempt to start")
        delivered(b, b_receiver, 5)
        # ... while the trickled attempt was still open (it is recorded when it ends).
        assert not attempts.exists(), "the healthy tenant's callbacks waited for the trickle"
        attempt = wait_for(attempts.first, DEADLINE + 10, "the trickled attempt to end")
    finally:
        stop.set()
    assert attempt.status_code is None
    assert attempt.error == f"no complete answer within {DEADLINE:g} s"
    event = CallbackEvent.objects.get(tenant=a)
    assert event.status in (CallbackStatus.PENDING, CallbackStatus.DELIVERED)
    wait_for(
        lambda: CallbackEvent.objects.filter(tenant=a, status=CallbackStatus.DELIVERED).exists(),
        20,
        "the retry to deliver",
    )
    second = attempts.order_by("attempted_at").last()
    assert second.status_code == 200
    # Not before the backoff: recorded when it ended, the retry began (its end less its
    # duration) at least BACKOFF_BASE after the failed attempt was recorded.
    began = second.attempted_at - timedelta(milliseconds=second.duration_ms)
    assert began >= attempt.attempted_at + timedelta(seconds=BACKOFF_BASE)


def test_a_redirect_to_loopback_is_not_followed_nor_retried(deliverer, healthy, hostile):
    inside, inside_server = start_receiver()  # what the redirect points at
    try:
        location = {"Location": inside.url, "Content-Length": "0"}
        redirecting = hostile(
            lambda s, conn, r, i: conn.sendall(head("307 Temporary Redirect", location))
        )
        a = subscribed("redirector", redirecting.url())
        b, b_receiver = healthy
        enqueue(a)
        event = wait_for(
            lambda: CallbackEvent.objects.filter(tenant=a, status=CallbackStatus.DEAD).first(),
            10,
            "the redirected event to be dead",
        )
        delivered(b, b_receiver, 1)  # after it: the deliverer went on
    finally:
        inside_server.shutdown()
    assert inside.requests == []
    assert event.attempts == 1 and event.last_status_code == 307
    assert event.last_error == f"redirects are not followed (to {inside.url})"
    assert len(redirecting.requests) == 1
