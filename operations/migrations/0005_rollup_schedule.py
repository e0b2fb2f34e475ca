"""The state rollup's beat row: every 30 seconds the operations page's counts are brought up to
date (``operations.rollup``)."""

from django.db import migrations

NAME = "waypost: rollup"


def create(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval.objects.get_or_create(every=30, period="seconds")
    periodic.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "operations.rollup",
            "interval": every,
            "description": "The operations page's messages by state, rolled up per tenant and "
            "five minutes (operations.rollup.rollup_refresh).",
            "enabled": True,
        },
    )


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("operations", "0004_state_rollup")]
    operations = [migrations.RunPython(create, delete)]
