"""WSGI entry point: one Django application for every route, the same one the tests run.

The webhook routes go through the same middleware as the admin and the API (security headers,
the host check, the database-outage ``503``); what they do not need is skipped inside it
(``webhooks.middleware``). The settings module is chosen by ``config/__init__.py``, like every
other entry point's. The deployment is checked before the first request (``core.startup``): on
an error gunicorn's worker fails to boot, and gunicorn stops with the check's message.
"""

from django.core.wsgi import get_wsgi_application

from core.startup import process_started

application = get_wsgi_application()
process_started("web")
