"""The Celery application.

Settings come from Django settings under the ``CELERY_`` namespace; tasks are discovered in
every installed app's ``tasks`` module; periodic jobs live in django-celery-beat's database
scheduler (set in settings), so operators can see and change them in the admin. The settings
module itself is chosen by ``config/__init__.py`` (imported before this), as for every process.

The worker and beat check the deployment when they start (``core.startup``) and exit on an
error: Celery's own Django fix-up runs the system checks but ignores what they find. The hook is
``import_modules``, which both send while loading, before beat builds its database scheduler and
before the worker connects to the broker.
"""

import sys
from pathlib import Path

from celery import Celery, signals

app = Celery("waypost")
app.config_from_object("django.conf:settings", namespace="CELERY")
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
