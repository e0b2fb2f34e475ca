"""Redis over TLS: the Procfile stack with the broker, the coordination store and the rate
limits on a Redis that speaks TLS only (``devtools.redis_tls``: Debian's ``redis-server`` and a
throw-away CA), configured by one ``rediss://`` URL in ``CELERY_BROKER_URL`` and ``REDIS_URL``.
Every message is accepted, none twice; a plaintext client gets nowhere, and neither does a
client that does not trust the CA (the certificate is verified by default)."""

import pytest
import redis
from kombu import Connection
from kombu.exceptions import OperationalError

from core.coordination import broker_use_ssl
from devtools.redis_tls import TlsRedis
from devtools.stack import TEMPLATE, Stack

from .waiting import wait_for

pytestmark = pytest.mark.system

MESSAGES = 40


@pytest.fixture(scope="module")
def redis_tls():
    with TlsRedis() as server:
        yield server


def test_the_stack_sends_on_a_redis_that_speaks_tls_only(redis_tls, tmp_path):
    stack = Stack(
        database="waypost_redis_tls",
        env={
            "CELERY_BROKER_URL": redis_tls.url,
            "REDIS_URL": redis_tls.url,
            "LOG_LEVEL": "INFO",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "CELERY_IMPORTS": "",
            "SANDBOX_WEBHOOK_DROP_RATE": "1",  # statuses off: acceptance is the point here
        },
    )
    with stack:
        tenant = stack.create_tenant("tls")
        stack.start()
        session = stack.client(tenant["api_key"])
        template = session.post(f"{stack.url}/api/v1/templates", json=TEMPLATE, timeout=10)
        assert template.json()["status"] == "APPROVED", template.text
        stack.send_singles(session, "tls", MESSAGES)
        wait_for(lambda: stack.count("accepted") == MESSAGES, 60, f"all {MESSAGES} accepted")
        submissions = stack.sandbox("GET", "/_sandbox/messages")["data"]
        assert len(submissions) == MESSAGES
        assert all(record["submissions"] == 1 for record in submissions)
        # Both clients worked here, over TLS: the coordination client's scripts (the doorbells,
        # the rate limits: EVALSHA) and the workers' broker polls (BRPOP).
        calls = redis_tls.client().info("commandstats")
        assert calls["cmdstat_evalsha"]["calls"] > 0 and calls["cmdstat_brpop"]["calls"] > 0
        log = "\n".join(stack.log)
        assert "coordination store unavailable" not in log, log[-4000:]
        # honcho stops every process when one exits: none did
        assert stack.proc.poll() is None, "\n".join(list(stack.log)[-40:])


def test_the_server_speaks_tls_only(redis_tls):
    assert redis_tls.client().ping()
    plain = redis.Redis(host="127.0.0.1", port=redis_tls.port, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_a_certificate_the_client_cannot_verify_is_refused(redis_tls):
    """The URL without ``ssl_ca_certs``: the system's CAs, which did not sign this server's
    certificate. The coordination client's redis-py and the broker's kombu both refuse it."""
    untrusted = f"rediss://127.0.0.1:{redis_tls.port}/0"
    client = redis.Redis.from_url(untrusted, socket_timeout=2, socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()
    with Connection(untrusted, ssl=broker_use_ssl(untrusted), connect_timeout=2) as broker:
        with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
            broker.ensure_connection(max_retries=0)
        trusted = Connection(redis_tls.url, ssl=broker_use_ssl(redis_tls.url), connect_timeout=2)
        with trusted:
            trusted.ensure_connection(max_retries=0)
