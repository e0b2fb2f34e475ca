"""Shared fixtures: API clients authenticated as a tenant, and a second tenant for isolation;
the test tiers; and the flush of a transactional test with no other session in the database.

Tiers (``-m unit`` / ``-m integration`` / ``-m system``; ``make test`` runs all three, ``make
test-fast`` the first two). Every test gets exactly one, at collection — tests do not write the
tier, they say what they need:

* **system** — starts or needs a process of ours (the Celery worker, the sandbox, the Procfile
  stack, a browser, the demo, the chaos run, schemathesis): marked ``system``, or it uses one of
  the fixtures that start one (``worker_process``, ``sandbox_process``, ``browser``, …);
* **integration** — PostgreSQL or Redis, nothing more: it uses the database (a ``django_db``
  marker or a database fixture), or is marked ``redis``;
* **unit** — everything else. ``make test-unit`` runs them with both services unreachable, so
  a "unit" test that needs either fails there.
"""

import os
from dataclasses import dataclass

import psycopg
import pytest
from django.db import connection
from django.test.testcases import QuietWSGIRequestHandler
from rest_framework.test import APIClient

from devtools.servers import SandboxProcess, start_sink
from tenants.models import Tenant
from tenants.services import api_key_create

from .factories import SenderNumberFactory, TenantFactory

# The live server answers without Nagle's algorithm, as gunicorn does: Django's handler writes
# the headers and the body apart, and the body waited for the client's delayed ACK of the
# headers (40 ms on Linux) on every keep-alive request — three quarters of a schemathesis run.
QuietWSGIRequestHandler.disable_nagle_algorithm = True

_SYSTEM_FIXTURES = {"worker_process", "sandbox_process", "sandbox", "live", "shop", "browser"}
_DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Each test's tier before ``-m`` selects by it; the order of what is selected after."""
    for item in items:
        if item.get_closest_marker("unit") or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.tier_written_by_hand)  # fails in setup, below
        names = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("system") or names & _SYSTEM_FIXTURES:
            tier = pytest.mark.system
        elif (
            item.get_closest_marker("redis")
            or item.get_closest_marker("django_db")
            or names & _DATABASE_FIXTURES
        ):
            tier = pytest.mark.integration
        else:
            tier = pytest.mark.unit
        item.add_marker(tier)
    yield
    # Processes first (a stable sort), and under pytest-xdist each test that runs for minutes
    # (marked ``long``) at the head of a different process's share: they start at once instead
    # of ending the run one after the other.
    items.sort(key=lambda item: item.get_closest_marker("system") is None)
    items[:] = _long_ones_leading(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def _long_ones_leading(items: list, processes: int) -> list:
    """``items`` with the ``long`` ones at the heads of the shares of ``processes``, in turn.
    ``--dist worksteal`` hands each process an equal run of what is left, in order (idle ones
    steal from the tails later): the same arithmetic here."""
    long_ones = [item for item in items if item.get_closest_marker("long")]
    rest = [item for item in items if not item.get_closest_marker("long")]
    shares: list[list] = [[] for _ in range(max(processes, 1))]
    for index, item in enumerate(long_ones):
        shares[index % len(shares)].append(item)
    left = len(items)
    for number, share in enumerate(shares):
        size = left // (len(shares) - number)
        left -= size
        take = max(size - len(share), 0)
        share.extend(rest[:take])
        del rest[:take]
    return [item for share in shares for item in share] + rest


def pytest_runtest_setup(item):
    if item.get_closest_marker("tier_written_by_hand"):
        pytest.fail(
            "the tier is derived (tests/conftest.py): mark what the test needs instead — "
            "`system` (a process) or `redis`",
            pytrace=False,
        )


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(
        (marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
        or {"transactional_db", "live_server"} & set(request.fixturenames)
    )


def _maintenance_connection():
    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    return psycopg.connect(**params, autocommit=True)


def _database_closed_to_others(closed: bool) -> None:
    """``ALLOW_CONNECTIONS false`` and the end of every other session of the test database, or
    the database opened again. Run from the ``postgres`` database: the test's own connection
    may be closed by then."""
    name = connection.settings_dict["NAME"]
    if closed:
        connection.ensure_connection()  # the flush needs it; a test may have closed it
    with _maintenance_connection() as maintenance:
        maintenance.execute(
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"false" if closed else "true"}'
        )
        if closed:
            maintenance.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                [name, connection.connection.info.backend_pid],
            )


@pytest.fixture
def _database_opened_after_the_flush(request, django_db_blocker):
    yield
    if getattr(request.node, "_database_closed", False):
        with django_db_blocker.unblock():
            _database_closed_to_others(False)


@pytest.fixture
def _django_db_helper(request, _database_opened_after_the_flush, _django_db_helper):
    """A transactional test ends with a TRUNCATE of every table. The session's worker process
    (or a deliverer, or the live server's threads) may be in a transaction that holds one of
    those tables and wants another, and PostgreSQL would then end one of the two as a deadlock
    victim. So the flush runs alone: this fixture's teardown (before pytest-django's flush)
    closes the test database to new sessions and ends the others, and
    ``_database_opened_after_the_flush`` (torn down after the flush) opens it again. A worker
    cut off mid-task meets a lost connection, which the product retries like any transient
    database error; it finds the tables empty."""
    yield
    if _transactional(request):
        request.node._database_closed = True
        with request.getfixturevalue("django_db_blocker").unblock():
            _database_closed_to_others(True)


@dataclass
class TenantClient:
    tenant: Tenant
    client: APIClient
    raw_key: str


def make_tenant_client(**tenant_fields) -> TenantClient:
    tenant = TenantFactory(**tenant_fields)
    SenderNumberFactory(tenant=tenant)
    raw = api_key_create(tenant=tenant).raw
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return TenantClient(tenant=tenant, client=client, raw_key=raw)


@pytest.fixture
def tenant_a(db) -> TenantClient:
    return make_tenant_client(slug="acme")


@pytest.fixture
def tenant_b(db) -> TenantClient:
    return make_tenant_client(slug="globex")


@pytest.fixture
def api(tenant_a) -> APIClient:
    return tenant_a.client


@pytest.fixture(scope="session")
def sink():
    """A webhook receiver in this process (a thread), shared by the session."""
    sink, server = start_sink()
    yield sink
    server.shutdown()


@pytest.fixture(scope="session")
def sandbox_process(sink):
    """One sandbox process for the session, reset before and after each test that uses it."""
    process = SandboxProcess(
        sink.url,
        approve_after=0,
        seed=7,
        sent_after_ms=10,
        delivered_after_ms=20,
        read_after_ms=30,
        webhook_retry_base_ms=50,
    )
    yield process
    process.stop()


@pytest.fixture
def sandbox(sandbox_process, sink):
    sandbox_process.restore()
    sink.clear()
    yield sandbox_process
    sandbox_process.restore()


@pytest.fixture(autouse=True)
def _no_outage_carried_over():
    """A test that took the broker (or Redis) down must not leave the next test's process
    skipping it for ``OUTAGE_SECONDS``."""
    from core.coordination import broker_outage, store_outage
    from tenants.throttling import limiter_outage

    yield
    broker_outage.until = store_outage.until = limiter_outage.until = 0.0
