"""``manage.py retention [--tenant SLUG] [--archive DIR] [--dry-run]``: apply the retention
periods (the rules are in ``messaging/track/retention.py``).

* each tenant's settled messages whose last state change is older than its
  ``ledger_retention_days`` lose their event ledger (archived first to ``DIR`` as gzipped JSON
  Lines when ``--archive`` is given); the message row keeps the summary and final state;
* the partitioned tables' months are made ahead (``operations.housekeeping``), and whole
  months past every retention are dropped as tables rather than row by row (PostgreSQL);
* processed webhook deliveries older than ``WAYPOST_WEBHOOK_RETENTION_DAYS`` are deleted
  (not with ``--tenant``: a delivery can carry several tenants' statuses).

Safe to run while everything else runs, and twice at once. Run it daily (cron, or a
django-celery-beat row)."""

import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.track.retention import ledgers_prune
from operations.housekeeping import partitions_ensure
from tenants.models import Tenant
from webhooks.services import deliveries_prune


class Command(BaseCommand):
    help = "Prune (or archive) ledgers and raw webhook deliveries past their retention."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="only this tenant's ledgers (slug)")
        parser.add_argument("--archive", type=Path, help="write pruned events here first")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args, tenant=None, archive=None, dry_run=False, **options):
        tenants = None
        if tenant:
            tenants = list(Tenant.objects.filter(slug=tenant))
            if not tenants:
                raise CommandError(f"no tenant {tenant!r}")
        if not dry_run:
            partitions_ensure()
        pruned = ledgers_prune(tenants=tenants, archive_dir=archive, dry_run=dry_run)
        report = {"dry_run": dry_run, "ledgers": pruned.as_dict()}
        if not tenant and not dry_run:
            days = settings.WAYPOST_WEBHOOK_RETENTION_DAYS
            report["webhook_deliveries"] = (
                deliveries_prune(older_than=timedelta(days=days)) if days else 0
            )
        self.stdout.write(json.dumps(report))
