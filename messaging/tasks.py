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


def _retry_if_transient(task, exc: Exception):
    if isinstance(exc, DatabaseError) and is_transient(exc) and task.request.retries < 5:
        raise task.retry(exc=exc, countdown=min(30, 0.5 * 2**task.request.retries)) from exc
    raise exc


@shared_task(name="messaging.drain", bind=True, **TASK_OPTIONS)
def drain(self, tenant_id: str) -> dict:
    """One pass over one batch of the tenant's due messages (``messaging.dispatch``)."""
    try:
        return pipeline.drain(tenant_id=tenant_id).as_dict()
    except DatabaseError as exc:
        _retry_if_transient(self, exc)


@shared_task(name="messaging.redrive", bind=True, **TASK_OPTIONS)
def redrive(self) -> dict:
    try:
        return services.messages_redrive()
    except DatabaseError as exc:
        _retry_if_transient(self, exc)


@shared_task(name="messaging.resolve_unknown", bind=True, **TASK_OPTIONS)
def resolve_unknown(self) -> dict:
    try:
        return services.unknown_resolve()
    except DatabaseError as exc:
        _retry_if_transient(self, exc)
