"""One doorbell for the three queues (``core.coordination.Doorbell``) — the drains, webhook
processing and the callback deliverer — on Redis and in process memory, and one Redis client
per process for the doorbells and the rate limits."""

import logging
import os
import threading
import uuid

import pytest
import redis

from callbacks import deliverer
from callbacks import services as callback_services
from core import coordination
from core.coordination import REDIS_TIMEOUTS, Doorbell, redis_client
from core.ratelimit import get_rate_limiter
from webhooks import services as webhook_services

from ..waiting import wait_for


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, monkeypatch):
    """The bells' state in process memory (``make demo``) or in Redis (every deployment)."""
    store = coordination.LocalStore() if request.param == "memory" else coordination.RedisStore()
    monkeypatch.setattr(coordination, "get_store", lambda: store)
    return store


@pytest.fixture
def name():
    """A bell of this test's own: no other test or process rings or answers it."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store_down(monkeypatch):
    class Unreachable:
        def __getattr__(self, operation):
            def fail(*args, **kwargs):
                raise redis.ConnectionError("Connection refused")

            return fail

    monkeypatch.setattr(coordination, "get_store", Unreachable)
    yield
    coordination.store_outage.reset()


def recorder(bell: Doorbell, monkeypatch, *, succeeds: bool = True) -> list:
    published: list = []

    def publish(queue, args, *, countdown):
        published.append((queue, args, countdown))
        return succeeds

    monkeypatch.setattr(bell, "_publish", publish)
    return published


# --- a bell answered by a waiting process (the callback deliverer) ------------------------------


def test_a_burst_of_rings_wakes_a_waiting_consumer_once(store, name):
    bell = Doorbell(name)
    assert bell.ring() is True
    assert bell.ring() is False  # already pending: absorbed
    assert bell.wait(timeout=5) is True  # answered as it wakes
    assert bell.wait(timeout=0.05) is False  # nothing rang since
    assert bell.ring() is True  # a ring after the answer is fresh


def test_a_ring_from_another_thread_wakes_the_waiting_consumer(store, name):
    bell, woke = Doorbell(name), []
    waiter = threading.Thread(target=lambda: woke.append(bell.wait(timeout=30)))
    waiter.start()
    bell.ring()
    waiter.join(timeout=60)
    assert woke == [True]


@pytest.mark.redis
def test_a_wait_longer_than_the_clients_read_timeout_is_no_error(monkeypatch, name, caplog):
    monkeypatch.setattr(coordination, "get_store", coordination.RedisStore)
    caplog.set_level(logging.WARNING, logger="core.coordination")
    assert Doorbell(name).wait(timeout=REDIS_TIMEOUTS["socket_timeout"] * 2.5) is False
    assert caplog.records == []  # waited in slices, not timed out by the socket
    assert not coordination.store_outage.ongoing


def test_only_a_task_bell_rings_later(store, name):
    with pytest.raises(ValueError, match="no task"):
        Doorbell(name).ring(delay=1)


# --- a bell answered by a Celery task (the drains, webhook processing) --------------------------


def test_a_task_bell_publishes_one_run_until_the_run_answers(store, name, monkeypatch):
    bell = Doorbell(name, task="webhooks.process", linger=0.25)
    published = recorder(bell, monkeypatch)
    for _ in range(5):
        bell.ring()
    assert published == [(None, (), 0.25)]  # one run, a quarter of a second later
    bell.answered()  # the run started: it reads from now on
    assert bell.ring() is True
    assert len(published) == 2


def test_a_held_ring_stays_pending_through_rings_until_released(store, name, monkeypatch):
    bell = Doorbell(name, task="messaging.drain")
    published = recorder(bell, monkeypatch)
    bell.ring()
    bell.hold(seconds=30)  # the run may do nothing for now
    assert [bell.ring() for _ in range(3)] == [False] * 3  # held: no run that would idle
    bell.release()  # whoever ended that state
    assert bell.ring() is True
    assert len(published) == 2


def test_a_release_leaves_a_plain_pending_ring_alone(store, name, monkeypatch):
    bell = Doorbell(name, task="messaging.drain")
    published = recorder(bell, monkeypatch)
    assert bell.ring() is True  # its run is coming
    bell.release()  # no hold to end: the coming run reads after it starts
    assert bell.ring() is False
    assert len(published) == 1


def test_a_hold_ends_by_itself(store, name, monkeypatch):
    bell = Doorbell(name, task="messaging.drain")
    published = recorder(bell, monkeypatch)
    bell.hold(seconds=1)
    assert bell.ring() is False
    assert wait_for(lambda: bell.ring(), timeout=5)
    assert len(published) == 1


def test_a_ring_whose_publish_failed_is_not_left_pending(store, name, monkeypatch):
    bell = Doorbell(name, task="webhooks.process")
    published = recorder(bell, monkeypatch, succeeds=False)
    assert bell.ring() is False
    assert bell.ring() is False
    assert len(published) == 2  # the second ring tried the broker again


def test_without_the_store_a_task_bell_publishes_anyway_and_a_wait_polls(
    store_down, name, monkeypatch
):
    task_bell = Doorbell(name, task="webhooks.process")
    published = recorder(task_bell, monkeypatch)
    assert task_bell.ring() is True
    assert coordination.store_outage.ongoing  # the next calls skip the store at once
    assert task_bell.ring() is True
    assert len(published) == 2  # a duplicate run is cheap; a lost one is not
    assert Doorbell(name).ring() is False
    assert Doorbell(name).wait(timeout=0.01) is False


def test_a_background_bell_never_waits_on_the_broker(store, name, monkeypatch):
    bell = Doorbell(name, task="webhooks.process", background=True)
    broker_answers, published = threading.Event(), []

    def slow_publish(queue, args, *, countdown):
        broker_answers.wait(30)  # a dead broker's connection timeout
        published.append(queue)
        return False  # ... and then the publish fails

    monkeypatch.setattr(bell, "_publish", slow_publish)
    assert bell.ring() is True  # handed to the publisher thread, not waited for
    assert bell.ring() is False  # pending meanwhile: absorbed
    assert published == []
    broker_answers.set()
    wait_for(lambda: published, 10, "the background publish")
    # The failed publish cleared its ring: the next ring tries the broker again.
    wait_for(lambda: bell.ring(), 10, "a fresh ring after the failed publish")


@pytest.mark.django_db
def test_webhook_processing_is_rung_once_per_batch(store, name, monkeypatch):
    monkeypatch.setattr(webhook_services._processing, "name", name)
    published = recorder(webhook_services._processing, monkeypatch)
    for _ in range(3):
        webhook_services.processing_kick()
    wait_for(lambda: published, 10, "the processor's run published")
    assert published == [(None, (), webhook_services.PROCESSING_LINGER)]
    webhook_services.deliveries_drain()  # the run answers before it reads
    webhook_services.processing_kick()
    wait_for(lambda: len(published) == 2, 10, "the next run published")


def test_the_callback_deliverer_waits_on_its_bell(store, name, monkeypatch):
    monkeypatch.setattr(callback_services.DELIVERER_BELL, "name", name)
    for _ in range(3):
        callback_services.deliverer_wake()
    waiting = deliverer.Deliverer(threads=1, idle_seconds=5)
    try:
        assert waiting.wait() is True
        waiting.idle = 0.05
        assert waiting.wait() is False  # three rings, one wake-up
    finally:
        waiting.pool.shutdown()


# --- one Redis client per process ---------------------------------------------------------------


@pytest.mark.redis
def test_the_bells_and_the_rate_limits_share_one_redis_client(monkeypatch, name):
    made = []
    real = redis.Redis.from_url

    def from_url(url, **options):
        made.append(options)
        return real(url, **options)

    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(from_url))
    monkeypatch.setattr(coordination, "get_store", coordination.RedisStore)
    coordination._client.cache_clear()
    get_rate_limiter().acquire(f"test:{name}", rate=10, count=1, burst=10)
    get_rate_limiter().spend(f"test:{name}", rate=10, burst=10, cost=1, need=1)
    bell = Doorbell(name)
    bell.ring()
    bell.wait(timeout=0.01)
    for _ in range(3):
        callback_services.deliverer_wake()
    assert len(made) == 1
    assert made[0]["socket_timeout"] == REDIS_TIMEOUTS["socket_timeout"]
    assert made[0]["socket_connect_timeout"] == REDIS_TIMEOUTS["socket_connect_timeout"]
    assert redis_client() is redis_client()


def test_a_forked_child_makes_its_own_client():
    parent = redis_client()  # made, not connected
    pid = os.fork()
    if pid == 0:  # the child: no parent's client, a new one of its own
        fresh = coordination._client.cache_info().currsize == 0 and redis_client() is not parent
        os._exit(0 if fresh else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert redis_client() is parent
