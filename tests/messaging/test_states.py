"""The state fold: order-independent and idempotent (hypothesis), and Meta's semantics. The
same property through the database's conditional UPDATE is in test_ledger.py."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.states import EventType, Fact, MessageState, fold, precedence

E, S = EventType, MessageState
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
        ((E.REQUESTED,), S.QUEUED),
        ((E.REQUESTED, E.VALIDATED, E.PAYLOAD_BUILT), S.QUEUED),
        ((E.REQUESTED, E.SUBMIT_STARTED), S.SUBMITTING),
        ((E.REQUESTED, E.SUBMIT_STARTED, E.SUBMIT_RESPONDED), S.SUBMITTING),
        ((E.SUBMIT_STARTED, E.ACCEPTED), S.ACCEPTED),
        ((E.ACCEPTED, E.HELD), S.HELD),
        ((E.SUBMIT_STARTED, E.SUBMIT_UNKNOWN), S.UNKNOWN),
        # a status webhook resolves an unknown submit
        ((E.SUBMIT_STARTED, E.SUBMIT_UNKNOWN, E.STATUS_SENT), S.SENT),
        # read without delivered (Meta omits delivered when both happen at once)
        ((E.ACCEPTED, E.STATUS_READ), S.READ),
        ((E.STATUS_READ, E.STATUS_DELIVERED, E.STATUS_SENT), S.READ),
        # failed after delivered (second device): delivered wins
        ((E.ACCEPTED, E.STATUS_DELIVERED, E.STATUS_FAILED), S.DELIVERED),
        ((E.ACCEPTED, E.STATUS_SENT, E.STATUS_FAILED), S.FAILED),
        ((E.REQUESTED, E.CANCELLED), S.CANCELLED),
        ((E.REQUESTED, E.REJECTED), S.REJECTED),
        ((E.SUBMIT_STARTED, E.DEAD_LETTERED), S.FAILED),
        # provider facts outrank what the pipeline believed
        ((E.SUBMIT_UNKNOWN, E.MARKED_FAILED, E.STATUS_DELIVERED), S.DELIVERED),
    ],
)
def test_semantics(events, expected):
    assert state(*events) == expected


def test_later_rounds_outrank_earlier_ones():
    assert state((E.SUBMIT_STARTED, 0), (E.RETRY_SCHEDULED, 0), (E.REQUEUED, 1)) == S.QUEUED
    assert state((E.RETRY_SCHEDULED, 0), (E.REQUEUED, 1), (E.SUBMIT_STARTED, 1)) == S.SUBMITTING
    assert state((E.SUBMIT_UNKNOWN, 0), (E.REQUEUED, 1)) == S.QUEUED


def test_every_state_is_reachable():
    reachable = {precedence(Fact(t))[1] for t in STATE_EVENTS}
    assert reachable == set(MessageState)
