"""The migrations: each app starts from one initial migration (Waypost 0.1's history squashed
before the first release), a Waypost 0.1 database is recognised as migrated by it, and the
models have no change that a migration does not carry."""

import importlib
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

ROOT = Path(__file__).resolve().parent.parent
APPS = ("tenants", "templates_registry", "callbacks", "messaging", "webhooks", "operations")

# What every Waypost 0.1 database recorded in django_migrations for our apps: the squashed
# history. Written out here, not read from the squashes' ``replaces``, so that a rename or an
# edit of a squash that would strand such a database fails this test.
WAYPOST_0_1 = {
    "tenants": [
        "0001_initial",
        "0002_tenant_ambiguous_grace_seconds_and_more",
        "0003_sendernumber_webhook_token",
        "0004_tenant_opt_out_keywords",
        "0005_sender_status_changed",
        "0006_tenant_stall_thresholds",
        "0007_staff_scope",
        "0008_marketing_settings",
        "0009_ledger_retention",
        "0010_api_rate",
        "0011_sender_meta_ids_and_reserved_credentials",
        "0012_api_rate_counts_batch_messages",
    ],
    "templates_registry": [
        "0001_initial",
        "0002_messagetemplate_sender",
        "0003_messagetemplate_submission_error",
        "0004_template_status_reason",
        "0005_template_named_index",
        "0006_provider_lifecycle",
    ],
    "callbacks": ["0001_initial"],
    "messaging": [
        "0001_initial",
        "0002_ledger_append_only",
        "0003_contact_inboundmessage_orphanstatus_and_more",
        "0004_message_kind_message_text_body_and_more",
        "0005_dispatch_from_the_database",
        "0006_stalls",
        "0007_message_callbacks_sequence",
        "0008_view_recipient_permission",
        "0009_stall_reason_labels",
        "0010_message_named_indexes_and_kind_check",
        "0011_identities_pricing_expiry",
        "0012_storage",
        "0013_ledger_retention",
    ],
    "webhooks": [
        "0001_initial",
        "0002_delivery_named_index",
        "0003_provider_lifecycle",
        "0004_rejected_webhooks_redacted",
    ],
    "operations": ["0001_reconcile_schedule"],
}


def migration_files(app: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / app / "migrations").glob("[0-9]*.py"))


@pytest.mark.parametrize("app", APPS)
def test_each_app_starts_from_one_initial_migration(app):
    files = migration_files(app)
    first = [name for name in files if name.startswith("0001_")]
    assert len(first) == 1, files
    later = files[1:]  # added after the squash, each numbered after the one before
    assert [int(name[:4]) for name in later] == list(range(2, len(later) + 2)), files
    # The files the squash replaced stay out of the tree (a database has them all applied).
    assert not set(files) & (set(WAYPOST_0_1[app]) - set(first)), files


def test_a_waypost_0_1_database_needs_only_what_came_after_the_squash(db):
    recorder = MigrationRecorder(connection)
    recorder.migration_qs.filter(app__in=APPS).delete()
    for app, names in WAYPOST_0_1.items():
        for name in names:
            recorder.record_applied(app, name)
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    planned = [(m.app_label, m.name) for m, backwards in plan if not backwards]
    # Only migrations written after the squash (numbered 0002 on, or a new app's), never one
    # the squash replaced, and the one that drops 0.1's payload column among them.
    assert ("messaging", "0002_message_payload_dropped") in planned
    for app, name in planned:
        assert name not in WAYPOST_0_1.get(app, []), (app, name)
        assert app not in WAYPOST_0_1 or not name.startswith("0001_"), (app, name)


def table_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def test_the_payload_column_of_a_waypost_0_1_database_is_dropped_and_a_new_one_is_left_alone(db):
    migration = importlib.import_module("messaging.migrations.0002_message_payload_dropped")
    state = MigrationLoader(connection).project_state(("messaging", "0002_message_payload_dropped"))
    assert "payload" not in table_columns("messaging_message")  # a new database never had it
    with connection.schema_editor() as editor:
        migration.drop_payload(state.apps, editor)  # nothing to drop: nothing done
        editor.execute("ALTER TABLE messaging_message ADD COLUMN payload jsonb NULL")  # 0.1's
    assert "payload" in table_columns("messaging_message")
    with connection.schema_editor() as editor:
        migration.drop_payload(state.apps, editor)
    assert "payload" not in table_columns("messaging_message")


def test_the_models_have_no_change_without_a_migration(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_ledger_keeps_its_foreign_key_and_one_index_on_the_message(db):
    """messaging 0008 drops only the plain index on ``message_id`` (``event_dedupe`` leads
    with it): the foreign key and the append-only triggers stay."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "messaging_messageevent")
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'messaging_messageevent'::regclass "
            "AND NOT tgisinternal"
        )
        triggers = {name for (name,) in cursor.fetchall()}
    leading = [n for n, c in found.items() if c["columns"][:1] == ["message_id"]]
    assert sorted(n for n in leading if found[n]["index"] or found[n]["unique"]) == ["event_dedupe"]
    assert any(c["foreign_key"] == ("messaging_message", "id") for c in found.values())
    assert triggers, "the ledger's append-only triggers"
