"""Baseline tasks for bench/send_path_bench.py: the naive design — one chain of four tasks
per message, each doing one UPDATE — run on the same worker as Waypost's pipeline."""

from celery import shared_task
from django.db.models import F


@shared_task(name="bench.step", ignore_result=True, acks_late=True)
def step(message_id: str) -> str:
    from messaging.models import Message

    Message.objects.filter(pk=message_id).update(attempts=F("attempts") + 1)
    return message_id
