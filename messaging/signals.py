"""Process wiring for the send path (no domain logic: each receiver calls a service).

* Worker start-up: consume every active tenant's queue (and the default one). New tenants'
  queues are added at run time by ``dispatch.announce_queue`` (``add_consumer``).
* ``tenants.signals.sending_resumed``: a sender or tenant is active again — its waiting
  messages go now (``messaging.send.requeue.messages_resume``), not at the next sweep.
* A template, sender or tenant saved or deleted: the intake's cached lookups of this process go
  (``messaging.send.intake.send_lookups``, ``core.lookups``).
"""

import logging

from celery.signals import worker_ready
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from messaging.send.intake import send_lookups_forget
from templates_registry.models import MessageTemplate
from tenants.models import SenderNumber, Tenant
from tenants.signals import sending_resumed

log = logging.getLogger(__name__)


@worker_ready.connect
def subscribe_tenant_queues(sender, **kwargs):
    from tenants.models import Tenant

    queues = [t.queue_name for t in Tenant.objects.filter(active=True)]
    for queue in queues:
        sender.add_task_queue(queue)
    log.info("consuming %d tenant queue(s)", len(queues))


@receiver(sending_resumed)
def resume_sending(sender, tenant, **kwargs):
    from messaging.send.requeue import messages_resume

    messages_resume(tenant=tenant)


for _model in (MessageTemplate, SenderNumber, Tenant):
    post_save.connect(send_lookups_forget, sender=_model, dispatch_uid=f"send-{_model.__name__}")
    post_delete.connect(
        send_lookups_forget, sender=_model, dispatch_uid=f"send-del-{_model.__name__}"
    )
