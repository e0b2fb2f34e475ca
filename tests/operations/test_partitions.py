"""The ledger and the stored webhook deliveries partitioned by month on PostgreSQL
(``core.partitions``): message ids are UUIDv7 and every event lands in its message's month; old
months are retired whole by ``manage.py retention`` — archived first, the rows that must stay
copied into the month's new table — and the ledger's guarantees hold on every partition:
append-only, one event per dedupe key, nothing lost."""

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core import partitions
from messaging.models import Message, MessageEvent
from messaging.states import EventSource, EventType
from messaging.track.ledger import NewEvent, record
from messaging.track.retention import LEDGER
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import DELIVERIES, deliveries_prune, delivery_store

from ..factories import SenderNumberFactory, TenantFactory
from ..waiting import wait_for
from .test_retention import READ, message_in, run

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()  # for data placed in time by the tests themselves
OLD = partitions.month_start(NOW - timedelta(days=120))  # a month past every retention


def where(table: str, column: str, value) -> list[str]:
    """The partitions holding the rows of ``table`` whose ``column`` is ``value``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {column} = %s",
            [value],
        )
        return [row[0] for row in cursor.fetchall()]


def exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def ledger_of(row: Message) -> list[tuple]:
    return list(
        MessageEvent.objects.filter(message=row)
        .order_by("id")
        .values_list("id", "type", "dedupe_key", "detail")
    )


@pytest.fixture
def old_month():
    partitions.ensure(LEDGER, now=OLD, ahead=0)
    yield LEDGER.name(OLD)


def test_a_new_message_and_its_events_are_in_this_months_partition():
    sender = SenderNumberFactory()
    row = message_in(sender, READ, age=timedelta(0), key="now")  # its id made now
    assert row.pk.version == 7
    assert where("messaging_messageevent", "message_id", row.pk) == [LEDGER.name(row.created_at)]
    assert set(partitions.months(LEDGER)) >= {partitions.month_start(NOW).date()}


def test_an_old_month_is_retired_whole_archived_first_and_keeps_what_must_stay(old_month, tmp_path):
    sender = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=30))
    done = [
        message_in(sender, READ, created=OLD, age=timedelta(days=100), key=f"done-{i}")
        for i in range(3)
    ]
    stuck = message_in(
        sender, [], created=OLD, age=timedelta(days=100), key="stuck"
    )  # still queued
    keeper = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=0))
    forever = message_in(keeper, READ, created=OLD, age=timedelta(days=100), key="forever")
    kept_before = {row.pk: ledger_of(row) for row in (stuck, forever)}
    assert where("messaging_messageevent", "message_id", done[0].pk) == [old_month]

    report = run("--archive", str(tmp_path))

    assert report["ledgers"]["messages"] == 3 and report["ledgers"]["events"] == 15
    [archive] = report["ledgers"]["archives"]
    assert f"ledger-{OLD:%Y-%m}-" in archive
    with gzip.open(archive, "rt") as lines:
        archived = [json.loads(line) for line in lines]
    assert len(archived) == 15
    assert {a["message_id"] for a in archived} == {str(row.pk) for row in done}
    assert {a["tenant"] for a in archived} == {sender.tenant.slug}
    for row in done:
        row.refresh_from_db()
        assert row.ledger_pruned_at is not None and row.state == "read"  # the summary stays
        assert not MessageEvent.objects.filter(message=row).exists()
    # The month's table is a new one with only the rows that stay, unchanged.
    assert exists(old_month)
    for row in (stuck, forever):
        assert ledger_of(row) == kept_before[row.pk]
        assert where("messaging_messageevent", "message_id", row.pk) == [old_month]
        row.refresh_from_db()
        assert row.ledger_pruned_at is None
    # The guarantees hold on the new table: append-only, one event per dedupe key.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(message=forever).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MessageEvent.objects.filter(message=forever).update(detail={"forged": True})
    record([NewEvent(stuck.pk, EventType.REQUESTED, EventSource.API)])  # a duplicate: ignored
    record([NewEvent(stuck.pk, EventType.ACCEPTED, EventSource.PROVIDER)])  # a new fact: kept
    assert [e[1] for e in ledger_of(stuck)] == ["requested", "accepted"]
    assert where("messaging_messageevent", "message_id", stuck.pk) == [old_month]
    # A second run finds nothing more to retire: what stays, stays.
    files = relfilenode(old_month)
    again = run("--archive", str(tmp_path / "again"))
    assert again["ledgers"] == {"messages": 0, "events": 0, "archives": []}
    assert relfilenode(old_month) == files  # not rewritten: nothing went
    assert not list((tmp_path / "again").glob("*"))  # and no empty archive written
    assert ledger_of(forever) == kept_before[forever.pk]


def relfilenode(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relfilenode FROM pg_class WHERE oid = to_regclass(%s)", [name])
        return cursor.fetchone()[0]


def test_a_month_with_nothing_to_keep_is_emptied_and_a_late_event_still_lands(old_month):
    sender = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=30))
    row = message_in(sender, READ, created=OLD, age=timedelta(days=100), key="gone")
    files = relfilenode(old_month)

    assert run()["ledgers"]["events"] == 5

    assert relfilenode(old_month) != files  # emptied by TRUNCATE: new, empty files
    assert not MessageEvent.objects.filter(message=row).exists()
    # A late status for a message of the retired month: it lands, in its month.
    record([NewEvent(row.pk, EventType.STATUS_READ, EventSource.PROVIDER, dedupe_key="late")])
    assert where("messaging_messageevent", "message_id", row.pk) == [old_month]
    # The next run retires that late event; a run with nothing to drop leaves the month alone.
    assert run()["ledgers"]["events"] == 1
    files = relfilenode(old_month)
    assert run()["ledgers"] == {"messages": 0, "events": 0, "archives": []}
    assert relfilenode(old_month) == files


def test_making_a_month_moves_its_rows_out_of_the_default_partition():
    sender = SenderNumberFactory()
    ahead = partitions.month_start(NOW + timedelta(days=400))  # no partition yet
    with connection.cursor() as cursor:  # (a rerun on a kept database: as if never made)
        cursor.execute(f"DROP TABLE IF EXISTS {LEDGER.name(ahead)}")
    row = message_in(sender, READ, created=ahead, age=timedelta(days=0), key="ahead")
    assert where("messaging_messageevent", "message_id", row.pk) == [LEDGER.default]
    before = ledger_of(row)

    assert partitions.ensure(LEDGER, now=ahead, ahead=0) == [LEDGER.name(ahead)]
    assert partitions.ensure(LEDGER, now=ahead, ahead=0) == []  # made once

    assert where("messaging_messageevent", "message_id", row.pk) == [LEDGER.name(ahead)]
    assert ledger_of(row) == before


def delivery(body: bytes, *, status: str, received_at: datetime) -> WebhookDelivery:
    delivery_store(provider="meta", body=body, headers={})
    stored = WebhookDelivery.objects.get(body=body)
    WebhookDelivery.objects.filter(pk=stored.pk).update(status=status)
    # received_at is the partition key: moving a row to another month is a delete and insert
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE webhooks_webhookdelivery SET received_at = %s WHERE id = %s",
            [received_at, stored.pk],
        )
    return WebhookDelivery.objects.get(pk=stored.pk)


def test_old_months_of_webhook_deliveries_go_whole_keeping_the_unfinished():
    partitions.ensure(DELIVERIES, now=OLD, ahead=0)
    at = OLD + timedelta(days=3)
    done = [
        delivery(b"done-%d" % i, status=DeliveryStatus.PROCESSED, received_at=at) for i in (1, 2)
    ]
    failed = delivery(b"failed", status=DeliveryStatus.FAILED, received_at=at)
    fresh = delivery(b"fresh", status=DeliveryStatus.PROCESSED, received_at=NOW)
    assert where("webhooks_webhookdelivery", "id", done[0].pk) == [DELIVERIES.name(OLD)]

    assert deliveries_prune(older_than=timedelta(days=7)) == 2

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {failed.pk, fresh.pk}
    assert where("webhooks_webhookdelivery", "id", failed.pk) == [DELIVERIES.name(OLD)]


def test_a_delivery_stored_twice_in_a_month_is_stored_once():
    for _ in range(2):
        delivery_store(provider="meta", body=b'{"object":"whatsapp_business_account"}', headers={})
    assert WebhookDelivery.objects.count() == 1
    [stored] = WebhookDelivery.objects.all()
    assert where("webhooks_webhookdelivery", "id", stored.pk) == [
        DELIVERIES.name(stored.received_at)  # the month it was stored in, whatever the hour
    ]


def test_partitions_are_made_ahead_by_the_beats_job():
    from operations.tasks import ensure_partitions

    this = partitions.month_start(datetime.now(UTC))
    furthest = partitions.next_month(partitions.next_month(this))
    with connection.cursor() as cursor:  # the migration made it: taken away, as if not yet made
        for scheme in (LEDGER, DELIVERIES):
            cursor.execute(f"DROP TABLE IF EXISTS {scheme.name(furthest)}")

    made = ensure_partitions.apply().get()

    assert made == {LEDGER.table: 1, DELIVERIES.table: 1}
    for scheme in (LEDGER, DELIVERIES):
        months = partitions.months(scheme)
        month = this
        for _ in range(3):
            assert month.date() in months, (scheme.table, month)
            month = partitions.next_month(month)


def test_an_event_written_while_its_month_is_retired_waits_and_is_kept(old_month):
    """Two connections: the retirement holds the month; a status for a message that stays
    arrives meanwhile. It waits for the retirement (never lost, never a deadlock) and lands."""
    sender = SenderNumberFactory(tenant=TenantFactory(ledger_retention_days=30))
    going = message_in(sender, READ, created=OLD, age=timedelta(days=100), key="going")
    staying = message_in(sender, [], created=OLD, age=timedelta(days=100), key="staying")
    holding, release, errors = threading.Event(), threading.Event(), []

    def before(cursor, partition):
        holding.set()
        release.wait(20)

    def retirement():
        try:
            partitions.retire(
                LEDGER, OLD.date(), keep="row.message_id <> %s", params=[going.pk], before=before
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def status():
        try:
            holding.wait(20)
            record([NewEvent(staying.pk, EventType.ACCEPTED, EventSource.PROVIDER)])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=retirement), threading.Thread(target=status)]
    for thread in threads:
        thread.start()
    holding.wait(20)
    wait_for(lambda: blocked_on_a_lock(), 10, "the status waiting for the month")
    release.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert not MessageEvent.objects.filter(message=going).exists()
    assert [e[1] for e in ledger_of(staying)] == ["requested", "accepted"]


def blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0
