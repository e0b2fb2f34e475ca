"""The Celery application.

Settings come from Django settings under the ``CELERY_`` namespace; tasks are discovered in
every installed app's ``tasks`` module; periodic jobs live in django-celery-beat's database
scheduler (set in settings), so operators can see and change them in the admin. The settings
module itself is chosen by ``config/__init__.py`` (imported before this), as for every process.

The worker and beat check the deployment when they start (``core.startup``) and exit on an
error: Celery's own Django fix-up runs the system checks but ignores what they find. The hook is
``import_modules``, which both send while loading, before beat builds its database scheduler and
before the worker connects to the broker.

Two repairs to the broker connection live here, applied by importing the app (every Celery
process does): a closed channel answers a connection error (:func:`_closed_channel_is_a_\
connection_error`), and a worker that reconnects re-drives at once (:class:`RedriveOnReconnect`).
"""

import logging
import sys
from pathlib import Path

from celery import Celery, bootsteps, signals

log = logging.getLogger(__name__)


def _closed_channel_is_a_connection_error() -> None:
    """A channel of a closed broker connection answers a connection error, not a crash.

    After a lost connection Celery collects and closes it and connects anew, but work of the
    old connection goes on: the task that was running acknowledges its message on the old
    channel when it finishes, and closing the old channel restores its unacknowledged
    messages. kombu's Redis transport then builds a client from the closed connection's
    address — gone — and raises ``AttributeError``, which nothing expects: it escapes the
    event loop and the worker process exits (Celery and kombu 5.7; ``make chaos`` found it: a
    Redis restart under load stopped the stack). Raised as Redis's ``ConnectionError``
    instead, it is what Celery already handles: the acknowledgement is logged as lost (the
    message stays in Redis's unacked set and comes back after the visibility timeout; our
    tasks are safe to run twice) and the close is best-effort. The Sentinel transport's
    channel inherits the method. ``tests/chaos/test_redis_flaps.py`` restarts Redis under
    traffic and checks the worker lives and every message is sent."""
    import redis
    from kombu.transport import redis as transport

    original = transport.Channel._connparams
    if getattr(original, "waypost", False):
        return

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.ConnectionError("this channel's broker connection was closed")
        return original(self, asynchronous=asynchronous)

    _connparams.waypost = True
    transport.Channel._connparams = _connparams


_closed_channel_is_a_connection_error()


class RedriveOnReconnect(bootsteps.StartStopStep):
    """Started with the worker's consumer, and again each time it reconnects to the broker:
    after a reconnect it publishes one reconciler pass (``operations.reconcile``, safe to run
    twice at once). A broker that restarted empty lost every drain it held and every nudge
    published while it was down; the pass announces the queues again and nudges each tenant
    with due messages — at once, not at the next periodic pass."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.started = False

    def start(self, c) -> None:
        if not self.started:  # the first start: nothing was lost
            self.started = True
            return
        try:
            c.app.send_task("operations.reconcile", queue=c.app.conf.task_default_queue)
        except Exception as error:  # the periodic pass is still there
            log.warning("could not re-drive after reconnecting (%r)", error)


app = Celery("waypost")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["consumer"].add(RedriveOnReconnect)
app.autodiscover_tasks()


def _started(process: str) -> None:
    import django
    from django.core.management.base import SystemCheckError

    django.setup()
    from core.startup import process_started

    try:
        process_started(process)
    except SystemCheckError as exc:
        print(f"waypost {process} refuses to start:\n{exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _celery_process() -> str | None:
    """``worker`` or ``beat`` when this process is that Celery command, else None: other
    processes load task modules too (django-celery-beat's "run" admin action in gunicorn)."""
    if "celery" not in Path(sys.argv[0]).parts[-2:] and Path(sys.argv[0]).name != "celery":
        return None
    return next((arg for arg in sys.argv[1:] if arg in ("worker", "beat")), None)


@signals.import_modules.connect
def _loading(sender=None, **kwargs) -> None:
    process = _celery_process()
    if process is not None:
        _started(process)


@signals.task_postrun.connect
def _drop_a_broken_connection(**kwargs) -> None:
    """After each task (a retried one too), a connection the server ended is closed, so the
    next task opens a new one (``core.db.drop_broken_connections``)."""
    from core.db import drop_broken_connections

    drop_broken_connections()
