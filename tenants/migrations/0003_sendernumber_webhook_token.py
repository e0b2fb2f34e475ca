import secrets

from django.db import migrations, models

import tenants.models


def fill_tokens(apps, schema_editor):
    SenderNumber = apps.get_model("tenants", "SenderNumber")
    for sender in SenderNumber.objects.filter(webhook_token__isnull=True):
        sender.webhook_token = secrets.token_urlsafe(32)
        sender.save(update_fields=["webhook_token"])


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_tenant_ambiguous_grace_seconds_and_more")]

    operations = [
        migrations.AddField(
            model_name="sendernumber",
            name="webhook_token",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="sendernumber",
            name="webhook_token",
            field=models.CharField(
                default=tenants.models._webhook_token,
                editable=False,
                help_text="Secret in this sender's own webhook URL (/webhooks/360dialog/<token>).",
                max_length=64,
                unique=True,
            ),
        ),
    ]
