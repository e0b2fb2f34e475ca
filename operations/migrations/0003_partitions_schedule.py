"""The partitions' beat row (as the reconciler's, 0001): once a day the next months of the
partitioned tables are made ahead (``operations.housekeeping``)."""

from django.db import migrations

NAME = "waypost: partitions"


def create(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval.objects.get_or_create(every=1, period="days")
    periodic.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "operations.partitions",
            "interval": every,
            "description": "The ledger's and the webhook deliveries' monthly partitions, made "
            "two months ahead (operations.housekeeping.partitions_ensure).",
            "enabled": True,
        },
    )


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("operations", "0002_sender_health_schedule")]
    operations = [migrations.RunPython(create, delete)]
