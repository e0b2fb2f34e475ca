"""The reconciler's task: thin, like every task here (``operations.reconciler`` has the rules)."""

from celery import shared_task

from core.db import retries_transient_errors
from operations.reconciler import reconcile as reconcile_pass


@shared_task(name="operations.reconcile", bind=True, acks_late=True, ignore_result=True)
@retries_transient_errors
def reconcile() -> dict:
    return reconcile_pass()
