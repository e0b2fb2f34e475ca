"""``manage.py create_tenant SLUG --name NAME ...``: a tenant, one sender, one API key.

Prints one JSON object (``tenant``, ``sender``, ``api_key``) so scripts can read it. The API
key is shown here once and never again. Re-running with an existing slug fails cleanly.

The credential variable must be one reserved for the new tenant, ``WAYPOST_<SLUG>__<NAME>``
(``tenants.models.credential_env_prefix``). A sandbox sender without ids gets ids derived from
the slug (digits, like Meta's, the same on every run); a real provider's ids are Meta's and
must be given.
"""

import hashlib
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.errors import WaypostError
from tenants.models import Tenant, credential_env_prefix
from tenants.services import tenant_create
from whatsapp import Provider, provider_class


def sandbox_id(slug: str, kind: str) -> str:
    """A made-up Meta-like id for a sandbox sender: 15 digits derived from the slug."""
    digest = int(hashlib.sha256(f"{kind}:{slug}".encode()).hexdigest()[:16], 16)
    return f"{9 if kind == 'phone' else 8}{digest % 10**14:014d}"


def describe(error: ValidationError) -> str:
    """``field: message; ...`` (the option a message is about is then plain)."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    return "; ".join(
        message if field == "__all__" else f"{field}: {message}"
        for field, messages in error.message_dict.items()
        for message in messages
    )


class Command(BaseCommand):
    help = "Create a tenant with one sender number and one API key; print them as JSON."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--provider", choices=[p.value for p in Provider], default=Provider.SANDBOX
        )
        parser.add_argument(
            "--phone-number-id",
            help="Meta's phone number id (digits); required except for the sandbox, where it "
            "defaults to one derived from the slug",
        )
        parser.add_argument(
            "--waba-id",
            help="Meta's WABA id (digits); required except for the sandbox, where it defaults "
            "to one derived from the slug",
        )
        parser.add_argument("--display-phone-number", default="")
        parser.add_argument("--mps", type=int, default=80, help="messages per second (80)")
        parser.add_argument(
            "--access-token-env",
            default="",
            help="name of the environment variable holding the token / 360dialog key, one "
            "reserved for this tenant: WAYPOST_<SLUG>__<NAME> (e.g. WAYPOST_ACME__ACCESS_TOKEN)",
        )

    def handle(self, *args, **opts):
        slug = opts["slug"]
        provider = opts["provider"]
        example = f"{credential_env_prefix(Tenant(slug=slug))}ACCESS_TOKEN"
        real = provider_class(provider).credential_required
        if real and not opts["access_token_env"]:
            raise CommandError(
                f"--access-token-env is required for provider {provider} (e.g. {example})"
            )
        ids = ("phone_number_id", "waba_id")
        missing = [f"--{name.replace('_', '-')}" for name in ids if not opts[name]]
        if real and missing:
            verb = "is" if len(missing) == 1 else "are"
            raise CommandError(
                f"{' and '.join(missing)} {verb} required for provider {provider} (Meta's ids)"
            )
        try:
            bundle = tenant_create(
                slug=slug,
                name=opts["name"],
                provider=provider,
                phone_number_id=opts["phone_number_id"] or sandbox_id(slug, "phone"),
                waba_id=opts["waba_id"] or sandbox_id(slug, "waba"),
                display_phone_number=opts["display_phone_number"],
                messages_per_second=opts["mps"],
                credentials_env=opts["access_token_env"],
            )
        except WaypostError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except ValidationError as exc:
            raise CommandError(describe(exc)) from exc
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
