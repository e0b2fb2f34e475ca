"""The ledger's real write path against the fold: events recorded one at a time through
``ledger.record`` — the INSERT … ON CONFLICT and the conditional ``UPDATE … WHERE state_rank <
new_rank`` on PostgreSQL — in any order, with duplicates, by concurrent writers, leave the
message in exactly the state ``states.fold`` gives for the set of events."""

import threading
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import Message
from messaging.states import EventSource, EventType, Fact, fold
from messaging.track.ledger import NewEvent, record

from ..factories import SenderNumberFactory

pytestmark = pytest.mark.django_db(transaction=True)

facts = st.builds(Fact, type=st.sampled_from(list(EventType)), round=st.integers(0, 3))


@pytest.fixture
def sender(transactional_db):
    return SenderNumberFactory()


def new_message(sender) -> Message:
    return Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient="+4915112345678",
        idempotency_key=str(uuid.uuid4()),
        request_hash="-",
        template_name="order_update",
        state_changed_at=timezone.now(),
    )


def write(message_id, fact: Fact) -> None:
    with transaction.atomic():
        record([NewEvent(message_id, fact.type, EventSource.PIPELINE, round=fact.round)])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(facts, min_size=1, max_size=10),
    duplicates=st.lists(st.integers(0, 9), max_size=5),
    writers=st.integers(1, 4),
    rnd=st.randoms(use_true_random=False),
)
def test_recording_one_at_a_time_in_any_order_by_concurrent_writers_gives_the_fold(
    sender, events, duplicates, writers, rnd
):
    message = new_message(sender)
    stream = events + [events[i] for i in duplicates if i < len(events)]
    rnd.shuffle(stream)
    chunks = [stream[i::writers] for i in range(writers)]
    barrier = threading.Barrier(writers)
    failures = []

    def writer(chunk):
        try:
            barrier.wait()
            for fact in chunk:
                write(message.pk, fact)
        except Exception as exc:  # reported below, with the example
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(chunk,)) for chunk in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    message.refresh_from_db()
    rank, state = fold(events)
    if rank < 0:  # no event moves state: the message keeps its initial state
        assert (message.state, message.state_rank) == ("queued", 0)
    else:
        assert (message.state_rank, message.state) == (rank, state)
    # Each fact once in the ledger, however often it was written.
    assert message.events.count() == len({(f.type, f.round) for f in events})
