"""The sandbox's rate limiters with the clock as an input: the arithmetic behind 130429 (per
number) and 131056 (per recipient pair), without waiting for time to pass. The HTTP tests in
``test_sandbox`` show that each refusal answers Meta's code and that it passes."""

from sandbox.state import PairLimiter, TokenBucket

PAIR = ("phone-1", "15551230001")


def test_a_number_bursts_one_seconds_worth_then_refills_at_its_rate():
    t = 1000.0
    bucket = TokenBucket(3, t)
    assert [bucket.take(3, t) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(3, t + 0.3)  # 0.9 of a token
    assert bucket.take(3, t + 1 / 3 + 0.001)  # one token back
    assert not bucket.take(3, t + 0.34)
    assert [bucket.take(3, t + 10) for _ in range(4)] == [True, True, True, False]  # capped


def test_a_fresh_bucket_grants_its_first_message_at_any_rate():
    """Created at the instant of its first message (before, it read its own clock after the
    caller's and a one-message-a-second number refused its very first message)."""
    assert TokenBucket(1, 5.0).take(1, 5.0)


def test_a_refused_send_costs_no_token():
    t = 1000.0
    bucket = TokenBucket(1, t)
    assert bucket.take(1, t)
    assert not any(bucket.take(1, t + 0.1 * i) for i in range(1, 10))
    assert bucket.take(1, t + 1.01)  # the refused ones took nothing


def test_a_pair_bursts_then_pays_the_burst_back_one_interval_a_message():
    pairs = PairLimiter()
    assert [pairs.take(PAIR, 0.5, 2, 100.0) for _ in range(3)] == [True, True, False]
    assert pairs.take(("phone-1", "15557770000"), 0.5, 2, 100.0)  # another recipient
    assert not pairs.take(PAIR, 0.5, 2, 100.49)
    assert pairs.take(PAIR, 0.5, 2, 100.5)  # one interval later: one more
    assert not pairs.take(PAIR, 0.5, 2, 100.5)
    assert pairs.take(PAIR, 0.5, 2, 101.0)


def test_a_refused_pair_send_does_not_push_the_next_one_back():
    pairs = PairLimiter()
    assert pairs.take(PAIR, 6.0, 1, 0.0)
    assert not any(pairs.take(PAIR, 6.0, 1, float(s)) for s in range(1, 6))
    assert pairs.take(PAIR, 6.0, 1, 6.0)
