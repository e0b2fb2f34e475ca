"""The reconciler with a real worker and a real beat on the test database: statuses the
sandbox drops leave messages stalled by a pass after the threshold, a late status clears the
stall, a lost nudge is re-driven, an unknown submit follows the tenant's policy."""

import json
import time

import pytest
import requests
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from devtools.worker import Beat, worker_env
from messaging.models import Message
from messaging.send import dispatch
from webhooks.models import WebhookDelivery

from ..messaging.conftest import make_live_tenant, send, send_batch, wait_states
from ..waiting import wait_for
from ..webhooks.helpers import envelope, sign, status

pytestmark = pytest.mark.redis
PASS_SECONDS = 2


@pytest.fixture
def beat(worker_process, live):
    every, _ = IntervalSchedule.objects.get_or_create(every=PASS_SECONDS, period="seconds")
    PeriodicTask.objects.create(name="reconcile", task="operations.reconcile", interval=every)
    fast, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(name="webhooks", task="webhooks.process", interval=fast)
    process = Beat(worker_env(live.url))
    yield process
    process.stop()


def test_dropped_statuses_stall_and_a_late_one_clears_the_stall(beat, live, live_server, capsys):
    tenant = make_live_tenant(live, "stalls")
    tenant.tenant.stall_accepted_seconds = 3
    tenant.tenant.stall_sent_seconds = 3
    tenant.tenant.save()
    live.configure(
        webhook_url=f"{live_server.url}/webhooks/whatsapp",
        app_secret=settings.WHATSAPP_APP_SECRET,
        webhook_drop_rate=0.05,
        read_rate=0,
        sent_after_ms=20,
        delivered_after_ms=60,
    )
    ids = send_batch(tenant, 200, "drop")
    wait_states(ids, {"accepted", "sent", "delivered"}, timeout=60)
    live.wait_idle()
    incomplete = Message.objects.filter(pk__in=ids).exclude(state="delivered")

    def settled() -> bool:
        """Every webhook processed, every message short of `delivered` flagged by a pass."""
        return (
            not WebhookDelivery.objects.filter(status="pending").exists()
            and not incomplete.filter(stalled=False).exists()
        )

    wait_for(settled, 60, "the statuses processed and the incomplete messages stalled")
    assert incomplete.exists(), "the sandbox dropped no delivered status; use another seed"
    assert not Message.objects.filter(pk__in=ids, state="delivered", stalled=True).exists()
    flagged = [(m.stalled_at - m.state_changed_at).total_seconds() for m in incomplete]
    with capsys.disabled():  # figures: how soon a pass flags them depends on the machine
        print(
            f"\n[stalls] {incomplete.count()} of 200 stalled (their statuses were dropped), "
            f"{min(flagged):.1f}-{max(flagged):.1f} s after their last change (threshold 3 s, "
            f"a pass every {PASS_SECONDS} s)"
        )

    # The dropped `delivered` arrives late: the stall clears itself, and the ledger says so.
    late = incomplete.filter(state="sent").first()
    body = json.dumps(
        envelope(
            tenant.sender.phone_number_id,
            statuses=[status(late.provider_message_id, "delivered", int(time.time()))],
        )
    ).encode()
    answer = requests.post(
        f"{live_server.url}/webhooks/whatsapp",
        data=body,
        headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200
    wait_for(lambda: not Message.objects.get(pk=late.pk).stalled, 30, "the stall cleared")
    late.refresh_from_db()
    assert late.state == "delivered"
    assert late.events.filter(type="stall_cleared").get().detail["cleared_by_state"] == "delivered"


def test_a_lost_nudge_is_redriven_by_the_reconciler(beat, live, monkeypatch):
    tenant = make_live_tenant(live, "lostnudge")
    lost = []
    # The API's nudge is lost (as with a broker down at commit time): only a pass can send it.
    monkeypatch.setattr(dispatch._drains, "_publish", lambda *a, **kw: lost.append(a) and False)
    message_id = send(tenant, "lost")["id"]
    monkeypatch.undo()
    assert lost, "the API did not try to nudge"
    # Nothing else dispatches it: accepted at all is the pass's doing.
    wait_states([message_id], {"accepted"}, timeout=60)


def test_an_unknown_submit_follows_the_tenants_policy(beat, live):
    tenant = make_live_tenant(live, "unknownpolicy")
    tenant.tenant.ambiguous_grace_seconds = 1
    tenant.tenant.save()
    live.configure(timeout_after_accept_rate=1.0, hang_seconds=3)
    message_id = send(tenant, "u")["id"]
    wait_for(lambda: Message.objects.get(pk=message_id).stalled, 30, "the unknown submit held")
    message = Message.objects.get(pk=message_id)
    # The sandbox accepted it and its statuses went to the sink, not to us: unknown, held.
    assert (message.state, message.stalled_reason) == ("unknown", "unknown_outcome")
    assert live.get("/_sandbox/stats").json()["duplicate_submissions"] == 0
