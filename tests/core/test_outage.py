"""A dead broker is skipped for a few seconds after a failed publish, not paid for per call."""

import time

import pytest

from core import coordination
from core.coordination import DebouncedTask, Outage


def test_an_outage_lasts_its_seconds():
    outage = Outage(0.2)
    assert not outage.ongoing
    outage.failed()
    assert outage.ongoing
    time.sleep(0.25)
    assert not outage.ongoing


@pytest.mark.django_db
def test_after_a_failed_publish_nudges_return_at_once(monkeypatch):
    # A store of this test's own: get_store() is cached per process, shared with later tests.
    monkeypatch.setattr(coordination, "get_store", coordination.LocalStore)
    attempts = []

    def dead(self, queue, args, *, countdown):
        attempts.append(queue)
        coordination.broker_outage.failed()  # what _publish does when apply_async raises
        return False

    monkeypatch.setattr(DebouncedTask, "_publish", dead)
    task = DebouncedTask("messaging.drain", prefix="t")
    assert task.nudge(key="a", queue="q", args=()) is False
    started = time.monotonic()
    for key in "bcdef":
        assert task.nudge(key=key, queue="q", args=()) is False
        assert task.wake(key=key, queue="q", args=(), delay=1) is False
    assert attempts == ["q"]  # one attempt; the rest skipped the broker
    assert time.monotonic() - started < 0.05
    coordination.broker_outage.reset()  # what the sweep does: the next call tries again
    assert task.nudge(key="g", queue="q", args=()) is False
    assert attempts == ["q", "q"]
