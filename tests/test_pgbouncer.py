"""Waypost behind PgBouncer in transaction pooling mode (Debian's ``pgbouncer``): the Procfile
stack with ``DATABASE_URL`` pointing at the pooler and ``DATABASE_POOLER=transaction``, migrated
through it, sends messages to ``read`` through signed status webhooks, delivers callbacks and
streams a campaign's report of thousands of rows — with two server connections shared by every
process, so consecutive transactions of one client run on different server sessions and nothing
may rely on a session across them. (Without the setting the report's stream breaks: its
server-side cursor stays on a session the next fetch does not get.)

First, that this pooler really is such a pooler: two clients that prepare statements
server-side (psycopg's default after a query's fifth run) collide on one server session."""

import os

import psycopg
import pytest

from devtools.pgbouncer import PgBouncer
from devtools.servers import start_receiver
from devtools.stack import TEMPLATE, Stack, body

from .waiting import wait_for

pytestmark = pytest.mark.system

MESSAGES = 120
INVALID = 2_500


@pytest.fixture(scope="module")
def bouncer():
    with PgBouncer(os.environ["DATABASE_URL"], pool_mode="transaction", pool_size=2) as running:
        yield running


def test_the_pooler_shares_server_sessions_between_clients(bouncer):
    """The control: what ``DATABASE_POOLER=transaction`` turns off fails behind this pooler."""
    url = bouncer.url("postgres")
    with (
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as a,
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as b,
    ):
        a.execute("select 1")  # prepared as _pg3_0 on the server session a was given
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            b.execute("select 1")  # the same session (the pooler's last used), same name
    for _client in range(2):  # and without server-side statements, nothing collides
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as c:
            for _ in range(10):
                assert c.execute("select 1").fetchone() == (1,)


def test_the_stack_runs_behind_pgbouncer_in_transaction_pooling(bouncer, tmp_path):
    receiver, server = start_receiver()
    stack = Stack(
        database="waypost_pooled",
        env={
            "DATABASE_URL": bouncer.url("waypost_pooled"),
            "DATABASE_POOLER": "transaction",
            "LOG_LEVEL": "INFO",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "CELERY_IMPORTS": "",
            "WAYPOST_CALLBACK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
            "WAYPOST_CALLBACK_REQUIRE_HTTPS": "false",
        },
    )
    try:
        with stack:  # migrated through the pooler
            tenant = stack.create_tenant("pooled")
            stack.start()
            session = stack.client(tenant["api_key"])
            template = session.post(f"{stack.url}/api/v1/templates", json=TEMPLATE, timeout=10)
            assert template.json()["status"] == "APPROVED", template.text
            stack.subscribe(session, receiver.url, ["message.read"])
            items = [
                {"idempotency_key": f"b{i}", **body(f"+49151{i:08d}", f"B-{i}")}
                for i in range(MESSAGES - 20)
            ]
            answer = session.post(
                f"{stack.url}/api/v1/messages/batch", json={"messages": items}, timeout=60
            )
            assert answer.status_code == 200 and answer.json()["rejected"] == 0, answer.text
            stack.send_singles(session, "s", 20)  # singles too: each a run of the same statements

            # A report streamed a thousand rows at a time while the workers use the pool: one
            # query read in several fetches (Django's .iterator(), a server-side cursor unless
            # DATABASE_POOLER turns them off — the cursor would stay on a session it may not
            # get again).
            audience = [{"to": f"12{i:05d}", "1": "Ana", "2": str(i)} for i in range(INVALID)]
            campaign = session.post(
                f"{stack.url}/api/v1/campaigns",
                json={
                    "template": {"name": "order_update", "language": "en_US"},
                    "audience": audience,
                },
                headers={"Idempotency-Key": "c1"},
                timeout=120,
            )
            assert campaign.status_code == 201, campaign.text
            assert campaign.json()["preflight"]["invalid"] == INVALID
            rows = session.get(
                f"{stack.url}/api/v1/campaigns/{campaign.json()['id']}/invalid-rows.csv",
                timeout=120,
            )
            assert rows.status_code == 200 and rows.text.count("recipient_invalid") == INVALID

            def read() -> int:
                return stack.sql("select count(*) from messaging_message where state = 'read'")[0][
                    0
                ]

            wait_for(lambda: read() == MESSAGES, 120, f"{MESSAGES} messages read")
            wait_for(
                lambda: len({h["webhook-id"] for _, h, _ in receiver.delivered()}) == MESSAGES,
                60,
                "a message.read callback for each",
            )
            output = "\n".join(stack.log)  # while it ran: honcho's stop is not the pooler's
    finally:
        server.shutdown()
    assert "Traceback" not in output, output[-3000:]
    assert "prepared statement" not in output.lower(), output[-3000:]
