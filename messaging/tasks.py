"""Celery tasks: thin wrappers that take message ids, call one pipeline step or service, and
own only retry policy (database hiccups). Every task is ``acks_late``: a task whose worker
dies is redelivered, and every step is idempotent."""

from celery import shared_task
from django.db import DatabaseError

from messaging import pipeline, services

TASK_OPTIONS = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "max_retries": 5,
}


def _go_on(task, ids: list) -> list:
    if not ids:
        task.request.chain = None  # nothing left for the next steps: end the chain here
    return [str(pk) for pk in ids]


@shared_task(name="messaging.validate", bind=True, **TASK_OPTIONS)
def validate(self, ids: list) -> list:
    return _go_on(self, pipeline.step_validate(ids))


@shared_task(name="messaging.transform", bind=True, **TASK_OPTIONS)
def transform(self, ids: list) -> list:
    return _go_on(self, pipeline.step_transform(ids))


@shared_task(name="messaging.submit", bind=True, **TASK_OPTIONS)
def submit(self, ids: list) -> list:
    return _go_on(self, pipeline.step_submit(ids))


@shared_task(name="messaging.check_acceptance", bind=True, **TASK_OPTIONS)
def check_acceptance(self, ids: list) -> list:
    return _go_on(self, pipeline.step_check_acceptance(ids))


@shared_task(name="messaging.redrive", **TASK_OPTIONS)
def redrive() -> int:
    return services.messages_redrive()


@shared_task(name="messaging.resolve_unknown", **TASK_OPTIONS)
def resolve_unknown() -> dict:
    return services.unknown_resolve()
