"""What every process of the stack does first: check the deployment, then say what it runs.

``process_started("web")`` (``config.wsgi``), ``("worker")`` and ``("beat")`` (Celery's init
signals, ``config.celery_app``) and ``("callbacks")`` (``manage.py deliver_callbacks``) run
Django's system checks — ``core.checks`` holds the deployment's rules — and raise
``SystemCheckError`` on an error, so a process that would disagree with its peers refuses to
start instead of running wrong. Then one log line names the settings module, the deployment,
where coordination state lives, the broker (credentials masked) and the shared queues
(``core.queues``), so two processes on different settings are visible at a glance in the logs.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand

log = logging.getLogger("waypost.startup")


def process_started(process: str, *, check: bool = True) -> str:
    """Check (unless the caller already did) and log the start line; returns it."""
    if check:
        BaseCommand().check()  # raises SystemCheckError; prints warnings to stderr
    line = startup_line(process)
    log.info("%s", line)
    return line


def startup_line(process: str) -> str:
    coordination = settings.WAYPOST_COORDINATION
    if coordination == "redis":
        coordination = f"redis ({masked_url(settings.REDIS_URL)})"
    else:
        coordination = "process memory"
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    return (
        f"waypost {process} (pid {os.getpid()}): settings {module}"
        f" ({settings.WAYPOST_DEPLOYMENT}), coordination {coordination}, broker "
        f"{masked_url(settings.CELERY_BROKER_URL)}, queues send x{settings.WAYPOST_SEND_QUEUES}"
        f" bulk x{settings.WAYPOST_BULK_QUEUES}"
    )


def masked_url(url: str) -> str:
    """The URL without its user and password; each of a Celery failover list (``;``)."""
    return ";".join(_masked_one(part) for part in url.split(";"))


def _masked_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "(unparseable URL)"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
