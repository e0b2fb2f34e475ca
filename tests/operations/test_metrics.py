"""/metrics: protected, counters from the processes, gauges from the database — and no label
that could name a message, a recipient or a wamid."""

import re

import pytest

from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body

pytestmark = pytest.mark.django_db


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def test_metrics_count_state_changes_and_show_gauges(client, tenant_a):
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    message_id = tenant_a.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY="m"
    ).json()["id"]
    record([NewEvent(message_id, EventType.REJECTED, EventSource.PIPELINE)])
    Message.objects.filter(pk=message_id).update(stalled=True)
    answer = scrape(client)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert re.search(
        rf'waypost_message_state_changes_total{{.*state="rejected",tenant="{tenant_a.tenant.slug}"}}',
        text,
    ) or re.search(
        rf'waypost_message_state_changes_total{{tenant="{tenant_a.tenant.slug}",state="rejected"}}',
        text,
    )
    assert f'waypost_stalled_messages{{tenant="{tenant_a.tenant.slug}"}} 1.0' in text
    assert "waypost_webhook_deliveries_pending 0.0" in text
    assert "waypost_queue_depth" in text
    # Bounded labels: no UUID, wamid or phone number in any label value.
    values = re.findall(r'="([^"]*)"', text)
    assert not [v for v in values if re.search(r"[0-9a-f]{8}-|wamid|\+?\d{8,}", v)]


def test_metrics_are_refused_to_the_world(client, settings):
    assert scrape(client, REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.WAYPOST_METRICS_TOKEN = "scrape-me"
    assert scrape(client).status_code == 403  # a token, once set, is required from anywhere
    assert scrape(client, HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    assert scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
