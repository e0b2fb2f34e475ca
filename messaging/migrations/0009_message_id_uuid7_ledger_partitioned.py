"""Message ids become UUIDv7 (time-ordered) and, on PostgreSQL, the ledger is partitioned by
its message's month (``core.partitions`` has the rules).

* The id's default is Python's: the state changes, the database does not.
* ``messaging_messageevent`` becomes a table partitioned by RANGE on ``message_id``. The table
  as it was becomes its default partition, with every row in it (nothing is copied); its
  indexes, the ``event_dedupe`` unique constraint, the foreign key and the append-only trigger
  move to the new parent under their names, and event ids go on counting from where they were.
  Then this month's and the next two months' partitions are made. SQLite (the embedded demo)
  is left as it is.
* Going back is not offered on PostgreSQL: a partitioned ledger stays partitioned (the models do
  not change, so the earlier migrations' code runs on it as it is).
"""

from django.db import migrations, models

import core.ids
from core import partitions

LEDGER = partitions.Scheme(  # as it is at this migration (messaging.track.retention.LEDGER)
    table="messaging_messageevent",
    column="message_id",
    key="uuid7",
    unlock="SET LOCAL waypost.ledger_retention = 'on'",
    relock="SET LOCAL waypost.ledger_retention = 'off'",
)


def partition(apps, schema_editor):
    partitions.convert(schema_editor, LEDGER)
    partitions.ensure(LEDGER)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0008_event_message_index_dropped"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="id",
                    field=models.UUIDField(
                        default=core.ids.uuid7, editable=False, primary_key=True, serialize=False
                    ),
                ),
            ],
        ),
        migrations.RunPython(partition, migrations.RunPython.noop),
    ]
