"""Worker start-up: consume every active tenant's queue (and the default one).

New tenants' queues are added at run time by ``dispatch.announce_queue`` (``add_consumer``).
"""

import logging

from celery.signals import worker_ready

log = logging.getLogger(__name__)


@worker_ready.connect
def subscribe_tenant_queues(sender, **kwargs):
    from tenants.models import Tenant

    queues = [t.queue_name for t in Tenant.objects.filter(active=True)]
    for queue in queues:
        sender.add_task_queue(queue)
    log.info("consuming %d tenant queue(s)", len(queues))
