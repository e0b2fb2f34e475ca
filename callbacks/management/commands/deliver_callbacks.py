"""``manage.py deliver_callbacks``: the callback deliverer (the Procfile's ``callbacks``)."""

import signal
import threading

from django.core.management.base import BaseCommand

from callbacks.deliverer import Deliverer
from core.startup import process_started


class Command(BaseCommand):
    help = "Deliver client callbacks from the outbox until stopped (SIGTERM/SIGINT)."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=8, help="tenants delivered at once")

    def handle(self, *args, threads, **options):
        process_started("callbacks", check=False)  # the command's own system checks ran
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        Deliverer(threads=threads).run(stop)
