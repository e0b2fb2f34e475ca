"""What may leave for Sentry, and the one place the SDK is set up (:func:`init`).

* The SDK collects nothing about people or requests by itself (:data:`DATA_COLLECTION`: no
  user, cookies, headers, bodies, query strings, database parameters or stack frames' local
  variables — they hold recipients, payloads and keys).
* ``before_send`` drops the values of anything that can hold a secret or a user's data
  (tokens, signatures, message parameters, bodies, metadata) and masks phone numbers and
  webhook route tokens (a request's URL) in every remaining string.
* Error logs become events (through ``before_send``); log records are not sent as Sentry
  *logs*, which would not pass it.

Works with sentry-sdk 2.76 and later: 3.0 removed ``send_default_pii`` and
``include_local_variables`` (``data_collection`` replaces them), made error logs as events
opt-in and sends every ``INFO`` record as a Sentry log unless told otherwise.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from core.logging import mask

# Secret-ish words anywhere in a key; the data-carrying names only as whole words of the key
# ("text", "body_text" — not "contexts", which the SDK itself needs intact).
SENSITIVE = re.compile(
    r"token|secret|passw|authori[sz]ation|api[_-]?key|signature|cookie|session|credential|"
    r"(?:^|[_\-.])(?:parameters|components|payload|metadata|body|text|recipient|to|wa_id)"
    r"(?:$|[_\-.])",
    re.IGNORECASE,
)
FILTERED = "[Filtered]"


def scrub(value: Any, key: str = "") -> Any:
    if key and SENSITIVE.search(key):
        return FILTERED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask(value)
    return value


def before_send(event: dict, hint: dict) -> dict:
    return scrub(event)


SDK_3 = int(sentry_sdk.VERSION.split(".")[0]) >= 3

DATA_COLLECTION = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "http_bodies": [],
    "url_query_params": {"mode": "off"},
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
    "stack_frame_variables": False,
}


def logging_integration() -> LoggingIntegration:
    """Error logs as events, breadcrumbs from INFO, no Sentry logs — in either SDK's terms
    (2.x: ``level`` is the breadcrumbs'; 3.x: the Sentry logs')."""
    if SDK_3:
        return LoggingIntegration(level=None, event_level=logging.ERROR)
    return LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)


def init(*, dsn: str | None, integrations: tuple = (), **options) -> None:
    """``sentry_sdk.init`` with what may leave fixed here; ``options``: the deployment's own
    (environment, sample rate) or a test's transport. Traces (``SENTRY_TRACES_SAMPLE_RATE``)
    are scrubbed as events are: a span's description is a request's URL."""
    if SDK_3:
        kept = {"before_send_span": before_send}
    else:  # 2.x: the flags data_collection replaces, in case this release predates them
        kept = {
            "before_send_transaction": before_send,
            "include_local_variables": False,
        }
    sentry_sdk.init(
        dsn=dsn,
        data_collection=DATA_COLLECTION,
        integrations=[logging_integration(), *integrations],
        before_send=before_send,
        **kept,
        **options,
    )
