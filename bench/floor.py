"""The physical floor of a request on this machine: a WSGI app with no Django in it, served by
gunicorn with the Procfile's web flags (``bench/run.py``'s ``floor`` scenario).

* ``GET /empty`` — answers at once: what gunicorn itself costs per request;
* ``POST /insert`` — one ``INSERT`` of the request's body into ``bench_floor`` (autocommit, a
  connection per thread, values bound apart from the statement, not prepared — as Waypost's
  own statements), answered 202 with the row's id: the least any system that stores a request
  before it answers can do.

Waypost's single send is one of the second kind plus its checks; the gap between the two is
what Waypost's own code costs per request. ``DATABASE_URL`` names the database.
"""

from __future__ import annotations

import json
import os
import threading

import psycopg

TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor "
    "(id bigserial PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
INSERT = "INSERT INTO bench_floor (body) VALUES (%s::jsonb) RETURNING id"
_local = threading.local()


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        conn.prepare_threshold = None  # never prepared, as Django's connections (and a pooler)
    return conn


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/empty":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/insert" and environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length).decode()
        [(row,)] = _connection().execute(INSERT, (data,)).fetchall()
        answer = json.dumps({"id": row}).encode()
        start_response(
            "202 Accepted",
            [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
        )
        return [answer]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]
