"""The template registry: the squash of 0001-0006 (Waypost 0.1).

Applied as a whole by a new database. A database that applied all of the migrations it
replaces (every Waypost 0.1 deployment has) records it as applied and runs nothing. The replaced
files are gone, so a database must have applied all of them: one that applied only some (a demo
database made from an older checkout) is migrated first from the commit before the squash
(``git log --diff-filter=D -- '*/migrations/*'`` names the squash), or, for the demo, deleted.
Fields are listed in the order the replaced migrations added them, so a new database's tables
have the columns of an upgraded one in the same order.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [
        ("templates_registry", "0001_initial"),
        ("templates_registry", "0002_messagetemplate_sender"),
        ("templates_registry", "0003_messagetemplate_submission_error"),
        ("templates_registry", "0004_template_status_reason"),
        ("templates_registry", "0005_template_named_index"),
        ("templates_registry", "0006_provider_lifecycle"),
    ]

    initial = True

    dependencies = [
        ("tenants", "0001_squashed_0013_tenant_policies_help_text"),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageTemplate",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=512)),
                ("language", models.CharField(max_length=16)),
                (
                    "category",
                    models.CharField(
                        choices=[
                            ("MARKETING", "Marketing"),
                            ("UTILITY", "Utility"),
                            ("AUTHENTICATION", "Authentication"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "parameter_format",
                    models.CharField(
                        choices=[
                            ("POSITIONAL", "Positional ({{1}}, {{2}}, …)"),
                            ("NAMED", "Named ({{first_name}}, …)"),
                        ],
                        default="POSITIONAL",
                        max_length=16,
                    ),
                ),
                (
                    "components",
                    models.JSONField(default=list, help_text="Meta's component JSON, verbatim."),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("APPROVED", "Approved"),
                            ("PENDING", "Pending"),
                            ("REJECTED", "Rejected"),
                            ("PAUSED", "Paused"),
                            ("DISABLED", "Disabled"),
                            ("IN_APPEAL", "In Appeal"),
                            ("FLAGGED", "Flagged"),
                            ("LOCKED", "Locked"),
                            ("LIMIT_EXCEEDED", "Limit Exceeded"),
                            ("ARCHIVED", "Archived"),
                            ("PENDING_DELETION", "Pending Deletion"),
                            ("DELETED", "Deleted"),
                        ],
                        default="PENDING",
                        max_length=20,
                    ),
                ),
                ("provider_template_id", models.CharField(blank=True, max_length=64)),
                ("rejection_reason", models.TextField(blank=True)),
                (
                    "quality",
                    models.CharField(
                        choices=[
                            ("GREEN", "Green"),
                            ("YELLOW", "Yellow"),
                            ("RED", "Red"),
                            ("UNKNOWN", "Unknown"),
                        ],
                        default="UNKNOWN",
                        max_length=8,
                    ),
                ),
                ("last_synced_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="templates",
                        to="tenants.tenant",
                    ),
                ),
                (
                    "sender",
                    models.ForeignKey(
                        blank=True,
                        help_text="The number whose WABA the template was submitted to.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="templates",
                        to="tenants.sendernumber",
                    ),
                ),
                (
                    "submission_error",
                    models.CharField(
                        blank=True,
                        help_text="Why the last submission to the provider did not go through, if it did not.",
                        max_length=500,
                    ),
                ),
                ("status_changed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "status_changed_by",
                    models.CharField(
                        blank=True,
                        help_text="pipeline, provider, sync or the operator's name.",
                        max_length=150,
                    ),
                ),
                (
                    "status_reason",
                    models.CharField(
                        blank=True,
                        help_text="Why the status last changed, when Waypost changed it.",
                        max_length=255,
                    ),
                ),
                ("pending_category", models.CharField(blank=True, max_length=16)),
                ("pending_category_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["name", "language"],
                "indexes": [
                    models.Index(fields=["tenant", "status"], name="template_tenant_status")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "name", "language"), name="template_unique_per_tenant"
                    )
                ],
            },
        ),
    ]
