"""Process wiring for the send path (no domain logic: each receiver calls a service).

* Worker start-up: consume the queue of every active tenant that has one of its own (the
  default queue and the shared lanes are in ``CELERY_TASK_QUEUES``: ``core.queues``). A tenant
  given one later has it added at run time by ``dispatch.announce_queue`` (``add_consumer``).
  An express worker (``WORKER_LANES=express``) consumes the express lanes only. A queue of ours
  that still holds tasks though no longer named (a tenant's own queue taken away, a lane
  dropped) is read too.
* ``tenants.signals.sending_resumed``: a sender or tenant is active again — its waiting
  messages go now (``messaging.send.requeue.messages_resume``), not at the next sweep.
* A template, sender or tenant saved or deleted: the intake's cached lookups of this process go
  (``messaging.send.intake.send_lookups``, ``core.lookups``).
"""

import logging

from celery.signals import celeryd_after_setup, worker_ready
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.queues import shared_queues
from messaging.send.intake import send_lookups_forget
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber, Tenant
from tenants.signals import sending_resumed

log = logging.getLogger(__name__)


@celeryd_after_setup.connect
def choose_lanes(sender, instance, **kwargs):
    """``WORKER_LANES=express`` (the Procfile's ``express`` entry): this worker consumes the
    express lanes only — tenants' drains and small batches — so a quiet tenant's message always
    finds a process that is not busy with a backlog's batch (``core.queues``)."""
    if settings.WORKER_LANES == "express":
        instance.app.amqp.queues.select(shared_queues(settings.WAYPOST_SEND_QUEUES, 0))


@worker_ready.connect
def subscribe_tenant_queues(sender, **kwargs):
    from tenants.models import Tenant

    if settings.WORKER_LANES == "express":
        log.info("consuming the %d express queue(s)", settings.WAYPOST_SEND_QUEUES)
        return
    from messaging.send.dispatch import leftover_queues

    shared = shared_queues(settings.WAYPOST_SEND_QUEUES, settings.WAYPOST_BULK_QUEUES)
    queues = {t.queue_name for t in Tenant.objects.filter(active=True, dedicated_queue=True)}
    queues |= leftover_queues() - set(shared)
    for queue in sorted(queues):
        sender.add_task_queue(queue)
    log.info("consuming %d shared queue(s) and %d other(s)", len(shared), len(queues))


@receiver(sending_resumed)
def resume_sending(sender, tenant, **kwargs):
    from messaging.send.requeue import messages_resume

    messages_resume(tenant=tenant)


for _model in (MessageTemplate, SenderNumber, Tenant):
    post_save.connect(send_lookups_forget, sender=_model, dispatch_uid=f"send-{_model.__name__}")
    post_delete.connect(
        send_lookups_forget, sender=_model, dispatch_uid=f"send-del-{_model.__name__}"
    )
