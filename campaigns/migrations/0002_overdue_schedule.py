"""The feeder's safety net as a django-celery-beat row (as operations' jobs are): campaigns
whose next pass is late are rung again (``campaigns.feeder.overdue``)."""

from django.db import migrations

NAME = "waypost: campaigns overdue"


def create(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval.objects.get_or_create(every=30, period="seconds")
    periodic.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "campaigns.overdue",
            "interval": every,
            "description": "Safety net under each campaign's own next pass: ring campaigns "
            "whose pass is late (campaigns/feeder.py).",
            "enabled": True,
        },
    )


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_campaign"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, delete)]
