"""The health poll's beat row (as the reconciler's, 0001): once a minute the job asks the
providers about the senders not asked for ``WAYPOST_HEALTH_POLL_SECONDS`` (15 minutes), so
each sender is asked about every 15 minutes whatever the beat's own interval."""

from django.db import migrations

NAME = "waypost: sender health"


def create(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval.objects.get_or_create(every=60, period="seconds")
    periodic.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "operations.poll_sender_health",
            "interval": every,
            "description": "Each active sender's messaging limit and quality rating, asked of "
            "its provider at most every WAYPOST_HEALTH_POLL_SECONDS (tenants.services."
            "senders_health_poll).",
            "enabled": True,
        },
    )


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("operations", "0001_reconcile_schedule")]
    operations = [migrations.RunPython(create, delete)]
