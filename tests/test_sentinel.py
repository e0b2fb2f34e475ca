"""Redis that can fail over: the Procfile stack with the broker, the coordination store and the
rate limits on a Redis primary watched by Sentinel (``CELERY_BROKER_URL=sentinel://…``; Debian's
``redis-sentinel``). Messages are sent, the primary is killed, the sentinel promotes the
replica, messages go on being sent: every one is accepted, none twice, no process restarted."""

import pytest

from devtools.sentinel import MASTER, SentinelRedis
from devtools.stack import TEMPLATE, Stack

from .waiting import wait_for

pytestmark = pytest.mark.system

BEFORE, DURING, AFTER = 40, 20, 40


def test_the_stack_keeps_sending_after_a_sentinel_failover(tmp_path):
    with SentinelRedis() as redis_ha:
        stack = Stack(
            database="waypost_sentinel",
            env={
                "CELERY_BROKER_URL": redis_ha.url,
                "REDIS_URL": redis_ha.url,
                "REDIS_SENTINEL_MASTER": MASTER,
                "LOG_LEVEL": "INFO",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                "CELERY_IMPORTS": "",
                "SANDBOX_WEBHOOK_DROP_RATE": "1",  # statuses off: acceptance is the point here
            },
        )
        with stack:
            tenant = stack.create_tenant("failover")
            stack.start()
            session = stack.client(tenant["api_key"])
            template = session.post(f"{stack.url}/api/v1/templates", json=TEMPLATE, timeout=10)
            assert template.json()["status"] == "APPROVED", template.text

            stack.send_singles(session, "a", BEFORE)
            wait_for(lambda: stack.count("accepted") == BEFORE, 30, "the first messages accepted")
            redis_ha.stop_primary()  # killed; the sentinel has promoted the replica
            stack.send_singles(session, "bb", DURING)  # right after the failover: reconnecting
            stack.send_singles(session, "ccc", AFTER)
            total = BEFORE + DURING + AFTER
            wait_for(
                lambda: stack.count("accepted") == total, 90, f"all {total} accepted after failover"
            )
            submissions = stack.sandbox("GET", "/_sandbox/messages")["data"]
            assert len(submissions) == total
            assert all(record["submissions"] == 1 for record in submissions)
            # honcho stops every process when one exits: none did
            assert stack.proc.poll() is None, "\n".join(list(stack.log)[-40:])
