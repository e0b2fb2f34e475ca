"""What a provider's error means for the next step, independent of any provider's codes.

Classes (each provider module maps its own codes onto them):

* ``retry_backoff`` — transient: exponential backoff with jitter, capped per tenant;
* ``cool_down``     — a limit was hit: wait ``delay`` seconds (scope: recipient, sender or
                      template), then try again; does not count against the attempt cap;
* ``never_retry``   — the request itself is wrong or the user unreachable: rejected;
* ``alert_tenant``  — the sender's account/credentials need a human: stop sending for that
                      sender, keep its messages queued, surface it in the admin;
* ``ambiguous``     — the request may have been processed: never resend blindly.

A code a provider does not know is classified by the HTTP status
(:func:`classify_by_http_status`): 5xx ambiguous, 429 backoff, 401/403 alert, other 4xx never
retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorClass(StrEnum):
    """The provider-side error classes. ``messaging.states.ErrorClass`` holds the same values
    (plus the pipeline's own), so a classification is stored as it is."""

    RETRY_BACKOFF = "retry_backoff"
    COOL_DOWN = "cool_down"
    NEVER_RETRY = "never_retry"
    ALERT_TENANT = "alert_tenant"
    AMBIGUOUS = "ambiguous"


class CoolDownScope(StrEnum):
    RECIPIENT = "recipient"
    SENDER = "sender"
    TEMPLATE = "template"


@dataclass(frozen=True)
class Classification:
    error_class: ErrorClass
    delay: float = 0.0  # cool-down seconds
    scope: str = ""  # a CoolDownScope for cool-downs


def classify_by_http_status(http_status: int | None) -> Classification:
    status = http_status or 0
    if status >= 500:
        return Classification(ErrorClass.AMBIGUOUS)
    if status == 429:
        return Classification(ErrorClass.RETRY_BACKOFF)
    if status in (401, 403):
        return Classification(ErrorClass.ALERT_TENANT)
    return Classification(ErrorClass.NEVER_RETRY)


class ProviderError(Exception):
    """A management call (template create, edit, list) failed; ``code`` is the provider's when
    known, ``status`` None when no answer came back."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
