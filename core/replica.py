"""An optional read-only replica for on-call reads: the admin's lists, the operations page and
the pricing report (``DATABASE_REPLICA_URL``), so that looking never competes with sending.

The rules
---------
* With ``DATABASE_REPLICA_URL`` set, ``DATABASES["replica"]`` is a PostgreSQL streaming replica
  (a hot standby) of ``DATABASE_URL``. Without it every read goes to the primary, as before.
* Reads go to the replica only **inside** ``on_replica()`` — never by default: the pipeline, the
  API's sends and every write must see the primary. ``ReplicaReadsMiddleware`` opens it for
  ``GET`` (and ``HEAD``) requests of the pages listed in ``REPLICA_VIEWS``: an admin changelist,
  the operations page, the pricing report. An admin action is a ``POST``: it reads and writes
  the primary. (A campaign's report stays on the primary: a client reads it right after
  creating the campaign.)
* Only the product's own tables are read there (``REPLICA_APPS``), and not those that say who
  may see what (``PRIMARY_ONLY``: API keys, staff scopes): a session, a user, a permission, a
  key are always read from the primary, so someone who has just signed in is never sent back to
  the login page by the replica's lag, and a key revoked a moment ago opens nothing.
* Writes always go to the primary (``db_for_write``), even for an object read from the replica.
* The replica lags by its replay delay (usually well under a second): a list seen right after an
  action may not show it yet; the object's own page (its change view) reads the primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"
REPLICA_APPS = frozenset(
    {
        "tenants",
        "callbacks",
        "templates_registry",
        "media",
        "messaging",
        "campaigns",
        "webhooks",
        "operations",
        "django_celery_beat",
    }
)
PRIMARY_ONLY = frozenset({"tenants.apikey", "tenants.staffscope", "tenants.staffscope_tenants"})
# url names (admin changelists are matched by their suffix)
REPLICA_VIEWS = frozenset({"operations", "pricing-report"})

_reading = ContextVar("waypost_replica_reads", default=False)


def configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def on_replica() -> Iterator[None]:
    """Reads of the product's tables inside this block go to the replica (when there is one)."""
    token = _reading.set(configured())
    try:
        yield
    finally:
        _reading.reset(token)


class ReplicaRouter:
    """Django's database router: the replica for reads inside ``on_replica``, else the primary."""

    def db_for_read(self, model, **hints):
        meta = model._meta
        instance = hints.get("instance")  # a related manager's owner: scope.tenants.all()
        if instance is not None and instance._meta.label_lower in PRIMARY_ONLY:
            return DEFAULT_DB_ALIAS
        if (
            _reading.get()
            and meta.app_label in REPLICA_APPS
            and meta.label_lower not in PRIMARY_ONLY
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same rows, whichever copy they were read from

    def allow_migrate(self, db, app_label, **hints):
        return db != REPLICA  # a replica replays the primary's schema


class ReplicaReadsMiddleware:
    """Opens ``on_replica`` for the on-call pages' GETs (see the module's rules), for the whole
    request: the view and its template's rendering, where an admin list is read."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        token = _reading.set(False)
        try:
            return self.get_response(request)
        finally:
            _reading.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if configured() and request.method in ("GET", "HEAD"):
            name = request.resolver_match.url_name or ""
            if name in REPLICA_VIEWS or name.endswith("_changelist"):
                _reading.set(True)  # until __call__ resets it
        return None
