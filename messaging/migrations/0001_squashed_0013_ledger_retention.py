"""Messages, their event ledger, contacts, inbound messages, parked statuses and suppressions:
the squash of 0001-0013 (Waypost 0.1).

Applied as a whole by a new database. A database that applied all of the migrations it
replaces (every Waypost 0.1 deployment has) records it as applied and runs nothing. The replaced
files are gone, so a database must have applied all of them: one that applied only some (a demo
database made from an older checkout) is migrated first from the commit before the squash
(``git log --diff-filter=D -- '*/migrations/*'`` names the squash), or, for the demo, deleted.
Fields are listed in the order the replaced migrations added them, so a new database's tables
have the columns of an upgraded one in the same order.

Besides the models, two things Django does not derive from them:

* The event ledger is append-only: the database itself refuses UPDATE and DELETE on
  ``messaging_messageevent``. PostgreSQL: a row trigger raising an exception, which lets a DELETE
  through inside a transaction that declared itself a retention purge (``SET LOCAL
  waypost.ledger_retention = 'on'``, messaging/track/retention.py). SQLite (the embedded demo):
  RAISE(ABORT) triggers. TRUNCATE (test flushes) is not a row operation and is unaffected.
* ``messaging_message``'s storage (PostgreSQL): a message row is rewritten (a new tuple version)
  on every state change: accepted, sent, delivered, read. Room in each page lets PostgreSQL
  update in place when no indexed column changes (HOT), and an early autovacuum returns dead
  versions to the free space map before the table grows around them. Events are insert-only
  and keep the defaults.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

LEDGER = "messaging_messageevent"
POSTGRES_LEDGER_UP = f"""
CREATE OR REPLACE FUNCTION waypost_ledger_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('waypost.ledger_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'message events are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER messageevent_append_only
    BEFORE UPDATE OR DELETE ON {LEDGER}
    FOR EACH ROW EXECUTE FUNCTION waypost_ledger_append_only();
"""
POSTGRES_LEDGER_DOWN = f"""
DROP TRIGGER IF EXISTS messageevent_append_only ON {LEDGER};
DROP FUNCTION IF EXISTS waypost_ledger_append_only();
"""
SQLITE_LEDGER_UP = [
    f"CREATE TRIGGER messageevent_no_update BEFORE UPDATE ON {LEDGER} "
    "BEGIN SELECT RAISE(ABORT, 'message events are append-only (UPDATE refused)'); END;",
    f"CREATE TRIGGER messageevent_no_delete BEFORE DELETE ON {LEDGER} "
    "BEGIN SELECT RAISE(ABORT, 'message events are append-only (DELETE refused)'); END;",
]
SQLITE_LEDGER_DOWN = [
    "DROP TRIGGER IF EXISTS messageevent_no_update;",
    "DROP TRIGGER IF EXISTS messageevent_no_delete;",
]
POSTGRES_STORAGE = (
    "ALTER TABLE messaging_message SET (fillfactor = 85, "
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, "
    "autovacuum_analyze_scale_factor = 0.05)"
)


def ledger_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_LEDGER_UP)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_LEDGER_UP:
            schema_editor.execute(statement)


def ledger_writable(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_LEDGER_DOWN)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_LEDGER_DOWN:
            schema_editor.execute(statement)


def message_storage(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_STORAGE)


class Migration(migrations.Migration):
    replaces = [
        ("messaging", "0001_initial"),
        ("messaging", "0002_ledger_append_only"),
        ("messaging", "0003_contact_inboundmessage_orphanstatus_and_more"),
        ("messaging", "0004_message_kind_message_text_body_and_more"),
        ("messaging", "0005_dispatch_from_the_database"),
        ("messaging", "0006_stalls"),
        ("messaging", "0007_message_callbacks_sequence"),
        ("messaging", "0008_view_recipient_permission"),
        ("messaging", "0009_stall_reason_labels"),
        ("messaging", "0010_message_named_indexes_and_kind_check"),
        ("messaging", "0011_identities_pricing_expiry"),
        ("messaging", "0012_storage"),
        ("messaging", "0013_ledger_retention"),
    ]

    initial = True

    dependencies = [
        ("templates_registry", "0001_squashed_0006_provider_lifecycle"),
        ("tenants", "0001_squashed_0013_tenant_policies_help_text"),
    ]

    operations = [
        migrations.CreateModel(
            name="Contact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("wa_id", models.CharField(blank=True, max_length=20)),
                ("profile_name", models.CharField(blank=True, max_length=200)),
                ("last_inbound_at", models.DateTimeField(blank=True, null=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="contacts",
                        to="tenants.tenant",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, null=True)),
                (
                    "marketing_preference_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When the last stop/resume happened (orders them).",
                        null=True,
                    ),
                ),
                (
                    "marketing_stopped_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="The user stopped marketing messages (until resumed).",
                        null=True,
                    ),
                ),
                (
                    "parent_user_id",
                    models.CharField(blank=True, max_length=160, verbose_name="parent BSUID"),
                ),
                ("user_id", models.CharField(blank=True, max_length=160, verbose_name="BSUID")),
                ("username", models.CharField(blank=True, max_length=100)),
            ],
        ),
        migrations.CreateModel(
            name="InboundMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("wamid", models.CharField(max_length=128, unique=True)),
                ("type", models.CharField(max_length=20)),
                ("text", models.TextField(blank=True)),
                (
                    "payload",
                    models.CharField(blank=True, help_text="Button / reply id.", max_length=256),
                ),
                ("context_wamid", models.CharField(blank=True, max_length=128)),
                ("received_at", models.DateTimeField(help_text="Meta's timestamp.")),
                ("raw", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="messaging.contact",
                    ),
                ),
                (
                    "sender",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="tenants.sendernumber",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="inbound",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "ordering": ["-received_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Message",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "recipient",
                    models.CharField(
                        blank=True,
                        help_text="E.164; empty when addressed by BSUID only.",
                        max_length=20,
                    ),
                ),
                ("template_name", models.CharField(blank=True, max_length=512)),
                ("template_language", models.CharField(blank=True, max_length=16)),
                ("template_category", models.CharField(blank=True, max_length=16)),
                ("template_components", models.JSONField(default=list)),
                (
                    "parameters",
                    models.JSONField(default=list, help_text="Send-time components, as sanitised."),
                ),
                ("provider_message_id", models.CharField(blank=True, max_length=128, null=True)),
                ("idempotency_key", models.CharField(max_length=255)),
                ("request_hash", models.CharField(max_length=64)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("submitting", "Submitting"),
                            ("unknown", "Unknown"),
                            ("retry_scheduled", "Retry Scheduled"),
                            ("accepted", "Accepted"),
                            ("held", "Held"),
                            ("sent", "Sent"),
                            ("delivered", "Delivered"),
                            ("read", "Read"),
                            ("failed", "Failed"),
                            ("rejected", "Rejected"),
                            ("cancelled", "Cancelled"),
                            ("expired", "Expired"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("state_rank", models.BigIntegerField(default=0)),
                ("state_changed_at", models.DateTimeField()),
                (
                    "attempts",
                    models.PositiveSmallIntegerField(default=0, help_text="Submits so far."),
                ),
                (
                    "round",
                    models.PositiveSmallIntegerField(
                        default=0, help_text="Current pipeline round."
                    ),
                ),
                (
                    "next_attempt_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="Not before this time (a retry, a cool-down, a limit).",
                        null=True,
                    ),
                ),
                ("error_code", models.CharField(blank=True, max_length=32)),
                ("error_title", models.CharField(blank=True, max_length=255)),
                ("error_details", models.TextField(blank=True)),
                (
                    "error_class",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("retry_backoff", "Retry with backoff"),
                            ("cool_down", "Retry after a cool-down"),
                            ("never_retry", "Never retry"),
                            ("alert_tenant", "Alert the tenant (sending stopped)"),
                            ("ambiguous", "Outcome unknown"),
                            ("retries_exhausted", "Retries exhausted"),
                            ("invalid", "Refused before submission"),
                        ],
                        max_length=20,
                    ),
                ),
                ("stalled", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "sender",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="tenants.sendernumber",
                    ),
                ),
                (
                    "template",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="messages",
                        to="templates_registry.messagetemplate",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="tenants.tenant",
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("template", "Template"), ("text", "Free-form text")],
                        default="template",
                        max_length=8,
                    ),
                ),
                (
                    "text_body",
                    models.TextField(blank=True, help_text="Free-form text (inside the window)."),
                ),
                ("stalled_at", models.DateTimeField(blank=True, null=True)),
                (
                    "stalled_reason",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("accepted_no_status", "Accepted, no status webhook in time"),
                            ("held_too_long", "Held for quality assessment for over an hour"),
                            ("sent_not_delivered", "Sent, not delivered in time"),
                            (
                                "auth_ttl_passed",
                                "Authentication template not delivered within its TTL",
                            ),
                            ("unknown_outcome", "Submit outcome unknown past the grace period"),
                        ],
                        max_length=24,
                    ),
                ),
                (
                    "callbacks_sequence",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="How many callbacks this message caused (their `sequence`).",
                    ),
                ),
                ("billable", models.BooleanField(blank=True, null=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "priced_at",
                    models.DateTimeField(blank=True, help_text="When it was priced.", null=True),
                ),
                ("pricing_category", models.CharField(blank=True, max_length=32)),
                ("pricing_model", models.CharField(blank=True, max_length=16)),
                (
                    "pricing_type",
                    models.CharField(
                        blank=True,
                        help_text="regular (billable), free_customer_service, …",
                        max_length=32,
                    ),
                ),
                (
                    "recipient_country",
                    models.CharField(
                        blank=True,
                        help_text="ISO country of the recipient (pricing is by country).",
                        max_length=2,
                    ),
                ),
                (
                    "recipient_user_id",
                    models.CharField(
                        blank=True,
                        help_text="The business-scoped user id, when the message was addressed by it (or the provider named it).",
                        max_length=160,
                        verbose_name="recipient BSUID",
                    ),
                ),
                (
                    "ledger_pruned_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When its ledger was pruned for retention (the row keeps the summary).",
                        null=True,
                    ),
                ),
            ],
            options={
                "permissions": [("view_recipient", "Can see recipients' phone numbers in full")],
            },
        ),
        migrations.CreateModel(
            name="MessageEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("requested", "Requested"),
                            ("sanitized", "Sanitized"),
                            ("validated", "Validated"),
                            ("payload_built", "Payload Built"),
                            ("submit_started", "Submit Started"),
                            ("submit_responded", "Submit Responded"),
                            ("submit_unknown", "Submit Unknown"),
                            ("retry_scheduled", "Retry Scheduled"),
                            ("requeued", "Requeued"),
                            ("sender_blocked", "Sender Blocked"),
                            ("cancelled", "Cancelled"),
                            ("rejected", "Rejected"),
                            ("dead_lettered", "Dead Lettered"),
                            ("marked_failed", "Marked Failed"),
                            ("expired", "Expired"),
                            ("accepted", "Accepted"),
                            ("held", "Held"),
                            ("status_sent", "Status Sent"),
                            ("status_delivered", "Status Delivered"),
                            ("status_read", "Status Read"),
                            ("status_failed", "Status Failed"),
                            ("flagged_stalled", "Flagged Stalled"),
                            ("stall_cleared", "Stall Cleared"),
                            ("redriven", "Redriven"),
                        ],
                        max_length=24,
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("api", "Api"),
                            ("pipeline", "Pipeline"),
                            ("provider", "Provider"),
                            ("webhook", "Webhook"),
                            ("reconciler", "Reconciler"),
                            ("operator", "Operator"),
                        ],
                        max_length=12,
                    ),
                ),
                ("round", models.PositiveSmallIntegerField(default=0)),
                ("occurred_at", models.DateTimeField()),
                ("recorded_at", models.DateTimeField(auto_now_add=True)),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("dedupe_key", models.CharField(max_length=200)),
                (
                    "message",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="messaging.message",
                    ),
                ),
            ],
            options={
                "ordering": ["occurred_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="OrphanStatus",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("wamid", models.CharField(db_index=True, max_length=128)),
                ("report", models.JSONField()),
                ("dedupe_key", models.CharField(max_length=220, unique=True)),
                ("received_at", models.DateTimeField(auto_now_add=True)),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                (
                    "sender",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenants.sendernumber",
                    ),
                ),
                (
                    "expired_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="Given up: no message claimed it within the bound.",
                        null=True,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Suppression",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("recipient", models.CharField(blank=True, help_text="E.164", max_length=20)),
                ("reason", models.CharField(default="opt_out", max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="suppressions",
                        to="tenants.tenant",
                    ),
                ),
                ("user_id", models.CharField(blank=True, max_length=160, verbose_name="BSUID")),
            ],
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.UniqueConstraint(
                condition=models.Q(("wa_id", ""), _negated=True),
                fields=("tenant", "wa_id"),
                name="contact_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.UniqueConstraint(
                condition=models.Q(("user_id", ""), _negated=True),
                fields=("tenant", "user_id"),
                name="contact_user_id_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.CheckConstraint(
                condition=models.Q(("user_id", ""), ("wa_id", ""), _negated=True),
                name="contact_identified",
            ),
        ),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(
                fields=["tenant", "-received_at", "-id"], name="inbound_tenant_newest"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                fields=["tenant", "-created_at", "id"], name="message_tenant_newest"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["state", "next_attempt_at"], name="message_state_due"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["tenant", "recipient"], name="message_tenant_recipient"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("priced_at__isnull", False)),
                fields=["tenant", "priced_at"],
                name="message_tenant_priced",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("stalled", False)),
                fields=["state", "state_changed_at"],
                name="message_unstalled_by_state",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("state__in", ["queued", "retry_scheduled"])),
                fields=["tenant", "created_at"],
                name="message_waiting_by_age",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("state__in", ["queued", "retry_scheduled"])),
                fields=["tenant", "next_attempt_at"],
                name="message_waiting_by_attempt",
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("tenant", "idempotency_key"), name="message_idempotency_key_per_tenant"
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("provider_message_id",), name="message_wamid_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.CheckConstraint(
                condition=models.Q(("recipient", ""), ("recipient_user_id", ""), _negated=True),
                name="message_addressed",
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("kind", "text"),
                        ("template_name", ""),
                        models.Q(("text_body", ""), _negated=True),
                    ),
                    models.Q(
                        ("kind", "template"),
                        ("text_body", ""),
                        models.Q(("template_name", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="message_kind_content",
            ),
        ),
        migrations.AddConstraint(
            model_name="messageevent",
            constraint=models.UniqueConstraint(
                fields=("message", "dedupe_key"), name="event_dedupe"
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("recipient", ""), _negated=True),
                fields=("tenant", "recipient"),
                name="suppression_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("user_id", ""), _negated=True),
                fields=("tenant", "user_id"),
                name="suppression_user_id_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.CheckConstraint(
                condition=models.Q(("recipient", ""), ("user_id", ""), _negated=True),
                name="suppression_identified",
            ),
        ),
        # The table is dropped with the models on the way back: nothing to reset.
        migrations.RunPython(message_storage, migrations.RunPython.noop),
        migrations.RunPython(ledger_append_only, ledger_writable),
    ]
