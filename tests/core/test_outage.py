"""A dead broker is skipped for a few seconds after a failed publish, not paid for per call."""

import time

import pytest

from core import coordination
from core.coordination import Doorbell, Outage


def test_an_outage_lasts_its_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    outage = Outage(0.2)
    assert not outage.ongoing
    outage.failed()
    assert outage.ongoing
    clock[0] += 0.19
    assert outage.ongoing
    clock[0] += 0.02
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

    monkeypatch.setattr(Doorbell, "_publish", dead)
    bell = Doorbell("t", task="messaging.drain")
    assert bell.ring("a", queue="q") is False
    for key in "bcdef":
        assert bell.ring(key, queue="q") is False
        assert bell.ring(key, queue="q", delay=1) is False
    assert attempts == ["q"]  # one attempt; the rest skipped the broker
    coordination.broker_outage.reset()  # what the sweep does: the next call tries again
    assert bell.ring("g", queue="q") is False
    assert attempts == ["q", "q"]
