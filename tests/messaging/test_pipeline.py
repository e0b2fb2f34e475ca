"""The send path end to end: real HTTP API (in process), real PostgreSQL and Redis, a real
Celery worker process, and the sandbox as Meta over HTTP."""

import pytest

from messaging.models import Message
from messaging.send.pipeline import drain
from messaging.sweeps import unknown_resolve
from tenants.models import SenderNumber
from tenants.services import sender_set_status

from ..waiting import wait_for
from .conftest import send, wait_states

pytestmark = pytest.mark.redis


def sender_blocked(sender) -> bool:
    sender.refresh_from_db()
    return sender.status == "blocked"


def submissions(sandbox, message_id) -> list[dict]:
    return sandbox.get(
        "/_sandbox/messages", params={"biz_opaque_callback_data": str(message_id)}
    ).json()["data"]


def test_happy_path_to_accepted_with_the_wamid(worker_process, acme, live):
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"accepted"})
    [record] = submissions(live, message_id)
    message = Message.objects.get(pk=message_id)
    assert message.provider_message_id == record["wamid"]
    assert record["submissions"] == 1 and record["to"] == "+4915112345678"
    timeline = acme.client.get(f"/api/v1/messages/{message_id}").json()["events"]
    assert [e["type"] for e in timeline] == [
        "requested",
        "validated",
        "submit_started",
        "payload_built",
        "submit_responded",
        "accepted",
    ]
    assert [e["state"] for e in timeline if e["state"]] == ["queued", "submitting", "accepted"]
    assert timeline[3]["detail"]["payload"]["biz_opaque_callback_data"] == message_id


def test_never_retry_errors_reject(worker_process, acme, live):
    live.configure(error_rates={"132000": 1.0})
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"rejected"})
    message = Message.objects.get(pk=message_id)
    assert (message.error_code, message.error_class, message.attempts) == (
        "132000",
        "never_retry",
        1,
    )


def test_transient_errors_retry_with_backoff_then_succeed(worker_process, acme, live):
    live.configure(error_rates={"131016": 1.0})
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"retry_scheduled"})
    live.configure(error_rates={})
    wait_states([message_id], {"accepted"}, timeout=30)
    message = Message.objects.get(pk=message_id)
    assert message.attempts == 2 and message.round == 1 and message.error_code == ""


def test_retries_exhausted_is_a_dead_letter(worker_process, acme, live):
    acme.tenant.max_attempts = 2
    acme.tenant.save()
    live.configure(error_rates={"131016": 1.0})
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"failed"}, timeout=30)
    message = Message.objects.get(pk=message_id)
    assert (message.error_class, message.error_code, message.attempts) == (
        "retries_exhausted",
        "131016",
        2,
    )
    assert message.events.filter(type="dead_lettered").count() == 1


def test_pair_rate_limit_is_a_cool_down(worker_process, acme, live):
    live.configure(error_rates={"131056": 1.0})
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"retry_scheduled"})
    message = Message.objects.get(pk=message_id)
    assert (message.error_class, message.error_code) == ("cool_down", "131056")
    wait = (message.next_attempt_at - message.state_changed_at).total_seconds()
    assert 5 < wait < 7  # Meta's pair limit: one message per 6 s


def test_alert_class_blocks_the_sender_and_keeps_messages_queued(worker_process, acme, live):
    live.configure(error_rates={"190": 1.0})
    message_id = send(acme, "k1")["id"]
    wait_for(lambda: sender_blocked(acme.sender), 30, "the sender blocked")
    wait_states([message_id], {"queued"})
    assert acme.sender.status_reason.startswith("190")
    second = send(acme, "k2", to="+4915100000002")["id"]  # accepted by the API, held back
    live.configure(error_rates={})
    # Whenever a drain runs (the worker's, or this one), a blocked sender's messages stay.
    assert drain(tenant_id=acme.tenant.pk).claimed == 0
    assert Message.objects.get(pk=second).state == "queued"
    assert Message.objects.get(pk=message_id).error_class == "alert_tenant"
    acme.sender.refresh_from_db()
    assert acme.sender.status_changed_by == "pipeline" and acme.sender.status_changed_at
    # An operator reactivates it: its messages go at once, without waiting for the sweep.
    sender_set_status(sender=acme.sender, status="active", reason="token rotated", by="alice")
    wait_states([message_id, second], {"accepted"}, timeout=10)
    assert not Message.objects.filter(events__type="redriven").exists()


def test_ambiguous_5xx_is_unknown_and_never_resent(worker_process, acme, live):
    live.configure(http_500_rate=1.0)
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"unknown"})
    message = Message.objects.get(pk=message_id)
    assert (message.error_code, message.error_class, message.attempts) == ("131000", "ambiguous", 1)
    assert unknown_resolve(now=message.state_changed_at) == {"held": 0, "resent": 0}


def test_timeout_after_accept_is_unknown_then_held_for_an_operator(worker_process, acme, live):
    live.configure(timeout_after_accept_rate=1.0, hang_seconds=3)
    message_id = send(acme, "k1")["id"]
    try:
        wait_states([message_id], {"unknown"}, timeout=20)
    except AssertionError:
        print("\n".join(worker_process.log))
        raise
    assert len(submissions(live, message_id)) == 1  # Meta got it; we don't know
    from django.utils import timezone

    later = timezone.now() + timezone.timedelta(hours=1)
    assert unknown_resolve(now=later) == {"held": 1, "resent": 0}
    message = Message.objects.get(pk=message_id)
    assert message.stalled and message.state == "unknown"
    assert message.events.filter(type="flagged_stalled").count() == 1


def test_resend_policy_resends_after_the_grace_period(worker_process, acme, live):
    acme.tenant.ambiguous_policy = "resend"
    acme.tenant.save()
    live.configure(timeout_after_accept_rate=1.0, hang_seconds=3)
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"unknown"})
    live.configure(timeout_after_accept_rate=0.0)
    from django.utils import timezone

    assert unknown_resolve(now=timezone.now() + timezone.timedelta(hours=1))["resent"] == 1
    wait_states([message_id], {"accepted"})
    assert submissions(live, message_id)[0]["submissions"] == 2  # the price of `resend`


def test_held_for_quality_assessment(worker_process, acme, live):
    live.configure(held_rate=1.0)
    message_id = send(acme, "k1")["id"]
    wait_states([message_id], {"held"})
    message = Message.objects.get(pk=message_id)
    assert message.provider_message_id
    assert message.events.get(type="held").detail == {
        "message_status": "held_for_quality_assessment"
    }


def test_missing_credential_blocks_the_sender(worker_process, acme, live):
    SenderNumber.objects.filter(pk=acme.sender.pk).update(
        provider="meta", credentials_env="NOT_SET_ANYWHERE"
    )
    message_id = send(acme, "k1")["id"]
    wait_for(lambda: sender_blocked(acme.sender), 30, "the sender blocked")
    wait_states([message_id], {"queued"})
    assert acme.sender.status_reason.startswith("missing_credential")
    assert live.get("/_sandbox/stats").json()["requests"] == 0


def test_rate_limited_run_stays_under_the_senders_limit(worker_process, live):
    from .conftest import make_live_tenant, send_batch

    slow = make_live_tenant(live, "slowpoke", mps=40)
    live.post("/_sandbox/numbers", {"phone_number_id": slow.sender.phone_number_id, "mps": 40})
    ids = send_batch(slow, 160, "rl")
    wait_states(ids, {"accepted"}, timeout=60)
    stats = live.get("/_sandbox/stats").json()
    assert "130429" not in stats["rejected"] and stats["accepted"] == 160
