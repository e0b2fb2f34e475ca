"""The Celery application.

Settings come from Django settings under the ``CELERY_`` namespace; tasks are discovered in
every installed app's ``tasks`` module; periodic jobs live in django-celery-beat's database
scheduler (set in settings), so operators can see and change them in the admin.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("waypost")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
