"""The operations app's periodic tasks: thin, like every task here (``operations.reconciler``
has the reconciler's rules, ``tenants.services`` the health poll)."""

from celery import shared_task

from core.db import retries_transient_errors
from operations.housekeeping import partitions_ensure
from operations.reconciler import reconcile as reconcile_pass
from operations.rollup import rollup_refresh
from tenants.services import senders_health_poll


@shared_task(name="operations.reconcile", bind=True, acks_late=True, ignore_result=True)
@retries_transient_errors
def reconcile() -> dict:
    return reconcile_pass()


@shared_task(name="operations.poll_sender_health", bind=True, acks_late=True, ignore_result=True)
@retries_transient_errors
def poll_sender_health() -> dict:
    """Each active sender's messaging limit and quality rating, asked of its provider at most
    every ``WAYPOST_HEALTH_POLL_SECONDS``."""
    return senders_health_poll()


@shared_task(name="operations.partitions", bind=True, acks_late=True, ignore_result=True)
@retries_transient_errors
def ensure_partitions() -> dict:
    """The partitioned tables' months, made ahead (``operations.housekeeping``): how many
    partitions of each table were made."""
    return {table: len(made) for table, made in partitions_ensure().items()}


@shared_task(name="operations.rollup", bind=True, acks_late=True, ignore_result=True)
@retries_transient_errors
def rollup() -> int:
    """The operations page's counts by state, brought up to date (``operations.rollup``)."""
    return rollup_refresh()
