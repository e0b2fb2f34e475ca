"""``manage.py replay_callbacks``: deliver dead-lettered (or any) callback events again."""

from django.core.management.base import BaseCommand
from django.utils.dateparse import parse_datetime

from callbacks.models import CallbackEvent, CallbackStatus
from callbacks.services import callbacks_replay


class Command(BaseCommand):
    help = "Replay callback events: the dead-lettered ones by default."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="a tenant's slug")
        parser.add_argument("--since", help="ISO 8601: events created since then")
        parser.add_argument("--event", help="one event's id")
        parser.add_argument("--all", action="store_true", help="delivered ones too")

    def handle(self, *args, tenant, since, event, all, **options):
        events = CallbackEvent.objects.all()
        if not all and not event:
            events = events.filter(status=CallbackStatus.DEAD)
        if tenant:
            events = events.filter(tenant__slug=tenant)
        if since:
            events = events.filter(created_at__gte=parse_datetime(since))
        if event:
            events = events.filter(pk=event)
        count = callbacks_replay(events=list(events))
        self.stdout.write(f"{count} callback event(s) queued for delivery again")
