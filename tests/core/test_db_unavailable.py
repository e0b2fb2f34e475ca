"""A transient database error during a request is a 503 with Retry-After, never a 500."""

import psycopg
import pytest
from django.db import IntegrityError, OperationalError
from django.test import RequestFactory

from core.db import DatabaseUnavailableMiddleware

pytestmark = pytest.mark.django_db
middleware = DatabaseUnavailableMiddleware(lambda request: None)


def _operational(sqlstate: str | None) -> OperationalError:
    exc = OperationalError("server closed the connection unexpectedly")
    if sqlstate:
        cause = psycopg.OperationalError("boom")
        cause.sqlstate = sqlstate  # what psycopg sets from the server's answer
        exc.__cause__ = cause
    return exc


@pytest.mark.parametrize("sqlstate", [None, "08006", "57P01", "40P01"])
def test_transient_errors_are_503_with_retry_after(sqlstate, settings):
    settings.WAYPOST_DB_RETRY_AFTER = 7
    request = RequestFactory().post("/api/v1/messages")
    response = middleware.process_exception(request, _operational(sqlstate))
    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert b'"code": "database_unavailable"' in response.content


@pytest.mark.parametrize("exc", [IntegrityError("dup"), ValueError("bug")])
def test_other_errors_are_left_to_django(exc):
    request = RequestFactory().get("/api/v1/messages")
    assert middleware.process_exception(request, exc) is None
