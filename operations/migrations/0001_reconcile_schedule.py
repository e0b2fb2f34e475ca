"""The periodic jobs, as django-celery-beat rows: operators see and change them in the admin
(Periodic tasks), and beat's database scheduler reads them. Nothing in settings overrides
them."""

from django.db import migrations

JOBS = [
    # (name, task, every seconds, description)
    (
        "waypost: reconcile",
        "operations.reconcile",
        60,
        "Stalled statuses, unknown submits, lost dispatch, dead submits, orphan statuses, "
        "webhook lag (operations/reconciler.py).",
    ),
    (
        "waypost: process webhooks",
        "webhooks.process",
        5,
        "Safety net under the endpoint's nudge: process stored webhook deliveries.",
    ),
]


def create(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds, description in JOBS:
        every, _ = interval.objects.get_or_create(every=seconds, period="seconds")
        periodic.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": every, "description": description, "enabled": True},
        )


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, *_ in JOBS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create, delete)]
