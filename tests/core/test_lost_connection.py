"""A connection the server ended (a PostgreSQL restart, an administrator's
``pg_terminate_backend``) is a transient error: the task is retried — on a new connection, not
on the dead one the worker would otherwise keep between tasks (``CELERY_DB_REUSE_MAX``). The
Celery worker's ``task_postrun`` handler (config/celery_app.py) drops it after every task."""

import psycopg
import pytest
from celery import signals
from django.db import DatabaseError, connection

pytestmark = pytest.mark.django_db(transaction=True)


def _end_this_connection() -> None:
    connection.ensure_connection()
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(%s, 5000)", [connection.connection.info.backend_pid]
        )


def _select_one() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_after_a_task_a_connection_the_server_ended_is_replaced():
    import config.celery_app  # noqa: F401  (connects the worker's signal handlers)

    _end_this_connection()
    with pytest.raises(DatabaseError):
        _select_one()  # the task that met it fails (and is retried by its policy)
    with pytest.raises(DatabaseError):
        _select_one()  # without the handler, so would every later one
    signals.task_postrun.send(sender=None)
    assert _select_one() == 1


def test_a_healthy_connection_is_kept_between_tasks():
    _select_one()
    before = connection.connection
    signals.task_postrun.send(sender=None)
    assert connection.connection is before
