"""``manage.py runsandbox``: start the Cloud API sandbox on 127.0.0.1.

Every knob of ``sandbox.config.SandboxConfig`` is a flag (``--webhook-duplicate-rate 0.2``),
an environment variable (``SANDBOX_WEBHOOK_DUPLICATE_RATE``) and a key of
``POST /_sandbox/config``; flags win over the environment. ``--app-secret`` defaults to
``WHATSAPP_APP_SECRET`` so the sandbox signs webhooks the way Waypost verifies them.
"""

import dataclasses
import json
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.config import SandboxConfig
from sandbox.server import run

JSON_FIELDS = ("error_rates", "fail_rules")


class Command(BaseCommand):
    help = "Run the local stand-in for Meta's WhatsApp Cloud API (with fault injection)."

    def add_arguments(self, parser):
        for f in dataclasses.fields(SandboxConfig):
            flag = "--" + f.name.replace("_", "-")
            if f.name == "fail_rules":
                parser.add_argument(
                    "--fail-pattern",
                    action="append",
                    dest="fail_pattern",
                    default=None,
                    metavar="REGEX[:CODE]",
                    help="recipients matching REGEX fail via a `failed` status (CODE 131026)",
                )
            elif f.name in JSON_FIELDS:
                parser.add_argument(
                    flag,
                    dest=f.name,
                    default=None,
                    help='JSON, e.g. {"131000": 0.05, "130429": 0.01}',
                )
            elif str(f.type).startswith("bool"):
                parser.add_argument(flag, dest=f.name, action="store_true", default=None)
            else:
                parser.add_argument(flag, dest=f.name, default=None)

    def handle(self, *args, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        try:
            config = SandboxConfig.from_env()
            changes = {}
            for f in dataclasses.fields(SandboxConfig):
                value = options.get(f.name)
                if value is not None:
                    changes[f.name] = json.loads(value) if f.name in JSON_FIELDS else value
            if options.get("fail_pattern"):
                changes["fail_rules"] = [
                    [p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])]
                    if ":" in p and p.rsplit(":", 1)[1].isdigit()
                    else [p, 131026]
                    for p in options["fail_pattern"]
                ]
            if not config.app_secret and "app_secret" not in changes:
                changes["app_secret"] = settings.WHATSAPP_APP_SECRET
            config.update(changes)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Sandbox on http://{config.host}:{config.port} "
            f"(seed {config.seed}; webhooks to {config.webhook_url or 'nowhere'})"
        )
        run(config)
