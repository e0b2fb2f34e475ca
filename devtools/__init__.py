"""Developer tools: what runs Waypost for a person or a test, never in production.

* ``manage.py demo`` (``make demo``): the whole flow on embedded defaults (SQLite, an
  in-process broker, the sandbox as a child process).
* ``servers``: the sandbox as its own process, a webhook sink, a client app's callback receiver.
* ``worker``: real Celery worker, beat and callback-deliverer processes on the test database.

The test suite and the benchmarks share these; nothing in the product imports this package.
"""
