"""WSGI entry point. Webhook routes go to a lean handler (no admin/session middleware: see
``webhooks.wsgi``); everything else to Django's usual one.

The settings module is chosen by ``config/__init__.py``, like every other entry point's. The
deployment is checked before the first request (``core.startup``): on an error gunicorn's worker
fails to boot, and gunicorn stops with the check's message.
"""

from django.core.wsgi import get_wsgi_application

from core.startup import process_started

django_application = get_wsgi_application()
process_started("web")

from webhooks.wsgi import LeanWSGIHandler  # noqa: E402  (needs Django set up)

webhook_application = LeanWSGIHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith("/webhooks/"):
        return webhook_application(environ, start_response)
    return django_application(environ, start_response)
