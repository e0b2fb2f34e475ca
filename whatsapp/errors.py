"""What an error means: for the next step (its class) and for the people who read it (its
title, what it means in one sentence, who must act).

Classes — each provider's table (``BaseProvider.error_table``; Meta's is
:data:`whatsapp.meta_errors.META_ERRORS`) maps its own codes onto the first five:

* ``retry_backoff`` — transient: exponential backoff with jitter, capped per tenant;
* ``cool_down``     — a limit was hit: wait ``delay`` seconds (scope: recipient, sender or
                      template), then try again; does not count against the attempt cap;
* ``never_retry``   — the request itself is wrong or the user unreachable: rejected;
* ``alert_tenant``  — the sender's account/credentials need a human: stop sending for that
                      sender, keep its messages queued, surface it in the admin;
* ``ambiguous``     — the request may have been processed: never resend blindly.

The last two are what the send pipeline concludes on its own, stored in the same field of a
message (one vocabulary, so a classification is stored as it is):

* ``retries_exhausted`` — a ``retry_backoff`` error, retried until the tenant's caps;
* ``invalid``           — refused before submission (expired, template not sendable…).

A code a provider does not know is classified by the HTTP status
(:func:`classify_by_http_status`): 5xx ambiguous, 429 backoff, 401/403 alert, other 4xx never
retry. An error without a provider code is stored with a reason instead (``not_sent``,
``no_response``, ``http_<status>``): :func:`reason_info` says what those mean.

A few errors also say something about the user beyond the next step — a :class:`Policy`
(docs/meta-api.md §11.2): callers ask the classification, never compare a provider's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db import models


class ErrorClass(models.TextChoices):
    """What an error means for the next step (see the module docstring): the values of a
    message's ``error_class``."""

    RETRY_BACKOFF = "retry_backoff", "Retry with backoff"
    COOL_DOWN = "cool_down", "Retry after a cool-down"
    NEVER_RETRY = "never_retry", "Never retry"
    ALERT_TENANT = "alert_tenant", "Alert the tenant (sending stopped)"
    AMBIGUOUS = "ambiguous", "Outcome unknown"
    RETRIES_EXHAUSTED = "retries_exhausted", "Retries exhausted"
    INVALID = "invalid", "Refused before submission"


class CoolDownScope(StrEnum):
    RECIPIENT = "recipient"
    SENDER = "sender"
    TEMPLATE = "template"


class WhoActs(models.TextChoices):
    """Who must do something before the same message can succeed."""

    #: Whoever runs Waypost: the sender's credential, the provider app's permissions, the
    #: number's registration.
    OPERATOR = "operator", "The operator"
    #: The tenant: its request (parameters, template), its templates, its account at the
    #: provider (policy, payment, display name).
    BUSINESS = "business", "The business"
    #: The WhatsApp user the message is for.
    RECIPIENT = "recipient", "The recipient"
    #: Nobody: Waypost retries, waits or settles it — or nothing can be done.
    NOBODY = "nobody", "Nobody: Waypost retries"


class Policy(StrEnum):
    """What a refusal says about the user, beyond the next step (docs/meta-api.md §11.2)."""

    #: The user stopped marketing messages from this business: record it, send them no more.
    MARKETING_STOPPED = "marketing_stopped"
    #: The provider's per-user marketing limit: the tenant may ask for one more try, later.
    MARKETING_LIMIT = "marketing_limit"


@dataclass(frozen=True)
class Classification:
    error_class: ErrorClass
    delay: float = 0.0  # cool-down seconds
    scope: str = ""  # a CoolDownScope for cool-downs
    policy: str = ""  # a Policy, when the error says one


@dataclass(frozen=True)
class ErrorInfo:
    """One error code, for people and for the pipeline: its ``title``, what it ``means`` (one
    sentence), ``who_acts``, and its :class:`Classification`."""

    code: str
    title: str
    meaning: str
    who_acts: WhoActs
    classification: Classification

    @property
    def error_class(self) -> ErrorClass:
        return self.classification.error_class


def classify_by_http_status(http_status: int | None) -> Classification:
    status = http_status or 0
    if status >= 500:
        return Classification(ErrorClass.AMBIGUOUS)
    if status == 429:
        return Classification(ErrorClass.RETRY_BACKOFF)
    if status in (401, 403):
        return Classification(ErrorClass.ALERT_TENANT)
    return Classification(ErrorClass.NEVER_RETRY)


#: The reasons stored when a send has no provider code (``SendAnswer.reason``).
REASONS: dict[str, ErrorInfo] = {
    "not_sent": ErrorInfo(
        "not_sent",
        "Not sent",
        "The connection to the provider could not be made, so nothing was sent; Waypost "
        "retries with backoff.",
        WhoActs.NOBODY,
        Classification(ErrorClass.RETRY_BACKOFF),
    ),
    "no_response": ErrorInfo(
        "no_response",
        "No answer",
        "The request left but no answer came back (a timeout or a dropped connection): the "
        "provider may have sent the message, so Waypost waits for a status instead of resending.",
        WhoActs.NOBODY,
        Classification(ErrorClass.AMBIGUOUS),
    ),
}


def reason_info(reason: str) -> ErrorInfo | None:
    """What a reason stored instead of a provider code means: ``not_sent``, ``no_response`` or
    ``http_<status>`` (an error answer without a code, classified by its status); None for
    anything else."""
    if reason in REASONS:
        return REASONS[reason]
    status = reason.removeprefix("http_")
    if not (reason.startswith("http_") and status.isdigit()):
        return None
    classification = classify_by_http_status(int(status))
    meaning, who = {
        ErrorClass.AMBIGUOUS: (
            "The provider failed with a server error and no code: it may have sent the "
            "message, so Waypost waits for a status instead of resending.",
            WhoActs.NOBODY,
        ),
        ErrorClass.RETRY_BACKOFF: (
            "The provider asked Waypost to slow down, without a code; Waypost retries with "
            "backoff.",
            WhoActs.NOBODY,
        ),
        ErrorClass.ALERT_TENANT: (
            "The provider refused the sender's credential, without a code: sending from this "
            "number stops until it is fixed.",
            WhoActs.OPERATOR,
        ),
    }.get(
        classification.error_class,
        (
            "The provider refused the request without a code; the same request would fail "
            "again (check the sender's settings and the provider's answer in the history).",
            WhoActs.OPERATOR,
        ),
    )
    return ErrorInfo(reason, f"HTTP {status} without an error code", meaning, who, classification)


class ProviderError(Exception):
    """A management call (template create, edit, list) failed; ``code`` is the provider's when
    known, ``status`` None when no answer came back."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
