"""The deliverer: a process of its own (the Procfile's ``callbacks``: ``manage.py
deliver_callbacks``), so no tenant's endpoint can slow down sends, and a thread per tenant
being delivered, so a slow or dead endpoint holds only its own tenant.

It is driven by the outbox: each round it asks which tenants have events due
(``services.tenants_due``) and hands each, once at a time, to a thread. Between rounds it waits
on its doorbell (``core.coordination.Doorbell``: enqueuers ring it after their commit, and a
burst of rings is one wake-up) or for a second at most, which also picks up retries and expired
leases — and whatever a lost ring would have announced.

Each thread has its own ``callbacks.transport.Transport`` (its kept-alive connections); an
attempt holds its thread 10 s at most, whatever the receiver does.

Run as many deliverers as you like, on as many hosts: they share the work by leases in the
database (``services.deliver_tenant``) — one deliverer delivers a tenant at a time, and an
event a dead deliverer claimed goes out again once its lease ends, never while it holds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from callbacks import services
from callbacks.transport import Transport

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, *, threads: int = 8, idle_seconds: float = 1.0) -> None:
        # Names this deliverer in the endpoints it leases (several may run: services.deliver_
        # tenant); a thread of it is never given a tenant another of its threads has.
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="callback")
        self.idle = idle_seconds
        self.busy: set = set()
        self.lock = threading.Lock()
        self.local = threading.local()

    def run(self, stop: threading.Event) -> None:
        log.info("callback deliverer started")
        while not stop.is_set():
            try:
                self.round()
            except Exception:
                log.exception("callback deliverer round failed; going on")
                close_old_connections()
            self.wait()
        self.pool.shutdown(wait=True)

    def round(self) -> int:
        started = 0
        for tenant_id in services.tenants_due():
            with self.lock:
                if tenant_id in self.busy:
                    continue
                self.busy.add(tenant_id)
            self.pool.submit(self._deliver, tenant_id)
            started += 1
        return started

    def wait(self) -> bool:
        """Until rung, or ``idle`` seconds at most (True when rung)."""
        return services.DELIVERER_BELL.wait(timeout=self.idle)

    def _deliver(self, tenant_id) -> None:
        try:
            transport = getattr(self.local, "transport", None)
            if transport is None:
                transport = self.local.transport = Transport()
            counts = services.deliver_tenant(
                tenant_id=tenant_id, transport=transport, holder=self.holder
            )
            if counts["delivered"] or counts["dead"]:
                log.info("callbacks for tenant %s: %s", tenant_id, counts)
        except Exception:
            log.exception("callback delivery for tenant %s failed", tenant_id)
        finally:
            with self.lock:
                self.busy.discard(tenant_id)
            connection.close()
            services.deliverer_wake()  # more may be due: look again at once
