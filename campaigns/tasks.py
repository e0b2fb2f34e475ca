"""Celery tasks: thin (``campaigns.feeder`` has the rules)."""

from celery import shared_task

from campaigns import feeder
from core.db import retries_transient_errors

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="campaigns.feed", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def feed(campaign_id: str) -> dict:
    """One pass of the feeder over one campaign."""
    return feeder.feed(campaign_id=campaign_id).as_dict()


@shared_task(name="campaigns.overdue", bind=True, **TASK_OPTIONS)
@retries_transient_errors
def overdue() -> int:
    """The beat's safety net: campaigns whose next pass is late are rung again."""
    return feeder.overdue()
