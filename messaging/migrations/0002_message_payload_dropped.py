"""Waypost 0.1 databases still have ``messaging_message.payload``, a column nothing read: the
provider request is kept once, in the message's ``payload_built`` event. Drop it where it
exists; a database created by ``0001_squashed_0013_ledger_retention`` never had it, and nothing
is done there. Not undone: the models no longer know the column."""

from django.db import migrations, models


def drop_payload(apps, schema_editor):
    message = apps.get_model("messaging", "Message")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, message._meta.db_table)
    if "payload" not in {column.name for column in columns}:
        return
    # The historical model no longer has the field; give it back for this step, so that a
    # SQLite older than 3.35.5, which rebuilds the table instead of dropping a column, finds it.
    payload = models.JSONField(null=True, blank=True)
    payload.contribute_to_class(message, "payload")
    schema_editor.remove_field(message, payload)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_squashed_0013_ledger_retention")]

    operations = [migrations.RunPython(drop_payload, migrations.RunPython.noop)]
