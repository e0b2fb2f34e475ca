"""Celery tasks: thin wrappers that take ids, call one pipeline function or service, and own
only retry policy. Every task is ``acks_late``: a task whose worker dies is redelivered, and
every pass is idempotent.

A transient database error (deadlock, lost connection) inside a pass is retried there
(``core.db.retry_transient``); one that still escapes retries the task with backoff. A
``DatabaseError`` that is not transient is a bug and is raised, not retried."""

from celery import shared_task
from django.db import DatabaseError

from core.db import is_transient
from messaging import pipeline, services

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


def retries_transient_errors(fn):
    """Bind the task, and retry it with backoff when a transient database error escaped the
    retries inside it. Any other ``DatabaseError`` is a bug: raised, not retried."""

    def task(self, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DatabaseError as exc:
            if is_transient(exc) and self.request.retries < 5:
                raise self.retry(exc=exc, countdown=min(30, 0.5 * 2**self.request.retries)) from exc
            raise

    # Celery reads the task's signature from this function: name and docs, not __wrapped__.
    task.__name__, task.__qualname__, task.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    task.__module__ = fn.__module__
    return task


@shared_task(name="messaging.drain", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def drain(tenant_id: str) -> dict:
    """One pass over one batch of the tenant's due messages (``messaging.dispatch``)."""
    return pipeline.drain(tenant_id=tenant_id).as_dict()


@shared_task(name="messaging.redrive", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def redrive() -> dict:
    return services.messages_redrive()


@shared_task(name="messaging.resolve_unknown", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def resolve_unknown() -> dict:
    return services.unknown_resolve()
