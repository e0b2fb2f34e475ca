"""The reconciler: what did *not* happen. One pass a minute on the beat (the schedule is a
django-celery-beat row created by ``operations/migrations/0001_reconcile_schedule.py``, editable
in the admin); every pass is safe to run twice at once (each rule locks and re-checks what it
changes, in the ledger's lock order). Every action on a message is a ledger event with source
``reconciler``; every rule counts what it did (the task's result, logs, metrics).

This app sits on top of the others and only orchestrates: ``RULES`` is the table of rules —
the rules on messages from ``messaging.sweeps.RULES`` (which the message page reads too), then
the two on webhook deliveries and client callbacks, which live above and below that app. Each
rule names its condition, its threshold and where that is set, what it does and the function
that does it; :func:`reconcile` runs them in order. The table is shown on the admin's operations
page and rendered for the docs by :func:`rules_markdown` — it is not retyped anywhere else.

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

from django.utils import timezone

from callbacks.services import RETRY_FOR, callbacks_expire
from messaging import sweeps
from messaging.sweeps import Fixed, Rule, Setting
from webhooks.services import deliveries_overdue

log = logging.getLogger(__name__)

WEBHOOK_LAG = Setting("WAYPOST_WEBHOOK_LAG_ALERT")
CALLBACK_RETRY_WINDOW = Fixed(
    RETRY_FOR.total_seconds(), "a callback's retry window (callbacks.services.RETRY_FOR)"
)


def deliveries_lagging(*, now=None) -> int:
    """Webhook deliveries still pending after ``WAYPOST_WEBHOOK_LAG_ALERT``: processed now."""
    return deliveries_overdue(older_than=timedelta(seconds=WEBHOOK_LAG.seconds()), now=now)


RULES: tuple[Rule, ...] = (
    *sweeps.RULES,
    Rule(
        name="webhook lag",
        when="a stored webhook delivery still pending after",
        threshold=WEBHOOK_LAG,
        does="processes it now and logs an error (the nudge and the 5-second beat missed it)",
        counts="webhooks.overdue",
        apply=deliveries_lagging,
    ),
    Rule(
        name="callbacks expired",
        when="a client callback not delivered (or its endpoint disabled by a 410) within",
        threshold=CALLBACK_RETRY_WINDOW,
        does="dead-letters it (replayable from the admin)",
        counts="callbacks.expired",
        apply=callbacks_expire,
    ),
)


def reconcile(*, now=None) -> dict[str, int]:
    """One pass of every rule in ``RULES``, in order; returns the counts (zero-valued ones left
    out), keyed by each rule's ``counts`` name."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for rule in RULES:
        counts.update(rule.run(now=now))
    result = {k: v for k, v in sorted(counts.items()) if v}
    if result:
        log.info("reconciler pass: %s", result)
    return result


def rules_rows(*, tenant=None) -> list[dict[str, str]]:
    """The table, one dict per rule in the order a pass runs them; with ``tenant``, each
    threshold says that tenant's value."""
    return [
        {
            "rule": rule.name,
            "when": f"{rule.when} {rule.threshold.describe(tenant)}",
            "does": rule.does,
            "function": rule.function,
        }
        for rule in RULES
    ]


def rules_markdown() -> str:
    """The table in Markdown, for the docs (the defaults, and the settings as configured)."""
    lines = [
        "| Rule | When | What it does | Applied by |",
        "| --- | --- | --- | --- |",
    ]
    for row in rules_rows():
        cells = [row["rule"], row["when"], row["does"], f"`{row['function']}`"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
