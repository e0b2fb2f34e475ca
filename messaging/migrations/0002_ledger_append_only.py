"""The event ledger is append-only: the database itself refuses UPDATE and DELETE.

PostgreSQL: a row trigger raising an exception. SQLite (the embedded demo): the equivalent
RAISE(ABORT) triggers. TRUNCATE (test flushes, an explicit retention purge) is not a row
operation and is unaffected.
"""

from django.db import migrations

TABLE = "messaging_messageevent"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION waypost_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'message events are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER messageevent_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION waypost_ledger_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS messageevent_append_only ON {TABLE};
DROP FUNCTION IF EXISTS waypost_ledger_append_only();
"""
SQLITE_UP = [
    f"CREATE TRIGGER messageevent_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'message events are append-only (UPDATE refused)'); END;",
    f"CREATE TRIGGER messageevent_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'message events are append-only (DELETE refused)'); END;",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS messageevent_no_update;",
    "DROP TRIGGER IF EXISTS messageevent_no_delete;",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
