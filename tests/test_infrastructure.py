"""The suite runs on the real services `make test` starts, never on SQLite or a fake broker."""

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery_app import app


def test_database_is_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


@pytest.mark.redis
def test_redis_is_reachable_and_is_the_broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.ping()
    assert app.conf.broker_url == settings.REDIS_URL
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
