"""``manage.py demo``: the embedded demo — no services to install.

Migrates the SQLite database under ``var/``, makes sure a demo tenant (with a sandbox sender),
an approved demo template and an admin login exist, prints a fresh API key and a request to
try, and serves the admin and API on 127.0.0.1.
"""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from templates_registry.models import MessageTemplate, TemplateStatus
from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create

DEMO_SLUG = "demo"
DEMO_TEMPLATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped and arrives {{3}}."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}"},
                {"type": "QUICK_REPLY", "text": "Stop"},
            ],
        },
    ],
}


class Command(BaseCommand):
    help = "Set up the embedded demo (SQLite, sandbox sender) and serve the admin and API."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit")

    def handle(self, *args, port, no_serve, **options):
        call_command("migrate", interactive=False, verbosity=0)
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenant_create(
                slug=DEMO_SLUG,
                name="Demo Shop",
                phone_number_id="106540352242922",
                waba_id="102290129340398",
                display_phone_number="+15550783881",
            ).tenant
        template, _ = MessageTemplate.objects.get_or_create(
            tenant=tenant,
            name=DEMO_TEMPLATE["name"],
            language=DEMO_TEMPLATE["language"],
            defaults={
                "category": DEMO_TEMPLATE["category"],
                "components": DEMO_TEMPLATE["components"],
                # The demo seeds an approved template; real ones are approved by the provider.
                "status": TemplateStatus.APPROVED,
            },
        )
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        raw_key = api_key_create(tenant=tenant, name="demo").raw

        base = f"http://127.0.0.1:{port}"
        self.stdout.write(self.style.SUCCESS("\nWaypost demo is ready."))
        self.stdout.write(f"""
  Admin        {base}/admin/   (login admin / admin — demo only)
  API docs     {base}/api/docs/
  Tenant       {tenant.slug}, template {template.name} ({template.language}, {template.status})
  API key      {raw_key}

  Try:
    curl -s -H 'Authorization: Bearer {raw_key}' {base}/api/v1/templates
""")
        if not no_serve:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
