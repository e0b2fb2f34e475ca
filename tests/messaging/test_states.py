"""The state fold: order-independent and idempotent (hypothesis), and Meta's semantics. The
same property through the database's conditional UPDATE is in test_ledger.py."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.states import EventType, Fact, MessageState, fold, precedence

STATE_EVENTS = [t for t in EventType if precedence(Fact(t)) is not None]
facts = st.builds(Fact, type=st.sampled_from(list(EventType)), round=st.integers(0, 5))


@settings(max_examples=500)
@given(
    st.lists(facts, max_size=12),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 11), max_size=6),
)
def test_any_permutation_with_any_duplicates_folds_to_the_same_state(events, rnd, dup_at):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    duplicated = shuffled + [events[i] for i in dup_at if i < len(events)]
    assert fold(duplicated) == fold(events)


def state(*types, round_=0):
    return fold([Fact(t, round_) if isinstance(t, str) else Fact(*t) for t in types])[1]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ((EventType.REQUESTED,), MessageState.QUEUED),
        ((EventType.REQUESTED, EventType.VALIDATED, EventType.PAYLOAD_BUILT), MessageState.QUEUED),
        ((EventType.REQUESTED, EventType.SUBMIT_STARTED), MessageState.SUBMITTING),
        (
            (EventType.REQUESTED, EventType.SUBMIT_STARTED, EventType.SUBMIT_RESPONDED),
            MessageState.SUBMITTING,
        ),
        ((EventType.SUBMIT_STARTED, EventType.ACCEPTED), MessageState.ACCEPTED),
        ((EventType.ACCEPTED, EventType.HELD), MessageState.HELD),
        ((EventType.SUBMIT_STARTED, EventType.SUBMIT_UNKNOWN), MessageState.UNKNOWN),
        # a status webhook resolves an unknown submit
        (
            (EventType.SUBMIT_STARTED, EventType.SUBMIT_UNKNOWN, EventType.STATUS_SENT),
            MessageState.SENT,
        ),
        # read without delivered (Meta omits delivered when both happen at once)
        ((EventType.ACCEPTED, EventType.STATUS_READ), MessageState.READ),
        (
            (EventType.STATUS_READ, EventType.STATUS_DELIVERED, EventType.STATUS_SENT),
            MessageState.READ,
        ),
        # failed after delivered (second device): delivered wins
        (
            (EventType.ACCEPTED, EventType.STATUS_DELIVERED, EventType.STATUS_FAILED),
            MessageState.DELIVERED,
        ),
        ((EventType.ACCEPTED, EventType.STATUS_SENT, EventType.STATUS_FAILED), MessageState.FAILED),
        ((EventType.REQUESTED, EventType.CANCELLED), MessageState.CANCELLED),
        ((EventType.REQUESTED, EventType.REJECTED), MessageState.REJECTED),
        ((EventType.SUBMIT_STARTED, EventType.DEAD_LETTERED), MessageState.FAILED),
        # provider facts outrank what the pipeline believed
        (
            (EventType.SUBMIT_UNKNOWN, EventType.MARKED_FAILED, EventType.STATUS_DELIVERED),
            MessageState.DELIVERED,
        ),
    ],
)
def test_semantics(events, expected):
    assert state(*events) == expected


def test_later_rounds_outrank_earlier_ones():
    assert (
        state(
            (EventType.SUBMIT_STARTED, 0), (EventType.RETRY_SCHEDULED, 0), (EventType.REQUEUED, 1)
        )
        == MessageState.QUEUED
    )
    assert (
        state(
            (EventType.RETRY_SCHEDULED, 0), (EventType.REQUEUED, 1), (EventType.SUBMIT_STARTED, 1)
        )
        == MessageState.SUBMITTING
    )
    assert state((EventType.SUBMIT_UNKNOWN, 0), (EventType.REQUEUED, 1)) == MessageState.QUEUED


def test_every_state_is_reachable():
    reachable = {precedence(Fact(t))[1] for t in STATE_EVENTS}
    assert reachable == set(MessageState)
