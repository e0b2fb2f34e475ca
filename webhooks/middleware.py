"""What the webhook routes skip of the one middleware stack.

Every request — the admin's, the API's and the webhooks' — goes through the same WSGI
application (``config.wsgi``) and the same ``settings.MIDDLEWARE``: the security headers and
https redirect, the ``ALLOWED_HOSTS`` check (``CommonMiddleware``), ``X-Frame-Options``, and
``core.db.DatabaseUnavailableMiddleware``'s ``503`` with ``Retry-After`` when the database is
briefly gone (Meta and 360dialog retry a 5xx, so a delivery that could not be stored comes
again). What a webhook does not need is skipped *inside* that stack, so tests and production
run the same code:

* sessions, authentication and messages — the classes below are Django's, doing nothing on
  :data:`WEBHOOK_PREFIX` (a webhook is authenticated by its signature or its route's token,
  never by a session or a user), and they are most of what the middleware stack does
  per request (a session lookup, a user, a message store);
* CSRF — the webhook views are ``csrf_exempt`` (``CsrfViewMiddleware`` returns at once for them).

They are subclasses, so Django's admin checks (``admin.E408`` to ``E410``) still find them.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessages
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessions

#: Where the webhook routes live (``config.urls`` includes ``webhooks.urls`` here).
WEBHOOK_PREFIX = "/webhooks/"


def is_webhook(request) -> bool:
    return request.path_info.startswith(WEBHOOK_PREFIX)


class SkippedOnWebhooks:
    """Mixin for a Django middleware: on a webhook route, hand the request on untouched (no
    ``process_request``, no ``process_response``). Works in sync and async mode alike: the
    next handler's answer (a response, or a coroutine) is returned as it is."""

    def __call__(self, request):
        if is_webhook(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(SkippedOnWebhooks, DjangoSessions):
    """Django's ``SessionMiddleware``, except on the webhook routes."""


class AuthenticationMiddleware(SkippedOnWebhooks, DjangoAuthentication):
    """Django's ``AuthenticationMiddleware``, except on the webhook routes (no
    ``request.user``)."""


class MessageMiddleware(SkippedOnWebhooks, DjangoMessages):
    """Django's ``MessageMiddleware``, except on the webhook routes."""
