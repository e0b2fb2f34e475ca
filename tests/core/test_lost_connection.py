"""A connection the server ended (a PostgreSQL restart, an administrator's
``pg_terminate_backend``) is a transient error: the task is retried — on a new connection, not
on the dead one the worker would otherwise keep between tasks (``CELERY_DB_REUSE_MAX``)."""

import psycopg
import pytest
from celery.exceptions import Retry
from django.db import DatabaseError, connection

from core.db import retries_transient_errors

pytestmark = pytest.mark.django_db(transaction=True)


class _Request:
    retries = 0


class _Task:
    """What ``retries_transient_errors`` uses of a bound Celery task."""

    request = _Request()

    def retry(self, exc, countdown):
        raise Retry(exc=exc, when=countdown)


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


def test_a_task_whose_connection_the_server_ended_is_retried_on_a_new_one():
    task = retries_transient_errors(_select_one)
    _end_this_connection()
    with pytest.raises(Retry) as retried:
        task(_Task())
    assert isinstance(retried.value.exc, DatabaseError)
    assert task(_Task()) == 1  # the retry runs on a fresh connection
