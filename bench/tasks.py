"""The baseline task the benchmarks run on the same worker as Waypost's pipeline (loaded with
``CELERY_IMPORTS=bench.tasks``):

``bench.bare_send`` — the sender a user would write instead of Waypost: one fire-and-forget
task per message posting its payload to the provider, no validation, no ledger, no retries
(the baseline of bench/run.py's send scenarios).
"""

from functools import cache

import requests
from celery import shared_task
from django.conf import settings


@cache
def _session() -> requests.Session:
    return requests.Session()


@shared_task(name="bench.bare_send", ignore_result=True, acks_late=True)
def bare_send(phone_number_id: str, payload: dict) -> int:
    url = f"{settings.SANDBOX_URL}/{settings.WHATSAPP_GRAPH_VERSION}/{phone_number_id}/messages"
    response = _session().post(
        url, json=payload, headers={"Authorization": "Bearer bench"}, timeout=10
    )
    return response.status_code
