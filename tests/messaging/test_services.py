"""Service rules with one definition each: what is sendable, which number a message leaves
from, and the unknown-outcome policy bounded in SQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.states import EventSource, EventType
from messaging.sweeps import unknown_resolve
from messaging.track.ledger import NewEvent, record
from templates_registry.services import template_create

from ..factories import MessageTemplateFactory, SenderNumberFactory, TenantFactory
from .helpers import body

pytestmark = pytest.mark.django_db


def post(tenant_client, template, key="k"):
    return tenant_client.client.post(
        "/api/v1/messages", body(template), format="json", HTTP_IDEMPOTENCY_KEY=key
    )


@pytest.mark.parametrize(("status", "code"), [("APPROVED", 202), ("FLAGGED", 202), ("PAUSED", 400)])
def test_the_api_and_the_pipeline_share_one_definition_of_sendable(tenant_a, status, code):
    template = MessageTemplateFactory(tenant=tenant_a.tenant, status=status)
    assert post(tenant_a, template).status_code == code


def test_a_message_leaves_from_its_templates_number(tenant_a):
    other = SenderNumberFactory(tenant=tenant_a.tenant)
    template = MessageTemplateFactory(tenant=tenant_a.tenant, sender=other)
    message_id = post(tenant_a, template).json()["id"]
    assert Message.objects.get(pk=message_id).sender_id == other.pk


def test_without_a_template_number_both_apps_choose_the_same_default_sender(tenant_a):
    first = tenant_a.tenant.senders.get()
    first.status = "blocked"
    first.save()
    second = SenderNumberFactory(tenant=tenant_a.tenant)
    SenderNumberFactory(tenant=tenant_a.tenant)  # newer: not the default
    template = MessageTemplateFactory(tenant=tenant_a.tenant, sender=None)
    message_id = post(tenant_a, template).json()["id"]
    # The oldest active sender, as for a template's submission (tenants.selectors).
    assert Message.objects.get(pk=message_id).sender_id == second.pk
    submitted = template_create(
        tenant=tenant_a.tenant,
        definition={
            "name": "another_one",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, thanks."}],
        },
    )
    assert submitted.sender_id == second.pk


def unknown(sender, key, *, age: timedelta):
    message = Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient="+4915112345678",
        idempotency_key=key,
        request_hash="-",
        template_name="order_update",
        state_changed_at=timezone.now(),
    )
    record([NewEvent(message.pk, EventType.SUBMIT_UNKNOWN, EventSource.PIPELINE)])
    Message.objects.filter(pk=message.pk).update(state_changed_at=timezone.now() - age)
    return message


def test_unknown_resolve_applies_each_tenants_grace_and_its_limit_in_sql():
    quick = SenderNumberFactory(tenant=TenantFactory(ambiguous_grace_seconds=60))
    slow = SenderNumberFactory(tenant=TenantFactory(ambiguous_grace_seconds=3600))
    past = [unknown(quick, f"q{i}", age=timedelta(minutes=5)) for i in range(3)]
    young = unknown(slow, "s0", age=timedelta(minutes=5))  # within its tenant's hour
    assert unknown_resolve(limit=2) == {"held": 2, "resent": 0}
    assert unknown_resolve(limit=2) == {"held": 1, "resent": 0}
    assert unknown_resolve(limit=2) == {"held": 0, "resent": 0}
    assert all(Message.objects.get(pk=m.pk).stalled for m in past)
    assert not Message.objects.get(pk=young.pk).stalled
