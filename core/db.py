"""Transient database errors: recognised in one place, retried, never recorded as failures.

A deadlock, a serialization failure or a lost connection says nothing about the work being
done: the same transaction run again succeeds. Code that would otherwise record a permanent
failure (a webhook delivery marked ``failed``, a message marked ``unknown``) asks
:func:`is_transient` first, and either retries (:func:`retry_transient`) or lets the error
reach the task's retry policy.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)

from core.errors import error_body

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL SQLSTATEs worth running again: serialization_failure, deadlock_detected,
# lock_not_available, and the connection_exception class (08xxx) and admin shutdown (57P0x).
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}
_TRANSIENT_PREFIXES = ("08", "57P")


def is_transient(exc: BaseException) -> bool:
    """True for errors that running the same transaction again can cure."""
    if isinstance(exc, InterfaceError):  # the connection is gone
        return True
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    sqlstate = getattr(cause, "sqlstate", None) or getattr(
        getattr(cause, "diag", None), "sqlstate", None
    )
    if sqlstate:
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_PREFIXES)
    # No SQLSTATE: a connection that failed before the server answered, or SQLite's
    # "database is locked".
    return isinstance(exc, OperationalError)


def retry_transient(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.05,
    what: str = "transaction",
    patience: float = 0.0,
) -> T:
    """Run ``fn`` (which opens its own transaction) until it succeeds or fails for a reason
    that is not transient; after ``attempts`` transient failures the last error is raised.

    ``patience`` (seconds): keep trying for at least that long, waits capped at 2 s — for work
    whose loss cannot be repaired later (the answers to a submit carry Meta's wamids), long
    enough to ride out a database restart."""
    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt >= attempts and time.monotonic() >= deadline:
                raise
            if connection.in_atomic_block:
                raise  # an outer transaction is broken too: let its owner retry
            log.warning("%s hit a transient database error (%s); retrying", what, exc)
            connection.close_if_unusable_or_obsolete()
            delay = min(2.0, base_delay * 2 ** min(attempt - 1, 10))
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311


def drop_broken_connections() -> None:
    """Close each connection that met an error and no longer answers (the server ended it: a
    restart, a failover, an administrator). A Celery worker keeps its connection between tasks
    (``CELERY_DB_REUSE_MAX``), so without this every later task — a retry included — would fail
    on it with "the connection is closed". Unlike Django's ``close_old_connections`` it leaves
    healthy connections open whatever their age: reusing them is what the setting is for."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or not conn.errors_occurred:
            continue
        if conn.is_usable():
            conn.errors_occurred = False
        else:
            conn.close()


def retries_transient_errors(fn):
    """Bind the task, and retry it with backoff when a transient database error escaped the
    retries inside it. Any other ``DatabaseError`` is a bug: raised, not retried."""

    def task(self, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DatabaseError as exc:
            if is_transient(exc) and self.request.retries < 5:
                raise self.retry(exc=exc, countdown=min(30, 0.5 * 2**self.request.retries)) from exc
            raise

    # Celery reads the task's signature from this function: name and docs, not __wrapped__.
    task.__name__, task.__qualname__, task.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    task.__module__ = fn.__module__
    return task


def bulk_update(objs: list, fields: list[str]) -> None:
    """``Model.objects.bulk_update(objs, fields)`` as one ``UPDATE … FROM (VALUES …)`` on
    PostgreSQL. Django's own builds a ``CASE WHEN`` per row and field and resolves each as an
    expression: on a drain's batch of 50 messages that was half of the worker's CPU (py-spy,
    bench/RESULTS.md). The values are prepared by each field, as Django's would be; other
    databases (the SQLite demo) get Django's."""
    if not objs or not fields:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields)
        return
    meta, quote = model._meta, connection.ops.quote_name
    pk = meta.pk
    changed = [meta.get_field(name) for name in fields]
    columns = [pk, *changed]
    row = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in columns) + ")"
    params: list = []
    for obj in objs:
        params.append(pk.get_db_prep_value(obj.pk, connection))
        params.extend(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in changed)
    names = ", ".join(quote(f.column) for f in columns)
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in changed)
    with bound_cursor() as cursor:
        cursor.execute(  # identifiers from the model, quoted; every value a parameter
            f"UPDATE {quote(meta.db_table)} AS t SET {sets} "  # noqa: S608
            f"FROM (VALUES {', '.join([row] * len(objs))}) AS v({names}) "
            f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}",
            params,
        )


def bound_cursor():
    """A cursor on Django's connection (its transaction, error wrapping and query logging)
    that sends values apart from the statement's text — PostgreSQL's extended protocol,
    psycopg's ``Cursor`` — where Django's own (``ClientCursor``) quotes every value into the
    text in Python. For the hot paths' large values, a webhook's body and a message's rows as
    JSON, that quoting was 5 to 8 % of a request's CPU (``bench/NOTES.md``). Not prepared: a
    statement is parsed by the server each time, so a transaction-mode pooler in front of
    PostgreSQL is no concern. Other databases: Django's cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        connection.validate_thread_sharing()
        raw = psycopg.Cursor(connection.connection)
        if connection.queries_logged:
            return connection.make_debug_cursor(raw)
        return connection.make_cursor(raw)


def insert_together(*groups: list) -> None:
    """INSERT each group of new model instances (one model per group, in order) — in one
    statement on PostgreSQL, the groups before the last as data-modifying ``WITH`` clauses: a
    message and its first ledger events are one round trip, not an ORM object graph per row
    (single sends, issue 21). Each group's rows travel as one JSON document that PostgreSQL
    unpacks into the table's own row type (``json_populate_recordset``): the statement's text
    is the same for any values, and the documents travel apart from it (:func:`bound_cursor`):
    no value is quoted in Python. Each row is what ``bulk_create`` writes — the fields' ``pre_save``
    (``auto_now_add`` is set on the instance) and ``get_prep_value`` — and an auto primary key
    is left to the database (not read back). Foreign keys are checked at the statement's end,
    so a later group may reference an earlier one's rows. Other databases (the SQLite demo) get
    a ``bulk_create`` per group inside one transaction. A unique violation raises
    ``IntegrityError`` as the ORM's would; the caller's transaction, if any, is used."""
    groups = tuple(g for g in groups if g)
    if not groups:
        return
    if connection.vendor != "postgresql":
        with transaction.atomic(savepoint=False):
            for group in groups:
                type(group[0]).objects.bulk_create(group)
        return
    clauses = [_insert_sql(type(objs[0])) for objs in groups]
    params = [
        json.dumps([_row(objs[0]._meta, obj) for obj in objs], default=_json_value)
        for objs in groups
    ]
    *before, last = clauses
    prefix = (
        "WITH " + ", ".join(f"w{i} AS ({c})" for i, c in enumerate(before)) + " " if before else ""
    )
    with bound_cursor() as cursor:
        cursor.execute(prefix + last, params)
    for objs in groups:
        for obj in objs:
            obj._state.adding, obj._state.db = False, connection.alias


def _inserted_fields(meta) -> list:
    return [
        f
        for f in meta.concrete_fields
        if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]


@functools.cache
def _insert_sql(model) -> str:
    meta, quote = model._meta, connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(f.column) for f in _inserted_fields(meta))
    rows = f"json_populate_recordset(NULL::{table}, %s::json)"
    # identifiers from the model, quoted; the values are the one parameter
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM {rows}"  # noqa: S608


def _row(meta, obj) -> dict:
    return {f.column: f.get_prep_value(f.pre_save(obj, True)) for f in _inserted_fields(meta)}


def _json_value(value):
    """A value JSON has no type for, as PostgreSQL reads it into its column."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form for an INSERT")


class DatabaseUnavailableMiddleware:
    """A request that meets a transient database error (the server restarting, a lost
    connection, a deadlock) is answered ``503`` with ``Retry-After`` and the API's error shape
    (code ``database_unavailable``), never a 500: nothing was committed, and the same request
    — with the same ``Idempotency-Key`` for a send — is safe to repeat. Meta and 360dialog
    retry webhooks answered 5xx, so a delivery that could not be stored comes again."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DatabaseError) or not is_transient(exception):
            return None
        from django.conf import settings
        from django.http import JsonResponse

        cause = exception.__cause__ or exception
        log.warning(
            "%s %s: the database is unavailable (%s %s); answered 503",
            request.method,
            request.path,
            type(exception).__name__,
            getattr(cause, "sqlstate", None) or "",
        )
        connection.close_if_unusable_or_obsolete()
        response = JsonResponse(
            error_body(
                "database_unavailable",
                "The service is briefly unavailable; retry the same request.",
            ),
            status=503,
        )
        response["Retry-After"] = str(settings.WAYPOST_DB_RETRY_AFTER)
        return response
