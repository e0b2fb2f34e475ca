"""On PostgreSQL, stored webhook deliveries are partitioned by the month of ``received_at``
(``core.partitions`` has the rules; retention then drops whole months).

The table as it was becomes the default partition, with every row in it; its indexes and the
foreign key move to the new parent under their names. ``delivery_body_once``
(``provider, body_sha256``) cannot be table-wide on a partitioned table (it lacks
``received_at``): it stays on the default partition and every month's partition gets its own.
This month's and the next two months' partitions are made. SQLite is left as it is; going back
is not offered on PostgreSQL.
"""

from django.db import migrations

from core import partitions

DELIVERIES = partitions.Scheme(  # as it is at this migration (webhooks.services.DELIVERIES)
    table="webhooks_webhookdelivery",
    column="received_at",
    key="time",
    leaf_unique=("provider", "body_sha256"),
)


def partition(apps, schema_editor):
    partitions.convert(schema_editor, DELIVERIES)
    partitions.ensure(DELIVERIES)


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_squashed_0004_rejected_webhooks_redacted")]

    operations = [migrations.RunPython(partition, migrations.RunPython.noop)]
