"""Writing to the ledger: events in bulk, then the state projection, in the caller's
transaction.

Every writer locks the messages it records for **in id order** first (:func:`lock_messages`),
then inserts and updates. One order for every writer — the pipeline, the webhook processor, an
operator's action — means two writers touching the same messages wait for each other instead
of deadlocking.

``record()`` inserts events with ``ON CONFLICT DO NOTHING`` on ``(message, dedupe_key)`` — the
same fact twice is one row — and moves each message's stored state to the highest-precedence
state among the new events with a conditional ``UPDATE ... WHERE state_rank < new_rank``.
Applying a duplicate again changes nothing, and no write can move a message backwards.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.db import bound_cursor
from messaging.models import Message, MessageEvent
from messaging.states import Fact, precedence
from messaging.track.notify import STATE_EVENTS, notify

log = logging.getLogger("waypost.state")


@dataclass
class NewEvent:
    message_id: Any
    type: str
    source: str
    round: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    dedupe_key: str = ""  # default: "<type>:<round>"


def lock_messages(ids) -> list:
    """``SELECT … FOR UPDATE`` the messages ``ids`` in id order (inside a transaction): the one
    lock order every ledger writer uses. Returns the ids that exist."""
    return list(
        Message.objects.select_for_update()
        .filter(pk__in=list(ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def record(
    events: list[NewEvent],
    *,
    locked: bool = False,
    changed: list[Message] = (),
    fields: list[str] = (),
) -> None:
    """Append ``events`` and project them onto their messages (call inside a transaction).

    ``locked``: the caller already holds the messages' row locks (the pipeline's claim, a row
    it just inserted); otherwise they are taken here, in id order. ``changed`` and ``fields``:
    the caller's own changes to those messages (the pipeline's attempts, answers, next
    attempts), written in the same ``UPDATE`` as the state projection — one row version per
    message per pass, not two."""
    if not events and not (changed and fields):
        return
    # No savepoint inside the caller's transaction (two round trips per call on the hot path):
    # an error here rolls the whole transaction back, which is what every caller wants.
    with transaction.atomic(savepoint=False):
        _record(events, locked=locked, changed=list(changed), fields=list(fields))


def append(events: list[NewEvent]) -> None:
    """Append facts that move no state (a ``payload_built``), one statement, without the
    messages' locks: nothing is projected, and a fact stored twice is one row. Anything that
    may move a state goes through :func:`record`."""
    _moving_none(events)
    if events:
        _insert(events, timezone.now())


def _moving_none(events: list[NewEvent]) -> None:
    for e in events:
        ranked = precedence(Fact(e.type, e.round))
        if ranked and ranked[0] > 0:
            raise ValueError(f"{e.type} moves a message's state: record() it")


def first_events(events: list[NewEvent]) -> list[MessageEvent]:
    """The rows of a new message's first events, for the caller to insert with the message
    itself (``core.db.insert_together``: one statement). They are the events that start a
    message — ``requested``, ``sanitized`` — which move no state (every message starts
    ``queued``) and cannot repeat a stored fact (the message is new): nothing to project."""
    _moving_none(events)
    return _rows(events, timezone.now())


def _rows(events: list[NewEvent], now) -> list[MessageEvent]:
    return [
        MessageEvent(
            message_id=e.message_id,
            type=e.type,
            source=e.source,
            round=e.round,
            occurred_at=e.occurred_at or now,
            detail=e.detail,
            dedupe_key=e.dedupe_key or f"{e.type}:{e.round}",
        )
        for e in events
    ]


# One statement of constant text for any number of events, passed as one JSON document that
# PostgreSQL unpacks: Django's bulk_create built (and psycopg quoted, value by value) a
# statement of its own per batch — a quarter of the worker's CPU in a drain pass (py-spy,
# bench/NOTES.md, issue 21); arrays per column were still quoted element by element.
_INSERT_EVENTS = """
    INSERT INTO messaging_messageevent
        (message_id, type, source, round, occurred_at, recorded_at, detail, dedupe_key)
    SELECT m, t, s, r, o, %s, d, k
    FROM json_to_recordset(%s::json)
        AS e(m uuid, t text, s text, r int, o timestamptz, d jsonb, k text)
    ON CONFLICT (message_id, dedupe_key) DO NOTHING
"""


def _insert(events: list[NewEvent], now) -> None:
    """The events as rows, a fact already stored skipped (``ON CONFLICT DO NOTHING``)."""
    if connection.vendor != "postgresql":
        MessageEvent.objects.bulk_create(_rows(events, now), ignore_conflicts=True)
        return
    rows = [
        {
            "m": str(e.message_id),
            "t": e.type,
            "s": e.source,
            "r": e.round,
            "o": (e.occurred_at or now).isoformat(),
            "d": e.detail,
            "k": e.dedupe_key or f"{e.type}:{e.round}",
        }
        for e in events
    ]
    with bound_cursor() as cursor:
        cursor.execute(_INSERT_EVENTS, [now, json.dumps(rows)])


def _record(
    events: list[NewEvent], *, locked: bool, changed: list[Message], fields: list[str]
) -> None:
    if not locked:
        lock_messages({e.message_id for e in events} | {m.pk for m in changed})
    now = timezone.now()
    if events:
        _insert(events, now)
    best: dict[Any, tuple[int, str]] = {}
    for e in events:
        ranked = precedence(Fact(e.type, e.round))
        pk = e.message_id if isinstance(e.message_id, uuid.UUID) else uuid.UUID(str(e.message_id))
        if ranked and ranked[0] > best.get(pk, (-1, ""))[0]:
            best[pk] = ranked
    moving = {pk: ranked for pk, ranked in best.items() if ranked[0] > 0}
    if connection.vendor == "postgresql":
        moved = _project(moving, changed, fields, now)
    else:
        moved = _project_orm(moving, changed, fields, now)
    # What changed is logged, counted and, for the states a client is told about, announced.
    for pk, (state, slug, wamid, created) in moved.items():
        log.info(
            "message %s is %s",
            pk,
            state,
            extra={"message_id": str(pk), "tenant": slug, "wamid": wamid or "", "state": state},
        )
        metrics.state_changes.labels(tenant=slug, state=state).inc()
        if state == "delivered":
            metrics.delivered_seconds.observe((now - created).total_seconds())
    notify({pk: (STATE_EVENTS[s[0]], {}) for pk, s in moved.items() if s[0] in STATE_EVENTS})


def _project(moving: dict, changed: list[Message], fields: list[str], now) -> dict:
    """One ``UPDATE … FROM (VALUES …)`` for every message that moves or that the caller
    changed: each moves to its new state only if it outranks the stored one (``state_rank``),
    and takes the caller's fields (a flag per row says whether it has any). The stored rank is
    read in the same statement (a ``FROM`` item sees the rows before the update; we hold their
    locks). Returns {id: (state, tenant slug, wamid, created)} of the messages that moved."""
    own = {m.pk: m for m in changed} if fields else {}
    ids = list(dict.fromkeys([*moving, *own]))
    if not ids:
        return {}
    meta, quote = Message._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    row = (
        "(%s::uuid, %s::int, %s::text, %s::bool"
        + "".join(f", %s::{f.db_type(connection)}" for f in columns)
        + ")"
    )
    params: list = []
    for pk in ids:
        rank, state = moving.get(pk, (0, None))
        message = own.get(pk)
        params += [pk, rank, state, message is not None]
        params += [
            f.get_db_prep_save(getattr(message, f.attname), connection) if message else None
            for f in columns
        ]
    names = ", ".join(quote(f.column) for f in columns)
    sets = "".join(
        f", {quote(f.column)} = CASE WHEN v.chg THEN v.{quote(f.column)} "
        f"ELSE t.{quote(f.column)} END"
        for f in columns
    )
    values = ", ".join([row] * len(ids))
    with bound_cursor() as cursor:
        cursor.execute(  # identifiers from the model, quoted; every value a parameter
            "UPDATE messaging_message AS t SET "  # noqa: S608
            "state = CASE WHEN v.rank > o.rank THEN v.state ELSE t.state END, "
            "state_changed_at = CASE WHEN v.rank > o.rank THEN %s ELSE t.state_changed_at END, "
            f"state_rank = GREATEST(o.rank, v.rank){sets} "
            f"FROM (VALUES {values}) AS v(id, rank, state, chg{', ' if names else ''}{names}), "
            "(SELECT id, state_rank AS rank FROM messaging_message WHERE id = ANY(%s)) AS o "
            "WHERE t.id = v.id AND o.id = v.id "
            "RETURNING t.id, v.rank > o.rank, t.state, "
            "(SELECT slug FROM tenants_tenant WHERE id = t.tenant_id), "
            "t.provider_message_id, t.created_at",
            [now, *params, ids],
        )
        returned = cursor.fetchall()
    return {
        pk: (state, slug, wamid, created)
        for pk, moved, state, slug, wamid, created in returned
        if moved
    }


def _project_orm(moving: dict, changed: list[Message], fields: list[str], now) -> dict:
    """``_project`` for other databases (the SQLite demo), statement by statement."""
    if changed and fields:
        Message.objects.bulk_update(changed, fields)
    before = {
        pk: (rank, slug, wamid, created)
        for pk, rank, slug, wamid, created in Message.objects.filter(
            pk__in=list(moving)
        ).values_list("pk", "state_rank", "tenant__slug", "provider_message_id", "created_at")
    }
    by_rank: dict[tuple[int, str], list] = defaultdict(list)
    for message_id, ranked in moving.items():
        by_rank[ranked].append(message_id)
    for (rank, state), ids in by_rank.items():
        Message.objects.filter(pk__in=ids, state_rank__lt=rank).update(
            state=state, state_rank=rank, state_changed_at=now
        )
    return {
        pk: (moving[pk][1], slug, wamid, created)
        for pk, (rank, slug, wamid, created) in before.items()
        if moving[pk][0] > rank
    }
