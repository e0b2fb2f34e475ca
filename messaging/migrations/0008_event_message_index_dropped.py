"""The ledger's separate index on ``message_id`` goes: ``event_dedupe`` (``message_id``,
``dedupe_key``) leads with the same column and serves every lookup by message and the cascade.

Only the index is dropped — ``DROP INDEX CONCURRENTLY`` on PostgreSQL, outside a transaction,
so neither table is locked against writes while it goes. Django's own ``AlterField`` would drop
and re-add the foreign key, checking every row of the largest table under an exclusive lock,
and on SQLite would rebuild the table and lose the ledger's append-only triggers; it is
applied to the migration state only."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "messaging_messageevent_message_id_2f3585a9"  # the name Django gave it
TABLE = "messaging_messageevent"


def drop_index(apps, schema_editor):
    connection = schema_editor.connection
    concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, TABLE)
    for name, info in found.items():  # the plain index on message_id alone, whatever its name
        plain = info["index"] and not (info["unique"] or info["primary_key"])
        if plain and info["columns"] == ["message_id"]:
            schema_editor.execute(
                f"DROP INDEX {concurrently}IF EXISTS {connection.ops.quote_name(name)}"
            )


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON messaging_messageevent (message_id)"
    )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("messaging", "0007_submit_batch"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="messageevent",
                    name="message",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="messaging.message",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
