"""Tenants, their senders, API keys and staff scopes: the squash of 0001-0013 (Waypost 0.1).
The webhook tokens 0003 gave the senders stored before it are not carried over: a new
database has no such senders.

Applied as a whole by a new database. A database that applied all of the migrations it
replaces (every Waypost 0.1 deployment has) records it as applied and runs nothing. The replaced
files are gone, so a database must have applied all of them: one that applied only some (a demo
database made from an older checkout) is migrated first from the commit before the squash
(``git log --diff-filter=D -- '*/migrations/*'`` names the squash), or, for the demo, deleted.
Fields are listed in the order the replaced migrations added them, so a new database's tables
have the columns of an upgraded one in the same order.
"""

import uuid

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import tenants.models


class Migration(migrations.Migration):
    replaces = [
        ("tenants", "0001_initial"),
        ("tenants", "0002_tenant_ambiguous_grace_seconds_and_more"),
        ("tenants", "0003_sendernumber_webhook_token"),
        ("tenants", "0004_tenant_opt_out_keywords"),
        ("tenants", "0005_sender_status_changed"),
        ("tenants", "0006_tenant_stall_thresholds"),
        ("tenants", "0007_staff_scope"),
        ("tenants", "0008_marketing_settings"),
        ("tenants", "0009_ledger_retention"),
        ("tenants", "0010_api_rate"),
        ("tenants", "0011_sender_meta_ids_and_reserved_credentials"),
        ("tenants", "0012_api_rate_counts_batch_messages"),
    ]

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Tenant",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "slug",
                    models.SlugField(
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$",
                                "3-50 lowercase letters, digits or hyphens; not starting or ending with a hyphen.",
                            )
                        ],
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("active", models.BooleanField(default=True)),
                (
                    "param_policy",
                    models.CharField(
                        choices=[
                            ("reject", "Reject the request (400 naming the parameter)"),
                            (
                                "sanitize",
                                "Sanitize (newlines/tabs to spaces, collapse runs) and record it",
                            ),
                        ],
                        default="reject",
                        help_text="What a formatting violation in a text parameter gets: a newline, a tab, more than 4 spaces in a row.",
                        max_length=16,
                        verbose_name="parameter formatting policy",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "ambiguous_grace_seconds",
                    models.PositiveIntegerField(
                        default=900,
                        help_text="How long an unknown submit waits for a status webhook before the policy.",
                    ),
                ),
                (
                    "ambiguous_policy",
                    models.CharField(
                        choices=[
                            ("hold", "Hold for an operator (flagged as stalled)"),
                            ("resend", "Resend (may duplicate: Meta has no idempotency key)"),
                        ],
                        default="hold",
                        help_text="What happens to a message whose submit outcome is still unknown after ambiguous_grace_seconds.",
                        max_length=8,
                    ),
                ),
                (
                    "max_attempts",
                    models.PositiveSmallIntegerField(
                        default=5,
                        help_text="Submit attempts per message before it is dead-lettered.",
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(50),
                        ],
                    ),
                ),
                (
                    "retry_window_seconds",
                    models.PositiveIntegerField(
                        default=3600,
                        help_text="Give up retrying this long after the message was created.",
                    ),
                ),
                (
                    "opt_out_keywords",
                    models.CharField(
                        default="STOP",
                        help_text="Comma-separated; an inbound message that is one of these opts the user out.",
                        max_length=200,
                    ),
                ),
                (
                    "stall_accepted_seconds",
                    models.PositiveIntegerField(
                        default=900,
                        help_text="An accepted message with no status webhook after this long is flagged stalled.",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "stall_sent_seconds",
                    models.PositiveIntegerField(
                        default=900,
                        help_text="A sent message not delivered after this long is flagged stalled.",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "marketing_limit_retry",
                    models.BooleanField(
                        default=False,
                        help_text="Retry a marketing message refused for the per-user marketing limit (131049) once, after 24 hours. Off: it fails with that reason.",
                    ),
                ),
                (
                    "ledger_retention_days",
                    models.PositiveIntegerField(
                        default=90,
                        help_text="Days a message's event ledger is kept after its last state change; then `manage.py retention` prunes (or archives) it and keeps the message's summary and final state. 0 keeps ledgers forever.",
                    ),
                ),
                (
                    "api_requests_per_second",
                    models.PositiveIntegerField(
                        default=300,
                        help_text="The tenant's API calls allowed per second, a batch counting one per message, in bursts of up to one second's worth; over it the API answers 429 with Retry-After. 0 = no limit.",
                        verbose_name="API requests per second",
                    ),
                ),
            ],
            options={
                "ordering": ["slug"],
            },
        ),
        migrations.CreateModel(
            name="StaffScope",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="staff_scope",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tenants",
                    models.ManyToManyField(
                        blank=True, related_name="staff_scopes", to="tenants.tenant"
                    ),
                ),
            ],
            options={
                "verbose_name": "staff scope",
                "permissions": [("all_tenants", "Can see and act on every tenant in the admin")],
            },
        ),
        migrations.CreateModel(
            name="SenderNumber",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "provider",
                    models.CharField(
                        choices=[
                            ("meta", "Meta Cloud API"),
                            ("360dialog", "360dialog"),
                            ("sandbox", "Waypost sandbox"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "phone_number_id",
                    models.CharField(
                        help_text="Meta's id for the number (digits).",
                        max_length=64,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[1-9][0-9]{0,31}\\Z",
                                "Digits only, 1 to 32 of them, no leading zero (a Meta id).",
                            )
                        ],
                        verbose_name="phone number id",
                    ),
                ),
                (
                    "waba_id",
                    models.CharField(
                        db_index=True,
                        help_text="Meta's id for the WhatsApp Business Account (digits). A WABA belongs to one tenant: its senders may share it, another tenant's may not.",
                        max_length=64,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[1-9][0-9]{0,31}\\Z",
                                "Digits only, 1 to 32 of them, no leading zero (a Meta id).",
                            )
                        ],
                        verbose_name="WABA id",
                    ),
                ),
                ("display_phone_number", models.CharField(blank=True, max_length=32)),
                (
                    "credentials_env",
                    models.CharField(
                        blank=True,
                        help_text="Name of the environment variable holding the access token (Meta) or API key (360dialog), reserved for this tenant: WAYPOST_, the tenant's slug upper-cased (- as _), two underscores, a name (tenant acme-eu: WAYPOST_ACME_EU__ACCESS_TOKEN). The secret itself is never stored in the database.",
                        max_length=128,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Z_][A-Z0-9_]*$",
                                "An environment variable name: upper-case letters, digits, _.",
                            )
                        ],
                        verbose_name="credential variable",
                    ),
                ),
                (
                    "messages_per_second",
                    models.PositiveIntegerField(
                        default=80,
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(1000),
                        ],
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("blocked", "Blocked (provider alert; sending stopped)"),
                            ("disabled", "Disabled by an operator"),
                        ],
                        default="active",
                        max_length=16,
                    ),
                ),
                ("status_reason", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="senders",
                        to="tenants.tenant",
                    ),
                ),
                (
                    "webhook_token",
                    models.CharField(
                        default=tenants.models._webhook_token,
                        editable=False,
                        help_text="Secret in this sender's own webhook URL (/webhooks/360dialog/<token>).",
                        max_length=64,
                        unique=True,
                    ),
                ),
                ("status_changed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "status_changed_by",
                    models.CharField(
                        blank=True,
                        help_text="pipeline, or the operator who changed it.",
                        max_length=150,
                    ),
                ),
                (
                    "marketing_messages_lite",
                    models.BooleanField(
                        default=False,
                        help_text="Send MARKETING templates through Meta's marketing_messages endpoint (the WABA must be onboarded to MM Lite); other categories keep the Cloud API endpoint.",
                        verbose_name="Marketing Messages Lite",
                    ),
                ),
            ],
            options={
                "ordering": ["tenant", "phone_number_id"],
            },
        ),
        migrations.CreateModel(
            name="ApiKey",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(default="default", max_length=100)),
                ("prefix", models.CharField(max_length=16, unique=True)),
                ("key_hash", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_keys",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "verbose_name": "API key",
                "ordering": ["-created_at"],
            },
        ),
    ]
