"""The message state machine: the one place that says what state a message is in.

A message's state is a **projection of its ledger** (``MessageEvent`` rows). It is not a
sequence of transitions: it is the state of the event with the highest *precedence* among the
message's events. Because "the maximum of a set" ignores order and duplicates, any
permutation of the same events, with any duplicates, folds to the same state; and because the
maximum can be taken one event at a time, the stored state is kept current with a conditional
update (``... WHERE state_rank < new_rank``), so a late or concurrent write can never move a
message backwards.

Precedence has three tiers. Provider facts beat terminal pipeline facts, which beat the
pipeline's progress; inside the pipeline tier a later round (a message re-enters the
pipeline for each retry, cool-down or resend) beats an earlier one.

  event type          state             tier  rank inside the tier
  ------------------  ----------------  ----  -------------------------------------------------
  requested           queued            0     round 0, step 0
  requeued            queued            0     (round, 0)    sender unblocked, resend, cool-down
  submit_started      submitting        0     (round, 1)
  submit_unknown      unknown           0     (round, 2)  timeout / connection lost / 5xx
  retry_scheduled     retry_scheduled   0     (round, 3)
  cancelled           cancelled         1     1   only allowed before submission
  rejected            rejected          1     2   refused before or at submission, never sent
  dead_lettered       failed            1     3   retries exhausted (class retries_exhausted)
  marked_failed       failed            1     4   an operator gave up on it
  expired             expired           1     5   its time to live passed before it was sent
  accepted            accepted          2     50  Meta answered a wamid, message_status accepted
  held                held              2     55  held_for_quality_assessment (pacing)
  status_sent         sent              2     60
  status_failed       failed            2     70
  status_delivered    delivered         2     80
  status_read         read              2     90

Every other event type (validated, payload_built, submit_responded, sanitized, sender_blocked,
flagged_stalled, stall_cleared, redriven, ...) is recorded in the ledger but moves no state.

Meta's semantics, decided here:
* ``read`` without ``delivered`` is ``read`` (Meta omits ``delivered`` when both happen at
  once); ``delivered`` after ``read`` does not go back.
* ``failed`` after ``delivered`` (a second device): **delivered wins**. Meta: "any message that
  triggers a delivered webhook has been delivered to at least one of the user's devices". The
  failure stays in the ledger.
* ``failed`` after ``sent``: failed. ``sent`` after ``failed`` (late webhook): still failed.
* A status webhook resolves an ``unknown`` submit: provider facts outrank the pipeline tier.
* A provider fact also outranks ``cancelled``/``rejected``/``dead_lettered``: if Meta says it
  sent the message, it was sent, whatever we believed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models

from templates_registry.models import TemplateStatus
from whatsapp import Classification, ErrorInfo, WhoActs
from whatsapp import error_info as provider_error_info

# A message's ``error_class`` values have one home, beside the provider codes they classify;
# named here too because this module is the vocabulary of a message.
from whatsapp.errors import ErrorClass

__all__ = [
    "NOT_SUBMITTED",
    "OWN_ERRORS",
    "ErrorClass",
    "EventSource",
    "EventType",
    "Fact",
    "MessageState",
    "StallReason",
    "decided_by_provider",
    "error_info",
    "fold",
    "precedence",
]


class MessageState(models.TextChoices):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    RETRY_SCHEDULED = "retry_scheduled"
    ACCEPTED = "accepted"
    HELD = "held"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class EventType(models.TextChoices):
    REQUESTED = "requested"
    SANITIZED = "sanitized"
    VALIDATED = "validated"
    PAYLOAD_BUILT = "payload_built"
    SUBMIT_STARTED = "submit_started"
    SUBMIT_RESPONDED = "submit_responded"
    SUBMIT_UNKNOWN = "submit_unknown"
    RETRY_SCHEDULED = "retry_scheduled"
    REQUEUED = "requeued"
    SENDER_BLOCKED = "sender_blocked"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"
    MARKED_FAILED = "marked_failed"
    EXPIRED = "expired"
    ACCEPTED = "accepted"
    HELD = "held"
    STATUS_SENT = "status_sent"
    STATUS_DELIVERED = "status_delivered"
    STATUS_READ = "status_read"
    STATUS_FAILED = "status_failed"
    FLAGGED_STALLED = "flagged_stalled"
    STALL_CLEARED = "stall_cleared"
    REDRIVEN = "redriven"


class EventSource(models.TextChoices):
    API = "api"
    PIPELINE = "pipeline"
    PROVIDER = "provider"
    WEBHOOK = "webhook"
    RECONCILER = "reconciler"
    OPERATOR = "operator"


class StallReason(models.TextChoices):
    """Why the reconciler flagged a message (operations/reconciler.py has the rules)."""

    ACCEPTED_NO_STATUS = "accepted_no_status", "Accepted, no status webhook in time"
    HELD_TOO_LONG = "held_too_long", "Held for quality assessment for over an hour"
    SENT_NOT_DELIVERED = "sent_not_delivered", "Sent, not delivered in time"
    AUTH_TTL_PASSED = "auth_ttl_passed", "Authentication template not delivered within its TTL"
    UNKNOWN_OUTCOME = "unknown_outcome", "Submit outcome unknown past the grace period"


_TIER = 1_000_000_000
_PIPELINE = {
    EventType.REQUESTED: (MessageState.QUEUED, 0),
    EventType.REQUEUED: (MessageState.QUEUED, 0),
    EventType.SUBMIT_STARTED: (MessageState.SUBMITTING, 1),
    EventType.SUBMIT_UNKNOWN: (MessageState.UNKNOWN, 2),
    EventType.RETRY_SCHEDULED: (MessageState.RETRY_SCHEDULED, 3),
}
_TERMINAL = {
    EventType.CANCELLED: (MessageState.CANCELLED, 1),
    EventType.REJECTED: (MessageState.REJECTED, 2),
    EventType.DEAD_LETTERED: (MessageState.FAILED, 3),
    EventType.MARKED_FAILED: (MessageState.FAILED, 4),
    EventType.EXPIRED: (MessageState.EXPIRED, 5),
}
_PROVIDER = {
    EventType.ACCEPTED: (MessageState.ACCEPTED, 50),
    EventType.HELD: (MessageState.HELD, 55),
    EventType.STATUS_SENT: (MessageState.SENT, 60),
    EventType.STATUS_FAILED: (MessageState.FAILED, 70),
    EventType.STATUS_DELIVERED: (MessageState.DELIVERED, 80),
    EventType.STATUS_READ: (MessageState.READ, 90),
}

# States in which nothing has been submitted for the current attempt (cancel is allowed).
NOT_SUBMITTED = frozenset({MessageState.QUEUED, MessageState.RETRY_SCHEDULED})


def decided_by_provider(state_rank: int) -> bool:
    """Has a provider fact (accepted, held, a status webhook) set the message's state?"""
    return state_rank >= 2 * _TIER


@dataclass(frozen=True)
class Fact:
    """The part of an event the fold reads."""

    type: str
    round: int = 0


def precedence(fact: Fact) -> tuple[int, MessageState] | None:
    """(rank, state) for an event that moves state; None for one that does not."""
    if fact.type in _PROVIDER:
        state, rank = _PROVIDER[fact.type]
        return 2 * _TIER + rank, state
    if fact.type in _TERMINAL:
        state, rank = _TERMINAL[fact.type]
        return _TIER + rank, state
    if fact.type in _PIPELINE:
        state, step = _PIPELINE[fact.type]
        return fact.round * 10 + step, state
    return None


def fold(facts: Iterable[Fact]) -> tuple[int, MessageState]:
    """The state a set of events gives: the state of the highest-precedence event."""
    best = (-1, MessageState.QUEUED)
    for fact in facts:
        ranked = precedence(fact)
        if ranked is not None and ranked[0] > best[0]:
            best = ranked
    return best


# --- what a message's error code means --------------------------------------------------------


def _own(code: str, title: str, meaning: str, who: WhoActs, error_class: ErrorClass) -> ErrorInfo:
    return ErrorInfo(code, title, meaning, who, Classification(error_class))


_IN_REVIEW = (TemplateStatus.PENDING, TemplateStatus.IN_APPEAL)

#: The error codes Waypost gives a message itself, when no provider answered with one (the
#: pipeline writes each from here: its code, its title, its class). A provider's codes and the
#: reasons a send stores without one are the provider's table (``whatsapp.error_info``).
OWN_ERRORS: dict[str, ErrorInfo] = {
    info.code: info
    for info in (
        _own(
            "expired",
            "Not sent: its time to live passed first",
            "The message could not be sent before its time to live passed (ttl_seconds, or an "
            "authentication template's 10 minutes), so it was not sent at all.",
            WhoActs.NOBODY,
            ErrorClass.INVALID,
        ),
        _own(
            "recipient_suppressed",
            "Recipient opted out",
            "The recipient is on the tenant's suppression list, so Waypost refused the message.",
            WhoActs.RECIPIENT,
            ErrorClass.INVALID,
        ),
        _own(
            "marketing_stopped",
            "The user stopped marketing messages from this business",
            "The user stopped marketing messages from this business, so Waypost refused this "
            "marketing template; other templates still go.",
            WhoActs.RECIPIENT,
            ErrorClass.INVALID,
        ),
        _own(
            "template_not_sendable",
            "Template not sendable",
            "The template was disabled, rejected or deleted after the message was accepted, so "
            "Waypost refused it.",
            WhoActs.BUSINESS,
            ErrorClass.INVALID,
        ),
        _own(
            "missing_credential",
            "The sender has no credential",
            "Nothing was sent: the sender has no access token or API key, so sending from it "
            "stops until one is set.",
            WhoActs.OPERATOR,
            ErrorClass.ALERT_TENANT,
        ),
        _own(
            "media_upload_failed",
            "The header's media file could not be uploaded again",
            "The provider's id for the file the message's header names was missing or about "
            "to expire (it lasts 30 days), and uploading the file again failed: nothing was "
            "sent; Waypost retries with backoff (the file's page in the admin says why).",
            WhoActs.NOBODY,
            ErrorClass.RETRY_BACKOFF,
        ),
        _own(
            "media_not_found",
            "The header's media file was deleted",
            "The media file the message's header names was deleted after the message was "
            "accepted, so Waypost refused it.",
            WhoActs.BUSINESS,
            ErrorClass.NEVER_RETRY,
        ),
        _own(
            "worker_lost",
            "The worker stopped during the submit; the outcome is unknown",
            "The worker stopped while the request was in flight: the provider may have sent "
            "it, so Waypost waits for a status instead of resending.",
            WhoActs.NOBODY,
            ErrorClass.AMBIGUOUS,
        ),
        *(
            _own(
                f"template_{status.lower()}",
                f"Template is {status}",
                f"The template is {status.lower().replace('_', ' ')} at the provider: the "
                "message waits and is tried again when the template may be sent.",
                # Review and appeal take their time; a pause, lock or limit needs the business.
                WhoActs.NOBODY if status in _IN_REVIEW else WhoActs.BUSINESS,
                ErrorClass.COOL_DOWN,
            )
            for status in sorted(TemplateStatus.WAITING)
        ),
    )
}


def error_info(code: str, *, provider: str) -> ErrorInfo | None:
    """What a message's ``error_code`` means — title, meaning, who must act, class: Waypost's
    own (:data:`OWN_ERRORS`) or its sender's ``provider``'s. None for an empty or unknown code."""
    return OWN_ERRORS.get(code) or provider_error_info(code, provider=provider)
