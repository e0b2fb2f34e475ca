"""Contacts by phone number or business-scoped user id: found, completed, merged; the window,
the suppression list and the marketing preference follow the user."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Contact, InboundMessage, Message, Suppression
from messaging.track.contacts import (
    contact_resolve,
    identities,
    marketing_preference_record,
    suppressed,
    window_open,
)

from ..factories import SenderNumberFactory

pytestmark = pytest.mark.django_db
NUMBER, BSUID = "4915112345678", "DE.13491208655302741918"


@pytest.fixture
def tenant():
    return SenderNumberFactory().tenant


def test_a_contact_is_found_by_either_identifier_and_completed(tenant):
    by_bsuid = contact_resolve(tenant=tenant, user_id=BSUID, username="@ana")
    both = contact_resolve(tenant=tenant, wa_id=f"+{NUMBER}", user_id=BSUID)
    assert both.pk == by_bsuid.pk and (both.wa_id, both.user_id) == (NUMBER, BSUID)
    assert contact_resolve(tenant=tenant, wa_id=NUMBER).pk == both.pk
    assert Contact.objects.count() == 1


def test_two_contacts_of_one_user_are_merged_with_their_history(tenant):
    sender = tenant.senders.get()
    phone = contact_resolve(tenant=tenant, wa_id=NUMBER)
    bsuid = contact_resolve(tenant=tenant, user_id=BSUID)
    now = timezone.now()
    Contact.objects.filter(pk=bsuid.pk).update(last_inbound_at=now)
    InboundMessage.objects.create(
        tenant=tenant, sender=sender, contact=bsuid, wamid="w1", type="text", received_at=now
    )
    merged = contact_resolve(tenant=tenant, wa_id=NUMBER, user_id=BSUID)
    assert merged.pk == phone.pk  # the older one stays
    assert (merged.wa_id, merged.user_id, merged.last_inbound_at) == (NUMBER, BSUID, now)
    assert InboundMessage.objects.get().contact_id == phone.pk
    assert Contact.objects.count() == 1
    # The window is the user's, whichever identifier asks.
    assert window_open(tenant=tenant, recipient=f"+{NUMBER}")
    assert window_open(tenant=tenant, user_id=BSUID)


def test_suppression_and_preference_follow_the_user(tenant):
    contact_resolve(tenant=tenant, wa_id=NUMBER, user_id=BSUID)
    Suppression.objects.create(tenant=tenant, recipient=f"+{NUMBER}")
    sender = tenant.senders.get()
    message = Message(
        pk=None,
        tenant=tenant,
        sender=sender,
        recipient_user_id=BSUID,
        template_name="t",
        idempotency_key="k",
        request_hash="-",
        state_changed_at=timezone.now(),
    )
    message.save()
    known = identities([message])
    assert suppressed([message], known) == {message.pk}  # addressed by BSUID, opted out by number
    assert known.key(tenant.pk, "", BSUID) == known.key(tenant.pk, f"+{NUMBER}", "")


def test_an_older_preference_never_overrides_a_newer_one(tenant):
    now = timezone.now()
    assert marketing_preference_record(tenant=tenant, wa_id=NUMBER, stop=True, at=now)
    assert not marketing_preference_record(
        tenant=tenant, wa_id=NUMBER, stop=False, at=now - timedelta(minutes=1)
    )
    assert Contact.objects.get().marketing_stopped_at == now
    assert marketing_preference_record(
        tenant=tenant, wa_id=NUMBER, stop=False, at=now + timedelta(minutes=1)
    )
    assert Contact.objects.get().marketing_stopped_at is None


def test_of_two_preferences_in_the_same_second_the_later_arrival_wins(tenant):
    second = timezone.now().replace(microsecond=0)  # Meta's timestamps are whole seconds
    assert marketing_preference_record(tenant=tenant, wa_id=NUMBER, stop=True, at=second)
    assert not marketing_preference_record(tenant=tenant, wa_id=NUMBER, stop=True, at=second)
    assert marketing_preference_record(tenant=tenant, wa_id=NUMBER, stop=False, at=second)
    assert Contact.objects.get().marketing_stopped_at is None
