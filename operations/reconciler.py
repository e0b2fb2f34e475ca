"""The reconciler: what did *not* happen. One pass a minute on the beat (the schedule is a
django-celery-beat row created by ``operations/migrations/0001_reconcile_schedule.py``, editable
in the admin); every pass is safe to run twice at once (each rule locks and re-checks what it
changes, in the ledger's lock order). Every action on a message is a ledger event with source
``reconciler``; every rule counts what it did (the task's result, logs, metrics).

This app sits on top of the others and only orchestrates; each rule's code lives with the data
it changes.

======================  ==============================================  =========================
Rule                    When (threshold: where it is set, default)      What it does
======================  ==============================================  =========================
accepted, no status     ``accepted`` for longer than the tenant's       flag ``stalled``
                        ``stall_accepted_seconds`` (900)                (accepted_no_status)
held too long           ``held`` (pacing) for over 1 hour: Meta         flag ``stalled``
                        releases or drops held messages within the      (held_too_long)
                        hour (p99)
sent, not delivered     ``sent`` for longer than the tenant's           flag ``stalled``
                        ``stall_sent_seconds`` (900)                    (sent_not_delivered)
authentication TTL      an AUTHENTICATION template ``sent`` for over     flag ``stalled``
                        10 minutes: Meta has dropped it (its TTL)       (auth_ttl_passed)
stall cleared           a provider status moves a stalled message's     ``stall_cleared`` event
                        state (applied with the webhook, not here)      naming the state
unknown submit          ``unknown`` past the tenant's                   the tenant's policy:
                        ``ambiguous_grace_seconds`` (900)               hold (flag stalled,
                                                                        unknown_outcome) or
                                                                        resend (new round)
lost dispatch           a due message not picked up (a lost nudge)      nudge its tenant; a
                        — ``WAYPOST_REDRIVE_AFTER`` (300 s) marks it    ``redriven`` event when
                                                                        it waited that long
dead submit             ``submitting`` for over                         ``unknown`` (never
                        ``WAYPOST_SUBMIT_STUCK_AFTER`` (18 s) with no    resent blindly)
                        answer: its worker died
orphan statuses         parked for over ``WAYPOST_ORPHAN_TTL`` (7 days)  expired, counted
webhook lag             a stored delivery still pending after           processed now, and
                        ``WAYPOST_WEBHOOK_LAG_ALERT`` (60 s)            logged as an error
callbacks expired       a callback not delivered within 24 hours        dead-lettered
                        (also one whose endpoint a 410 disabled)        (replayable)
messages expired        waiting past its ``expires_at`` (ttl_seconds;   ``expired``, never sent
                        600 s for authentication) unclaimed: its        (a drain expires what
                        sender blocked, its tenant paused               it claims itself)
======================  ==============================================  =========================

Meta's quirks, and how the rules treat them (docs/meta-api.md §1.7, §8):

* A user who blocked the business never receives the message and Meta never says so: it stays
  ``sent`` forever. Flagged ``sent_not_delivered`` — for an operator or the client app (the
  ``message.stalled`` callback) to decide; its state is not changed.
* Read receipts can be off: a message that stays ``delivered`` is normal. No rule looks for
  ``read``.
* Meta retries an undeliverable message for its TTL (30 days; 10 minutes for authentication
  templates) and then drops it, and a ``failed`` webhook can come later still. A stall is a
  flag, never a state change: a late ``failed`` or ``delivered`` still applies, and clears it.
* ``delivered`` (or ``read``) can come before ``sent`` — Meta omits ``delivered`` when both
  happen at once — or before the send response is recorded. The state is the highest status
  seen (``messaging.states``), so "no status since accepted" looks at the state, not at a
  ``sent`` event; a status that beat the response is parked and applied when the response
  lands, and the rules see the message's real state.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from callbacks.services import callbacks_expire
from messaging.sweeps import messages_expire, messages_redrive, unknown_resolve
from messaging.track.inbound import orphans_expire
from messaging.track.stalls import stalls_flag
from webhooks.services import deliveries_overdue

log = logging.getLogger(__name__)


def reconcile(*, now=None) -> dict[str, int]:
    """One pass of every rule; returns the counts (zero-valued ones left out)."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for reason, n in stalls_flag(now=now).items():
        counts[f"stalled.{reason}"] += n
    for action, n in unknown_resolve(now=now).items():
        counts[f"unknown.{action}"] += n
    for key, n in messages_redrive(now=now).items():
        counts[f"dispatch.{key}"] += n
    counts["orphans.expired"] += orphans_expire(
        older_than=timedelta(seconds=settings.WAYPOST_ORPHAN_TTL), now=now
    )
    counts["webhooks.overdue"] += deliveries_overdue(
        older_than=timedelta(seconds=settings.WAYPOST_WEBHOOK_LAG_ALERT), now=now
    )
    counts["callbacks.expired"] += callbacks_expire(now=now)
    counts["messages.expired"] += messages_expire(now=now)
    result = {k: v for k, v in sorted(counts.items()) if v}
    if result:
        log.info("reconciler pass: %s", result)
    return result
