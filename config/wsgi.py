"""WSGI entry point. Webhook routes go to a lean handler (no admin/session middleware: see
``webhooks.wsgi``); everything else to Django's usual one."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django_application = get_wsgi_application()

from webhooks.wsgi import LeanWSGIHandler  # noqa: E402  (needs Django set up)

webhook_application = LeanWSGIHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith("/webhooks/"):
        return webhook_application(environ, start_response)
    return django_application(environ, start_response)
