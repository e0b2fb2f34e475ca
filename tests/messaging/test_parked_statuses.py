"""Statuses parked by an older Waypost are re-applied with what it did not store: a stored
report without ``error_policy`` gets its class and policy from the provider's error table, so
a 131050 parked before the upgrade still records that the user stopped marketing."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from messaging.models import Contact, Message, OrphanStatus
from messaging.track.inbound import orphans_resolve
from whatsapp import provider_class
from whatsapp.errors import ErrorClass, Policy
from whatsapp.reports import StatusReport

from ..factories import SenderNumberFactory

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NUMBER = "4915100000050"


def parked_before_the_upgrade(wamid: str, code: int) -> dict:
    """A failed status as the version before ``error_policy`` stored it."""
    report = StatusReport(
        phone_number_id="pn-1",
        wamid=wamid,
        status="failed",
        occurred_at=AT,
        recipient_id=NUMBER,
        error_code=code,
        error_title="User has stopped marketing messages",
        error_class=str(ErrorClass.NEVER_RETRY),
    ).as_json()
    del report["error_policy"]
    return report


def test_a_stored_report_without_a_policy_gets_it_from_the_error_table():
    report = StatusReport.from_json(parked_before_the_upgrade("wamid.a", 131050))
    assert report.error_policy == Policy.MARKETING_STOPPED
    assert report.error_class == ErrorClass.NEVER_RETRY
    on_360dialog = StatusReport.from_json(
        parked_before_the_upgrade("wamid.a", 131050),
        error_info=provider_class("360dialog").error_info,
    )
    assert on_360dialog.error_policy == Policy.MARKETING_STOPPED


def test_a_stored_policy_is_kept_and_an_error_without_one_gets_none():
    stored = {**parked_before_the_upgrade("wamid.a", 131050), "error_policy": ""}
    assert StatusReport.from_json(stored).error_policy == ""  # as the parser said
    assert StatusReport.from_json(parked_before_the_upgrade("wamid.b", 131026)).error_policy == ""


@pytest.mark.django_db
def test_a_131050_parked_before_the_upgrade_records_the_stop_when_re_applied():
    sender = SenderNumberFactory(phone_number_id="pn-1", waba_id="waba-1")
    message = Message.objects.create(
        tenant=sender.tenant,
        sender=sender,
        recipient=f"+{NUMBER}",
        template_name="spring_sale",
        template_language="en_US",
        template_category="MARKETING",
        idempotency_key="k-parked",
        request_hash="-",
        state_changed_at=timezone.now(),
        provider_message_id="wamid.parked",
    )
    report = parked_before_the_upgrade("wamid.parked", 131050)
    OrphanStatus.objects.create(
        sender=sender,
        wamid="wamid.parked",
        report=report,
        dedupe_key=StatusReport.from_json(report).dedupe_key,
    )

    assert orphans_resolve(wamids=["wamid.parked"]) == 1

    message.refresh_from_db()
    assert (message.error_code, message.error_class) == ("131050", ErrorClass.NEVER_RETRY)
    contact = Contact.objects.get(tenant=sender.tenant)
    assert contact.marketing_stopped_at == AT
