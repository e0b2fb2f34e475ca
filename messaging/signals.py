"""Process wiring for the send path (no domain logic: each receiver calls a service).

* Worker start-up: consume every active tenant's queue (and the default one). New tenants'
  queues are added at run time by ``dispatch.announce_queue`` (``add_consumer``).
* ``tenants.signals.sending_resumed``: a sender or tenant is active again — its waiting
  messages go now (``messaging.send.requeue.messages_resume``), not at the next sweep.
"""

import logging

from celery.signals import worker_ready
from django.dispatch import receiver

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
