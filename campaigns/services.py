"""The campaign's state machine and what each change does (the design: ``campaigns/__init__``).

Every change locks the campaign row, checks ``models.TRANSITIONS``, records who and why, and
tells the client (``campaign.started``, ``campaign.paused`` with its reason,
``campaign.completed``, ``campaign.cancelled``) in the same transaction. The feeder is rung
after the commit.
"""

from __future__ import annotations

import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import feeder
from campaigns.audience import audience_import, preflight
from campaigns.lifecycle import transition
from campaigns.models import (
    Campaign,
    CampaignRow,
    CampaignState,
    PreflightStatus,
    RowOutcome,
)
from core.errors import Conflict, ValidationFailed
from messaging.send.intake import campaign_messages_cancel, template_sender
from messaging.send.requeue import (
    campaign_batches_recall,
    campaign_messages_park,
    campaign_messages_unpark,
)
from messaging.states import EventSource
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber, Tenant


def request_hash(fields: dict, audience_digest: str) -> str:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{body}\n{audience_digest}".encode()).hexdigest()


# --- create --------------------------------------------------------------------------------------


def _template(tenant: Tenant, data: dict) -> MessageTemplate:
    query = MessageTemplate.objects.select_related("sender").filter(tenant=tenant)
    if data.get("template_id"):
        template = query.filter(pk=data["template_id"]).first()
    else:
        ref = data["template"]
        template = query.filter(name=ref["name"], language=ref["language"]).first()
    if template is None:
        raise ValidationFailed(
            "No such template for this tenant.",
            code="template_not_found",
            details=[{"field": "template", "code": "not_found"}],
        )
    if not template.is_sendable:
        raise ValidationFailed(
            f"Template {template.name!r} is {template.status}; only approved templates send.",
            code="template_not_approved",
            details=[{"field": "template", "code": "status"}],
        )
    return template


def _sender(tenant: Tenant, template: MessageTemplate, phone_number_id: str) -> SenderNumber:
    """The sender named — in the template's WABA (Meta approves a template there) — else the
    one a single message of the template would go through (``template_sender``)."""
    if phone_number_id:
        sender = SenderNumber.objects.filter(tenant=tenant, phone_number_id=phone_number_id).first()
        if sender is None:
            raise ValidationFailed(
                "No such sender for this tenant.",
                code="sender_not_found",
                details=[{"field": "sender", "code": "not_found"}],
            )
        if template.sender_id and template.sender.waba_id != sender.waba_id:
            raise ValidationFailed(
                "The sender is not in the WABA the template is approved in.",
                code="sender_template_mismatch",
                details=[{"field": "sender", "code": "waba_mismatch"}],
            )
        return sender
    return template_sender(tenant=tenant, template=template)


def campaign_create(
    *, tenant: Tenant, idempotency_key: str, data: dict, rows, audience_digest: str
) -> tuple[Campaign, bool]:
    """A draft campaign with its audience imported and preflighted; (campaign, created).
    ``data`` is the validated request (``campaigns.apis``), ``rows`` the audience's rows as
    they are read, ``audience_digest`` their fingerprint. The same key with the same request
    returns the stored campaign; with another, 409."""
    if not idempotency_key or len(idempotency_key) > 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 characters.", code="idempotency_key_invalid"
        )
    digest = request_hash(data, audience_digest)
    existing = Campaign.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.request_hash != digest:
            raise Conflict(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                details=[{"campaign_id": str(existing.pk)}],
            )
        return existing, False
    template = _template(tenant, data)
    window = data.get("window")
    campaign = Campaign(
        tenant=tenant,
        name=data.get("name") or template.name,
        template=template,
        sender=_sender(tenant, template, data.get("sender", "")),
        idempotency_key=idempotency_key,
        request_hash=digest,
        state_changed_at=timezone.now(),
        defaults=data.get("defaults") or {},
        send_at=data.get("send_at"),
        window_start=window.start if window else None,
        window_end=window.end if window else None,
        window_days="".join(str(d) for d in sorted(window.days)) if window else "",
        messages_per_second=data.get("messages_per_second"),
        ttl_seconds=data.get("ttl_seconds"),
    )
    try:
        with transaction.atomic():
            campaign.save(force_insert=True)
            campaign.rows_total, columns = audience_import(campaign=campaign, rows=rows)
            campaign.save(update_fields=["rows_total"])
            preflight(campaign=campaign, columns=columns)
    except IntegrityError:
        # A concurrent request with the same key won the insert: the same answer as a replay.
        existing = Campaign.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        if existing.request_hash != digest:
            raise Conflict(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                details=[{"campaign_id": str(existing.pk)}],
            ) from None
        return existing, False
    return campaign, True


# --- transitions ---------------------------------------------------------------------------------


def _locked(campaign: Campaign) -> Campaign:
    """The campaign, locked as the feeder locks it (``FOR NO KEY UPDATE``: see there why)."""
    return (
        Campaign.objects.select_for_update(of=("self",), no_key=True)
        .select_related("tenant", "sender", "template")
        .get(pk=campaign.pk)
    )


def campaign_start(*, campaign: Campaign, skip_invalid: bool = False, by: str = "api") -> Campaign:
    """A draft goes: at ``send_at`` (scheduled), or now. It needs a preflight that passed, or
    ``skip_invalid``: its invalid rows are then skipped, never sent."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != CampaignState.DRAFT:
            raise Conflict(f"A {campaign.state} campaign cannot be started.", code="campaign_state")
        if campaign.preflight_status != PreflightStatus.PASSED:
            if not skip_invalid:
                raise Conflict(
                    f"The preflight found {campaign.rows_invalid} invalid rows: fix the "
                    "audience, or start with skip_invalid to send to the valid rows only.",
                    code="preflight_failed",
                    details=[{"invalid": campaign.rows_invalid}],
                )
            CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.INVALID).update(
                outcome=RowOutcome.SKIPPED
            )
            campaign.skip_invalid = True
            campaign.save(update_fields=["skip_invalid"])
        now = timezone.now()
        later = campaign.send_at is not None and campaign.send_at > now
        transition(
            campaign,
            CampaignState.SCHEDULED if later else CampaignState.RUNNING,
            by=by,
            reason="skipping invalid rows" if campaign.skip_invalid else "",
        )
        feeder.schedule(campaign, at=campaign.send_at if later else now)
    return campaign


def campaign_pause(*, campaign: Campaign, reason: str = "", by: str = "api") -> Campaign:
    """Nothing more is released; its messages not yet claimed for submission are parked, and
    then those claimed whose batch's requests have not begun — effective at once for
    everything not already on its way to the provider."""
    with transaction.atomic():
        campaign = _locked(campaign)
        transition(campaign, CampaignState.PAUSED, by=by, reason=reason or "paused")
        campaign_messages_park(campaign_id=campaign.pk)
        # Under the campaign's lock: a resume cannot slip in and find them parked after it.
        campaign_batches_recall(campaign_id=campaign.pk, reason="its campaign was paused")
    return campaign


def campaign_resume(*, campaign: Campaign, reason: str = "", by: str = "api") -> Campaign:
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != CampaignState.PAUSED:
            raise Conflict(
                f"Only a paused campaign can be resumed; this one is {campaign.state}.",
                code="campaign_state",
                details=[{"state": campaign.state, "wanted": CampaignState.RUNNING}],
            )
        now = timezone.now()
        later = campaign.send_at is not None and campaign.send_at > now
        if campaign.started_at is None and later:
            state = CampaignState.SCHEDULED
        else:
            state = CampaignState.RUNNING
        transition(campaign, state, by=by, reason=reason or "resumed")
        campaign_messages_unpark(campaign_id=campaign.pk, tenant=campaign.tenant)
        feeder.schedule(campaign, at=campaign.send_at if state == CampaignState.SCHEDULED else now)
    return campaign


def campaign_cancel(*, campaign: Campaign, reason: str = "", by: str = "api") -> Campaign:
    """Unreleased rows are skipped; its messages not yet submitted are parked in the same
    transaction (nothing more leaves from the moment it answers), then cancelled, each with
    its ledger event. Cancelling a cancelled campaign again finishes that second step, should
    the first call have died between the two; it changes nothing else."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != CampaignState.CANCELLED:
            CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.PENDING).update(
                outcome=RowOutcome.SKIPPED,
                error_code="campaign_cancelled",
                error_message="The campaign was cancelled before this row was sent.",
            )
            # After the rows: campaign.cancelled carries the counts as they end.
            transition(campaign, CampaignState.CANCELLED, by=by, reason=reason or "cancelled")
            campaign_messages_park(campaign_id=campaign.pk)
        campaign_batches_recall(campaign_id=campaign.pk, reason="its campaign was cancelled")
    campaign_messages_cancel(
        campaign_id=campaign.pk,
        reason=campaign.state_reason or "campaign cancelled",
        source=EventSource.OPERATOR if by.startswith("admin:") else EventSource.API,
    )
    return campaign
