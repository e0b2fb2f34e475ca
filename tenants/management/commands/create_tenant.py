"""``manage.py create_tenant SLUG --name NAME ...``: a tenant, one sender, one API key.

Prints one JSON object (``tenant``, ``sender``, ``api_key``) so scripts can read it. The API
key is shown here once and never again. Re-running with an existing slug fails cleanly.
"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.errors import WaypostError
from tenants.services import tenant_create
from whatsapp import Provider, provider_class


class Command(BaseCommand):
    help = "Create a tenant with one sender number and one API key; print them as JSON."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--provider", choices=[p.value for p in Provider], default=Provider.SANDBOX
        )
        parser.add_argument("--phone-number-id", help="default: <slug>-phone")
        parser.add_argument("--waba-id", help="default: <slug>-waba")
        parser.add_argument("--display-phone-number", default="")
        parser.add_argument("--mps", type=int, default=80, help="messages per second (80)")
        parser.add_argument(
            "--access-token-env",
            default="",
            help="name of the environment variable holding the token / 360dialog key",
        )

    def handle(self, *args, **opts):
        slug = opts["slug"]
        needs_credential = provider_class(opts["provider"]).credential_required
        if needs_credential and not opts["access_token_env"]:
            raise CommandError(f"--access-token-env is required for provider {opts['provider']}")
        try:
            bundle = tenant_create(
                slug=slug,
                name=opts["name"],
                provider=opts["provider"],
                phone_number_id=opts["phone_number_id"] or f"{slug}-phone",
                waba_id=opts["waba_id"] or f"{slug}-waba",
                display_phone_number=opts["display_phone_number"],
                messages_per_second=opts["mps"],
                credentials_env=opts["access_token_env"],
            )
        except WaypostError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        sender = bundle.sender
        self.stdout.write(
            json.dumps(
                {
                    "tenant": bundle.tenant.slug,
                    "tenant_id": str(bundle.tenant.id),
                    "sender": {
                        "provider": sender.provider,
                        "phone_number_id": sender.phone_number_id,
                        "waba_id": sender.waba_id,
                        "messages_per_second": sender.messages_per_second,
                    },
                    "api_key": bundle.key.raw,
                }
            )
        )
