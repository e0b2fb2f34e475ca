"""The drain's chain, step by step, in this process against the sandbox (no worker): a batch's
requests leave once however often its submit step runs, a batch whose submit never began is
sent again (nothing of it left), and one whose submit began is never sent again blindly."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message, SubmitBatch
from messaging.send import dispatch, pipeline

from .conftest import send

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def no_drain_tasks(monkeypatch):
    """Publish no drain task: the session's worker, started by an earlier test on this xdist
    worker, would otherwise claim what these tests claim by hand."""
    monkeypatch.setattr(dispatch._drains, "_publish", lambda queue, args, countdown: True)


def submissions(sandbox, message_id) -> int:
    found = sandbox.get(
        "/_sandbox/messages", params={"biz_opaque_callback_data": str(message_id)}
    ).json()["data"]
    return sum(record["submissions"] for record in found)


def claimed(tenant) -> pipeline.Work:
    _result, work = pipeline.validate(tenant_id=tenant.tenant.pk)
    assert work is not None
    work.messages = None  # as a chained task gets it: ids only, through the broker
    return pipeline.Work.of(work.as_dict())


def test_the_steps_as_chained_tasks_see_them_send_and_record(acme, live):
    message_id = send(acme, "k1")["id"]
    work = claimed(acme)
    assert Message.objects.get(pk=message_id).state == "submitting"  # before any request
    sent = pipeline.submit_step(pipeline.Work.of(pipeline.transform(work).as_dict()))
    result = pipeline.check(pipeline.Work.of(sent.as_dict()))
    assert (result.submitted, result.accepted) == (1, 1)
    assert Message.objects.get(pk=message_id).state == "accepted"
    assert submissions(live, message_id) == 1
    assert SubmitBatch.objects.get(pk=work.batch).started_by == "submit"


def test_a_redelivered_submit_step_sends_nothing(acme, live):
    message_id = send(acme, "k1")["id"]
    work = pipeline.transform(claimed(acme))
    again = pipeline.Work.of(work.as_dict())
    assert pipeline.submit_step(work) is not None
    assert pipeline.submit_step(again) is None  # the task redelivered after its worker died
    assert submissions(live, message_id) == 1


def test_a_batch_whose_submit_never_began_goes_again_and_its_late_step_sends_nothing(
    acme, live, settings
):
    message_id = send(acme, "k1")["id"]
    work = pipeline.transform(claimed(acme))  # ... and its submit task was lost with Redis
    settings.WAYPOST_SUBMIT_LOST_AFTER = 60
    soon = timezone.now() + timedelta(seconds=30)
    assert pipeline.submits_resolve_stuck(now=soon) == 0  # may still be in the queue
    later = timezone.now() + timedelta(seconds=61)
    assert pipeline.submits_resolve_stuck(now=later) == 1
    message = Message.objects.get(pk=message_id)
    assert (message.state, message.round) == ("queued", 1)
    assert message.events.filter(type="requeued", round=1).exists()
    assert SubmitBatch.objects.get(pk=work.batch).started_by == "reconciler"
    assert pipeline.submit_step(pipeline.Work.of(work.as_dict())) is None  # the late step
    assert submissions(live, message_id) == 0
    pipeline.drain(tenant_id=acme.tenant.pk)  # the new round goes
    assert Message.objects.get(pk=message_id).state == "accepted"
    assert submissions(live, message_id) == 1


def test_a_batch_whose_submit_began_is_never_sent_again_blindly(acme, live):
    message_id = send(acme, "k1")["id"]
    work = pipeline.transform(claimed(acme))
    assert pipeline.batch_begin(work.batch, by="submit")  # began, then its worker died
    soon = timezone.now() + timedelta(seconds=1)
    assert pipeline.submits_resolve_stuck(now=soon) == 0  # still within the stuck time
    later = timezone.now() + timedelta(hours=1)
    assert pipeline.submits_resolve_stuck(now=later) == 1
    assert Message.objects.get(pk=message_id).state == "unknown"


def test_a_late_step_sends_only_messages_still_submitting_in_their_round(acme, live):
    message_id = send(acme, "k1")["id"]
    work = pipeline.Work.of(pipeline.transform(claimed(acme)).as_dict())
    # Whatever moved it on since (a new round, here): the step's own guard, beside the row.
    Message.objects.filter(pk=message_id).update(round=1, state="queued", state_rank=10)
    sent = pipeline.submit_step(work)
    assert sent is not None and sent.ids == [] and sent.results == []
    assert submissions(live, message_id) == 0


def test_submit_records_older_than_a_day_are_pruned(db):
    from messaging.sweeps import submit_batches_prune

    old, recent = SubmitBatch.objects.bulk_create(
        [SubmitBatch(id=uuid.uuid4(), started_by="submit") for _ in range(2)]
    )
    SubmitBatch.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=2))
    assert submit_batches_prune() == 1
    assert list(SubmitBatch.objects.values_list("pk", flat=True)) == [recent.pk]


def test_a_check_run_twice_reacts_once_even_after_a_new_round_began(acme, live):
    live.configure(error_rates={"130429": 1.0})  # Meta's throughput limit: a retry later
    message_id = send(acme, "k1")["id"]
    work = pipeline.transform(claimed(acme))
    sent = pipeline.Work.of(pipeline.submit_step(work).as_dict())
    pipeline.check(pipeline.Work.of(sent.as_dict()))
    message = Message.objects.get(pk=message_id)
    assert (message.state, message.round) == ("retry_scheduled", 0)
    events = message.events.count()
    pipeline.check(pipeline.Work.of(sent.as_dict()))  # the check task redelivered
    assert Message.objects.get(pk=message_id).events.count() == events
    live.configure(error_rates={})
    Message.objects.filter(pk=message_id).update(next_attempt_at=timezone.now())
    claimed(acme)  # round 1 claimed: submitting
    pipeline.check(pipeline.Work.of(sent.as_dict()))  # round 0's check, once more
    message = Message.objects.get(pk=message_id)
    assert (message.state, message.round) == ("submitting", 1)  # untouched: no third round
    assert not message.events.filter(round=1, type="submit_responded").exists()


def test_a_retired_batch_whose_resend_was_interrupted_is_sent_again(acme, live, settings):
    message_id = send(acme, "k1")["id"]
    work = pipeline.transform(claimed(acme))
    assert pipeline.batch_begin(work.batch, by="reconciler")  # retired; then the pass died
    settings.WAYPOST_SUBMIT_LOST_AFTER = 60
    later = timezone.now() + timedelta(seconds=61)
    assert pipeline.submits_resolve_stuck(now=later) == 1
    assert Message.objects.get(pk=message_id).state == "queued"  # not unknown: it never left


def test_a_drain_held_back_by_batches_in_flight_holds_nudges_until_a_check(
    acme, live, settings, monkeypatch
):
    settings.WAYPOST_BATCH_SIZE = 1  # one message is a full batch: two in flight, the limit
    published = []
    monkeypatch.setattr(
        dispatch._drains,
        "_publish",
        lambda queue, args, countdown: (published.append(countdown or 0), queues.append(queue)),
    )
    queues = []
    in_flight = []
    for key in ("k1", "k2"):
        send(acme, key)
        in_flight.append(claimed(acme))
    send(acme, "k3")
    published.clear()
    queues.clear()
    result, work = pipeline.validate(tenant_id=acme.tenant.pk)
    assert work is None and result.claimed == 0  # held back: both batches still in flight
    assert published == [dispatch.HOLD_SECONDS]  # a drain looks again then, whatever happens
    # ... on the bulk lane: it would claim a backlog's batch, not a quiet tenant's message.
    assert queues == [acme.tenant.bulk_queue_name]
    send(acme, "k4")
    assert published == [dispatch.HOLD_SECONDS]  # k4's nudge would start a drain claiming nothing
    first = pipeline.submit_step(pipeline.transform(in_flight[0]))
    pipeline.check(pipeline.Work.of(first.as_dict()))
    assert published == [dispatch.HOLD_SECONDS, 0]  # the check ended the hold, rang for k3, k4
    assert pipeline.validate(tenant_id=acme.tenant.pk)[1] is not None  # and that drain claims


def test_a_batch_ending_as_a_drain_holds_is_seen_by_that_drain(acme, live, settings, monkeypatch):
    settings.WAYPOST_BATCH_SIZE = 1
    in_flight = []
    for key in ("k1", "k2"):
        send(acme, key)
        in_flight.append(claimed(acme))
    send(acme, "k3")
    hold = dispatch.hold

    def both_checks_end_meanwhile(**kwargs):  # the checks' looks ran before the hold was set
        hold(**kwargs)
        for work in in_flight:
            pipeline.check(
                pipeline.Work.of(pipeline.submit_step(pipeline.transform(work)).as_dict())
            )

    monkeypatch.setattr(dispatch, "hold", both_checks_end_meanwhile)
    _result, work = pipeline.validate(tenant_id=acme.tenant.pk)
    assert work is not None and len(work.ids) == 1  # the drain looked again and claimed k3
