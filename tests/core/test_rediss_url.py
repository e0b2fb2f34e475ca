"""A ``rediss://`` URL (Redis over TLS) is one URL for the broker and the coordination client:
redis-py reads it as kombu does, and both verify the server's certificate unless the URL says
``ssl_cert_reqs=none`` (kombu alone would not, for a URL without the parameter).
``tests/test_redis_tls.py`` runs the stack on a TLS-only Redis."""

import json
import os
import ssl
import subprocess
import sys

import pytest
from kombu import Connection
from redis import SSLConnection

from core.coordination import _as_redis_py_reads, _client, broker_use_ssl
from devtools.servers import ROOT


def _tls(url: str) -> SSLConnection:
    """The connection the coordination client would open for ``url`` (not opened)."""
    pool = _client(url).connection_pool
    assert pool.connection_class is SSLConnection
    return pool.connection_class(**pool.connection_kwargs)


@pytest.mark.parametrize("spelled", ["required", "CERT_REQUIRED"])
def test_the_coordination_client_reads_the_celery_spellings_of_ssl_cert_reqs(spelled):
    connection = _tls(
        f"rediss://:pw@10.0.0.1:6380/3?ssl_cert_reqs={spelled}&ssl_ca_certs=/x/ca.crt"
    )
    assert connection.cert_reqs == ssl.CERT_REQUIRED
    assert connection.check_hostname is True
    assert (connection.ca_certs, connection.host, connection.port) == (
        "/x/ca.crt",
        "10.0.0.1",
        6380,
    )
    assert (connection.db, connection.password) == (3, "pw")


def test_without_the_parameters_the_certificate_is_verified_against_the_system_cas():
    connection = _tls("rediss://10.0.0.1:6380/0")
    assert (connection.cert_reqs, connection.ca_certs) == (ssl.CERT_REQUIRED, None)


def test_verification_is_off_only_when_the_url_says_so():
    assert _tls("rediss://10.0.0.1:6380/0?ssl_cert_reqs=CERT_NONE").cert_reqs == ssl.CERT_NONE


def test_other_urls_are_left_as_they_are():
    for url in ("redis://127.0.0.1:6379/0", "rediss://h:6380/0?ssl_cert_reqs=required&x=%2F"):
        assert _as_redis_py_reads(url) == url


@pytest.mark.parametrize(
    ("url", "verify"),
    [
        ("rediss://10.0.0.1:6380/0", ssl.CERT_REQUIRED),  # kombu alone: CERT_NONE
        ("rediss://10.0.0.1:6380/0?ssl_ca_certs=/x/ca.crt", None),  # redis-py's: required
        ("rediss://10.0.0.1:6380/0?ssl_cert_reqs=required", ssl.CERT_REQUIRED),
        ("rediss://10.0.0.1:6380/0?ssl_cert_reqs=none", ssl.CERT_NONE),  # said so
    ],
)
def test_the_broker_verifies_unless_the_url_says_otherwise(url, verify):
    broker = Connection(url, ssl=broker_use_ssl(url))  # as Celery makes it (broker_use_ssl)
    assert broker.ssl.get("ssl_cert_reqs") == verify


def test_a_plain_broker_gets_no_tls():
    assert Connection("redis://10.0.0.1:6379/0", ssl=broker_use_ssl("redis://")).ssl is False


def test_the_settings_give_celery_a_verifying_broker_for_a_bare_rediss_url():
    """The wiring, as a process starts: production settings, the Celery app's connection (not
    opened)."""
    script = (
        "import django; django.setup(); from config.celery_app import app; "
        "import json; print(json.dumps(int(app.connection_for_write().ssl['ssl_cert_reqs'])))"
    )
    url = "rediss://10.0.0.1:6380/0"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 50,
        "DATABASE_URL": "postgres://u@127.0.0.1:1/db",
        "CELERY_BROKER_URL": url,
        "WHATSAPP_APP_SECRET": "s",
        "WHATSAPP_VERIFY_TOKEN": "t",
        "WAYPOST_METRICS_TOKEN": "m",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ssl.CERT_REQUIRED
