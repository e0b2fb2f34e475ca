"""Retention (messaging/track/retention.py): a message remembers when its ledger was pruned, and the
ledger's append-only trigger lets a DELETE through inside a transaction that declared itself a
retention purge (``SET LOCAL waypost.ledger_retention = 'on'``). UPDATE stays refused."""

from django.db import migrations, models

POSTGRES_UP = """
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
"""
POSTGRES_DOWN = """
CREATE OR REPLACE FUNCTION waypost_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'message events are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0012_storage")]

    operations = [
        migrations.AddField(
            model_name="message",
            name="ledger_pruned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When its ledger was pruned for retention (the row keeps the summary).",
                null=True,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
