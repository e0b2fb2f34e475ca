"""``manage.py replay_webhooks [--since ISO-DATETIME] [--delivery ID]``: re-process stored
raw deliveries. Idempotent by construction: every fact is deduplicated in the ledger and the
state does not depend on the order facts arrive in."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from webhooks.services import deliveries_replay


class Command(BaseCommand):
    help = "Re-process stored webhook deliveries (all, since a time, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601, e.g. 2026-11-22T00:00:00Z")
        parser.add_argument("--delivery", type=int, help="one delivery's id")

    def handle(self, *args, since=None, delivery=None, **options):
        when = None
        if since:
            when = parse_datetime(since)
            if when is None:
                raise CommandError(f"--since {since!r} is not an ISO 8601 date-time")
        count = deliveries_replay(since=when, delivery_id=delivery)
        self.stdout.write(f"re-processed {count} deliver{'y' if count == 1 else 'ies'}")
