"""The campaign's state changes, one function for all of them (``transition``), and what each
tells the client. The services and the feeder both change states through it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from callbacks.services import Item, callbacks_enqueue
from campaigns.models import TRANSITIONS, Campaign, CampaignState
from campaigns.progress import campaign_counts
from core.errors import Conflict

CALLBACKS = {
    CampaignState.RUNNING: "campaign.started",
    CampaignState.PAUSED: "campaign.paused",
    CampaignState.COMPLETED: "campaign.completed",
    CampaignState.CANCELLED: "campaign.cancelled",
}
CALLBACK_TYPES = tuple(CALLBACKS.values())


def transition(campaign: Campaign, state: str, *, by: str, reason: str = "") -> None:
    """Move a campaign (locked by the caller, inside its transaction) to ``state`` — 409
    ``campaign_state`` if ``models.TRANSITIONS`` does not allow it — recording who and why,
    with its callback: ``campaign.started`` the first time it runs (not on a resume),
    ``campaign.paused`` with the reason, ``campaign.completed``, ``campaign.cancelled``."""
    if state not in TRANSITIONS[campaign.state]:
        raise Conflict(
            f"A {campaign.state} campaign cannot become {state}.",
            code="campaign_state",
            details=[{"state": campaign.state, "wanted": state}],
        )
    now = timezone.now()
    first_start = state == CampaignState.RUNNING and campaign.started_at is None
    campaign.state, campaign.state_changed_at = state, now
    campaign.state_reason, campaign.state_changed_by = reason[:255], by[:150]
    fields = ["state", "state_changed_at", "state_reason", "state_changed_by"]
    if first_start:
        campaign.started_at = now
        fields.append("started_at")
    if state in (CampaignState.COMPLETED, CampaignState.CANCELLED, CampaignState.PAUSED):
        campaign.next_pass_at, campaign.held_reason, campaign.held_since = None, "", None
        fields += ["next_pass_at", "held_reason", "held_since"]
    if state in (CampaignState.COMPLETED, CampaignState.CANCELLED):
        campaign.finished_at = now
        fields.append("finished_at")
    campaign.save(update_fields=fields)
    event = CALLBACKS.get(state)
    if event and (state != CampaignState.RUNNING or first_start):
        callbacks_enqueue(
            tenant_id=campaign.tenant_id, items=[Item(type=event, data=callback_data(campaign))]
        )


def callback_data(campaign: Campaign) -> dict:
    return {
        "campaign_id": str(campaign.pk),
        "name": campaign.name,
        "state": campaign.state,
        "reason": campaign.state_reason or None,
        "by": campaign.state_changed_by or None,
        "counts": campaign_counts(campaign),
        "state_changed_at": campaign.state_changed_at.isoformat(),
    }


def deadline(campaign: Campaign):
    """When its rows stop being worth sending — ``ttl_seconds`` after it began sending: its
    ``send_at``, or when it was started if that came later (a draft started after its
    ``send_at`` had passed does not begin expired) — or None."""
    if not campaign.ttl_seconds:
        return None
    began = max(
        (at for at in (campaign.send_at, campaign.started_at) if at is not None),
        default=campaign.created_at,
    )
    return began + timedelta(seconds=campaign.ttl_seconds)
