"""Thin tasks: drain the stored deliveries (rung for by the endpoint, and on the beat)."""

from celery import shared_task
from django.db import DatabaseError

from webhooks import services


@shared_task(
    name="webhooks.process",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def process() -> dict:
    return dict(services.deliveries_drain())
