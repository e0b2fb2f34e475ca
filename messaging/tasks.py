"""Celery tasks: thin wrappers that take ids, call one pipeline function or service, and own
only retry policy. Every task is ``acks_late``: a task whose worker dies is redelivered, and
every pass is idempotent.

A transient database error (deadlock, lost connection) inside a pass is retried there
(``core.db.retry_transient``); one that still escapes retries the task with backoff. A
``DatabaseError`` that is not transient is a bug and is raised, not retried."""

from celery import shared_task

from core.db import retries_transient_errors
from messaging.send import pipeline

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="messaging.drain", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def drain(tenant_id: str) -> dict:
    """One pass over one batch of the tenant's due messages (``messaging.send.dispatch``)."""
    return pipeline.drain(tenant_id=tenant_id).as_dict()
