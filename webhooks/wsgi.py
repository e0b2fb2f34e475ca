"""A lean WSGI handler for the webhook routes: Django without the middleware they do not use.

The admin's and API's middleware (sessions, authentication, messages, CSRF, clickjacking,
static files, host checks) costs 25-40 % of an empty request on a 2-core machine (measured
with wrk against an empty view); a webhook is authenticated by its signature and needs none of it.
``config.wsgi`` sends ``/webhooks/`` here and everything else to Django's normal handler.
Request signals still fire, so database connections are managed as usual.
"""

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler


class LeanWSGIHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)
