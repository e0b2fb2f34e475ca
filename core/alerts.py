"""Alerts for on-call people: a log line, and a Sentry event tagged with the tenant when
``SENTRY_DSN`` is set (``sentry_sdk`` does nothing otherwise). Stalls, blocked senders, a
disabled callback endpoint and webhook lag raise them — aggregated by the caller (one per
tenant and reason per pass), never one per message."""

from __future__ import annotations

import logging

import sentry_sdk

log = logging.getLogger("waypost.alerts")


def alert(title: str, *, tenant: str = "", level: str = "warning", **context) -> None:
    log.log(
        logging.ERROR if level == "error" else logging.WARNING,
        "%s%s",
        title,
        f" (tenant {tenant})" if tenant else "",
        extra={"alert": title, "tenant": tenant, **context},
    )
    with sentry_sdk.new_scope() as scope:
        if tenant:
            scope.set_tag("tenant", tenant)
        for key, value in context.items():
            scope.set_extra(key, value)
        sentry_sdk.capture_message(title, level=level)
