"""Stored and rejected webhook calls: the squash of 0001-0004 (Waypost 0.1). The redaction of
rows stored before 0004 is not carried over: a new database has no such rows.

Applied as a whole by a new database. A database that applied all of the migrations it
replaces (every Waypost 0.1 deployment has) records it as applied and runs nothing. The replaced
files are gone, so a database must have applied all of them: one that applied only some (a demo
database made from an older checkout) is migrated first from the commit before the squash
(``git log --diff-filter=D -- '*/migrations/*'`` names the squash), or, for the demo, deleted.
Fields are listed in the order the replaced migrations added them, so a new database's tables
have the columns of an upgraded one in the same order.
"""

import django.db.models.deletion
from django.db import migrations, models

import whatsapp.registry


class Migration(migrations.Migration):
    replaces = [
        ("webhooks", "0001_initial"),
        ("webhooks", "0002_delivery_named_index"),
        ("webhooks", "0003_provider_lifecycle"),
        ("webhooks", "0004_rejected_webhooks_redacted"),
    ]

    initial = True

    dependencies = [
        ("tenants", "0001_squashed_0013_tenant_policies_help_text"),
    ]

    operations = [
        migrations.CreateModel(
            name="RejectedWebhook",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("received_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "path",
                    models.CharField(
                        help_text="The route called; a route's token cut to its first 4 characters.",
                        max_length=200,
                    ),
                ),
                ("reason", models.CharField(max_length=40)),
                ("remote_addr", models.CharField(blank=True, max_length=64)),
                (
                    "headers",
                    models.JSONField(
                        default=dict, help_text="The headers kept, phone numbers masked."
                    ),
                ),
                ("body_size", models.PositiveIntegerField(default=0)),
                (
                    "body_prefix",
                    models.TextField(
                        blank=True,
                        help_text="The body's first 512 characters, phone numbers masked.",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "provider",
                    models.CharField(default=whatsapp.registry.Provider["META"], max_length=16),
                ),
                ("received_at", models.DateTimeField(db_index=True)),
                ("body", models.BinaryField()),
                ("body_sha256", models.CharField(max_length=64)),
                ("headers", models.JSONField(default=dict)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("processed", "Processed"),
                            (
                                "partial",
                                "Processed, but some items were not understood (replayable)",
                            ),
                            ("invalid", "Invalid (signed, but not JSON or not Meta's envelope)"),
                            ("failed", "Failed (a processing error; replayable)"),
                        ],
                        default="pending",
                        max_length=12,
                    ),
                ),
                (
                    "events",
                    models.PositiveIntegerField(default=0, help_text="Events parsed from it."),
                ),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                (
                    "sender",
                    models.ForeignKey(
                        blank=True,
                        help_text="For per-sender routes (360dialog).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="tenants.sendernumber",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "webhook deliveries",
                "indexes": [models.Index(fields=["status", "id"], name="delivery_status_claim")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("provider", "body_sha256"), name="delivery_body_once"
                    )
                ],
            },
        ),
    ]
