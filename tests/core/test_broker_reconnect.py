"""The two broker-connection repairs of ``config/celery_app.py``, each on its own; the whole
(Redis restarted under traffic, the worker lives and sends everything) is the ``redis_flaps``
scenario of ``bench/chaos.py``, run by ``tests/chaos/test_chaos_quick.py``."""

from types import SimpleNamespace

import pytest
import redis
from kombu.transport import redis as transport

from config.celery_app import RedriveOnReconnect


def test_a_channel_of_a_closed_broker_connection_answers_a_connection_error():
    closed = SimpleNamespace(connection=SimpleNamespace(client=None))  # Celery closed it
    with pytest.raises(redis.ConnectionError):
        transport.Channel._connparams(closed)  # kombu's own raises AttributeError: worker gone
    assert redis.ConnectionError in transport.Transport.connection_errors  # what Celery handles


class _Consumer:
    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.app = SimpleNamespace(
            conf=SimpleNamespace(task_default_queue="waypost"),
            send_task=lambda name, **kw: self.sent.append((name, kw["queue"])),
        )


def test_a_reconnected_worker_redrives_at_once_and_a_starting_one_does_not():
    consumer = _Consumer()
    step = RedriveOnReconnect(consumer)
    step.start(consumer)  # the worker starting: nothing was lost
    assert consumer.sent == []
    step.start(consumer)  # the consumer restarted after a lost connection
    step.start(consumer)
    assert consumer.sent == [("operations.reconcile", "waypost")] * 2


def test_a_redrive_the_broker_refuses_is_left_to_the_periodic_pass(caplog):
    consumer = _Consumer()

    def refuse(name, **kw):
        raise redis.ConnectionError("down again")

    consumer.app.send_task = refuse
    step = RedriveOnReconnect(consumer)
    step.start(consumer)
    step.start(consumer)  # does not raise: the consumer goes on
    assert "could not re-drive" in caplog.text
