"""A portfolio's messaging limit changed (a webhook, the poll, an operator): its campaigns held
at the limit look again at once, instead of at their next scheduled pass."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from campaigns import feeder
from campaigns.models import Campaign, CampaignState, HeldReason
from tenants.models import PortfolioLimit


@receiver(post_save, sender=PortfolioLimit, dispatch_uid="campaigns.limit_changed")
def limit_changed(sender, instance: PortfolioLimit, **kwargs) -> None:
    held = Campaign.objects.filter(
        tenant_id=instance.tenant_id,
        state=CampaignState.RUNNING,
        held_reason=HeldReason.MESSAGING_LIMIT,
    ).select_related("tenant")
    transaction.on_commit(lambda: feeder.ring(list(held)))
