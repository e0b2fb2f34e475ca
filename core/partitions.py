"""Tables partitioned by month on PostgreSQL, and old months retired whole.

The ledger (``messaging_messageevent``) and the stored webhook deliveries
(``webhooks_webhookdelivery``) grow with every message. Deleting their old rows one by one
leaves dead tuples for vacuum to chase; here each month is a table of its own, and an old month
goes as a whole (``TRUNCATE``: no dead rows, the space back at once).
This module owns the mechanics; each table's owner says what to keep and what
to archive (``messaging.track.retention``, ``webhooks.services``).

The rules
---------
* A table is partitioned by RANGE on one column, one partition per calendar month (UTC), named
  ``<table>_p<YYYYMM>``. The ledger is partitioned on ``message_id``: message ids are UUIDv7
  (``core.ids``), whose first 48 bits are their creation time, so a month of messages is one
  range of ids and all events of a message share its month's partition — the ledger's dedupe
  key ``(message_id, dedupe_key)`` stays a real unique constraint. Deliveries are partitioned on
  ``received_at``.
* A **default partition**, ``<table>_default``, takes a row no month covers: a month not made
  yet, a row from before the upgrade. (A message id from before UUIDv7 is random: its events
  land in whichever month its first 48 bits fall in, or the default — harmless, since
  retention decides by the message, never by the month alone.) An insert never fails for want of a
  partition. On upgrade the table as it was becomes the default partition (no copy).
* PostgreSQL requires a table-wide unique constraint to contain the partition key. One that does
  not (the deliveries' ``(provider, body_sha256)``) is kept per partition instead
  (``Scheme.leaf_unique``): an INSERT ... ON CONFLICT DO NOTHING with no target honours it.
* ``ensure`` makes this month's partition and the next ``ahead`` (daily, from the beat's
  ``operations.partitions`` row, and at migrate). Making one moves the rows of its range out of
  the default partition first (PostgreSQL refuses to attach a range the default holds rows of).
* ``retire`` takes one month, in one transaction: the caller first locks what writers lock
  before they write (the ledger: the month's prunable messages, ``FOR UPDATE`` in id order, as
  every ledger writer does), then the month's table is locked against writes (``SHARE``: a
  write for a row of that month waits for the retirement, it is not lost), and the caller
  archives what goes and records it. A month where nothing stays is emptied whole
  (``TRUNCATE``: its files go back at once, no dead rows). A month where rows stay (a tenant
  that keeps its ledger, a message not yet settled) has the others deleted where they are:
  dead rows for vacuum, as row-by-row retention leaves, but only in such months. Only the
  month's own table is locked, never the parent: writers of other months never wait. A month
  with nothing to drop is left untouched (no daily rewrite of the months a tenant keeps).
* Each operation runs under a transaction-level advisory lock per table, taken without waiting:
  a second run at the same time (two beats, two ``retention`` runs) skips, and the first does
  the work. A short ``lock_timeout`` bounds the waits for table locks: on a busy table the run
  gives up and the next day's tries again, rather than queue every writer behind it. Making a
  month scans the default partition, which is empty unless it holds a ledger from before the
  upgrade (see the retention docs).
* SQLite (the embedded demo) has no partitions: ``active`` is False there, and retention deletes
  rows as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from core.ids import uuid7_floor

LOCK_TIMEOUT = "5s"
MONTH_NAME = re.compile(r"_p(\d{4})(\d{2})$")


@dataclass(frozen=True)
class Scheme:
    table: str
    column: str
    key: str  # "uuid7" (a UUIDv7 column: its time prefix) or "time" (a timestamptz column)
    leaf_unique: tuple[str, ...] = ()  # unique per partition (a key the table-wide one lacks)
    unlock: str = ""  # SQL that lets this transaction move rows (the ledger's append-only rule)
    relock: str = ""  # SQL that puts the rule back

    def name(self, month: date) -> str:
        return f"{self.table}_p{month:%Y%m}"

    @property
    def default(self) -> str:
        return f"{self.table}_default"

    def bounds(self, month: date) -> tuple[str, str]:
        start, end = month_start(month), next_month(month)
        if self.key == "uuid7":
            return str(uuid7_floor(start)), str(uuid7_floor(end))
        return start.isoformat(), end.isoformat()


def month_start(day: date | datetime) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def next_month(day: date | datetime) -> datetime:
    start = month_start(day)
    return month_start(start + timedelta(days=32))


def active(scheme: Scheme) -> bool:
    """True when the table is partitioned (PostgreSQL, migrated)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [scheme.table])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def months(scheme: Scheme) -> list[date]:
    """The months that have a partition of their own, oldest first."""
    if not active(scheme):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [scheme.table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = [MONTH_NAME.search(name) for name in names]
    return sorted(date(int(m[1]), int(m[2]), 1) for m in found if m)


def ensure(scheme: Scheme, *, now: datetime | None = None, ahead: int = 2) -> list[str]:
    """Make the partitions of this month and the next ``ahead``; the names made."""
    if not active(scheme):
        return []
    month = month_start(now or datetime.now(UTC))
    made = []
    for _ in range(ahead + 1):
        if _create(scheme, month.date()):
            made.append(scheme.name(month))
        month = next_month(month)
    return made


def _create(scheme: Scheme, month: date) -> bool:
    table, name = scheme.table, scheme.name(month)
    low, high = scheme.bounds(month)
    with transaction.atomic(), connection.cursor() as cursor:
        if not _serialise(cursor, scheme) or _exists(cursor, name):
            return False
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        _leaf_unique(cursor, scheme, name)
        # No row of the month may reach the default between the move and the attach.
        cursor.execute(f"LOCK TABLE {scheme.default} IN EXCLUSIVE MODE")
        if scheme.unlock:
            cursor.execute(scheme.unlock)
        cursor.execute(
            f"WITH moved AS (DELETE FROM {scheme.default} WHERE {scheme.column} >= %s "  # noqa: S608
            f"AND {scheme.column} < %s RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [low, high],
        )
        if scheme.relock:
            cursor.execute(scheme.relock)
        cursor.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [low, high],
        )
    return True


@dataclass
class Retired:
    month: date
    dropped: int  # rows that went
    kept: int  # rows copied into the month's new table


def retire(
    scheme: Scheme,
    month: date,
    *,
    keep: str,
    params: list | None = None,
    prepare: Callable[[object], None] | None = None,
    before: Callable[[object, str], None] | None = None,
) -> Retired | None:
    """Retire one month's partition, keeping the rows ``keep`` (an SQL condition on the row,
    aliased ``row``, with ``params``). ``prepare(cursor)`` runs first, before the month is
    locked (lock there what writers lock before they write); ``before(cursor, partition)`` runs
    with the month locked against writes: it archives what goes and records it. None when the
    month has no partition, or another run holds this table."""
    if not active(scheme):
        return None
    name = scheme.name(month)
    with transaction.atomic(), connection.cursor() as cursor:
        if not _serialise(cursor, scheme) or not _exists(cursor, name):
            return None
        if prepare is not None:
            prepare(cursor)
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE {keep}), count(*) FROM {name} AS row",  # noqa: S608
            params or [],
        )
        kept, total = cursor.fetchone()
        if kept == total:
            return Retired(month=month, dropped=0, kept=kept)  # nothing goes: left as it is
        if before is not None:
            before(cursor, name)
        if kept == 0:
            cursor.execute(f"TRUNCATE {name}")  # the whole month goes: its files at once
        else:
            # Rows stay: the others are deleted where they are. (Copying the kept rows back
            # after a TRUNCATE would re-check their foreign keys, waiting on the row locks of
            # writers that wait on this month: a deadlock.)
            if scheme.unlock:
                cursor.execute(scheme.unlock)
            cursor.execute(f"DELETE FROM {name} AS row WHERE NOT ({keep})", params or [])  # noqa: S608
            if scheme.relock:
                cursor.execute(scheme.relock)
    return Retired(month=month, dropped=total - kept, kept=kept)


def _serialise(cursor, scheme: Scheme) -> bool:
    """This table's advisory lock, if free (False: another run has it), and the lock timeout."""
    cursor.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext('waypost.partitions'), hashtext(%s))",
        [scheme.table],
    )
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    return True


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def _leaf_unique(cursor, scheme: Scheme, name: str) -> None:
    if scheme.leaf_unique:
        columns = ", ".join(scheme.leaf_unique)
        cursor.execute(f"CREATE UNIQUE INDEX ON {name} ({columns})")


def convert(schema_editor, scheme: Scheme) -> None:
    """Migration step: make ``scheme.table`` partitioned, the table as it is becoming its
    default partition (no rows copied). Its indexes, constraints, foreign keys and row triggers
    are re-created on the new parent under their names (a unique constraint without the
    partition key stays on each partition: ``leaf_unique``); the id column keeps counting from
    where it was. PostgreSQL only; idempotent."""
    connection_ = schema_editor.connection
    if connection_.vendor != "postgresql":
        return
    table, default, column = scheme.table, scheme.default, scheme.column
    with connection_.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        if cursor.fetchone()[0] == "p":
            return
        # Nothing writes while the id counter is read and the table changes hands.
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            [table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
            [table],
        )
        triggers = cursor.fetchall()
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
        last = cursor.fetchone()[0]
        if sequence:
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
            value, called = cursor.fetchone()
            last = max(last, value if called else value - 1)

    run = schema_editor.execute
    for name, _ in triggers:
        run(f"DROP TRIGGER {name} ON {table}")
    run(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    primary = [name for name, kind, _ in constraints if kind == "p"]
    for name in primary:
        run(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    run(f"ALTER TABLE {table} RENAME TO {default}")
    for index, (name, _kind, _) in enumerate(c for c in constraints if c[1] != "p"):
        run(f"ALTER TABLE {default} RENAME CONSTRAINT {name} TO {default[:50]}_c{index}")
    for index, (name, _) in enumerate(indexes):
        run(f"ALTER INDEX {name} RENAME TO {default[:50]}_i{index}")
    seq = f"{table}_id_seq"
    run(f"CREATE SEQUENCE {seq}")
    run(f"SELECT setval('{seq}', {max(last, 1)}, {'true' if last else 'false'})")
    run(
        f"CREATE TABLE {table} (LIKE {default} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        f"PARTITION BY RANGE ({column})"
    )
    run(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{seq}')")
    run(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    run(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, {column})")
    for name, kind, definition in constraints:
        if kind == "u" and column not in _columns(definition):
            continue  # stays on the default partition; new months get it from leaf_unique
        if kind != "p":
            run(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for name, definition in indexes:
        run(
            re.sub(
                r"^CREATE (UNIQUE )?INDEX \S+ ON \S+",
                rf"CREATE \1INDEX {name} ON {table}",
                definition,
            )
        )
    run(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
    for _name, definition in triggers:
        run(re.sub(r" ON \S+ ", f" ON {table} ", definition, count=1))


def _columns(definition: str) -> list[str]:
    inside = re.search(r"\(([^)]*)\)", definition)
    return [part.strip() for part in inside[1].split(",")] if inside else []
