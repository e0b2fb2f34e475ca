"""The message page's "what next" reads the reconciler's rules (``messaging.sweeps.RULES``):
the rule that acts first on a message in its state, with the deadline its threshold gives —
the tenant's own value where the threshold is a tenant setting. No database: unsaved rows."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from messaging import sweeps
from messaging.models import Message
from messaging.selectors import message_next_rule, message_next_step
from messaging.states import MessageState
from tenants.models import SenderNumber, SenderStatus, Tenant

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def message(state, *, age=timedelta(0), category="UTILITY", **fields):
    tenant = fields.pop("tenant", None) or Tenant(slug="acme", stall_accepted_seconds=60)
    return Message(
        tenant=tenant,
        sender=SenderNumber(tenant=tenant, status=SenderStatus.ACTIVE),
        state=state,
        state_changed_at=NOW - age,
        template_category=category,
        **fields,
    )


def test_an_accepted_message_is_flagged_at_its_tenants_threshold():
    step = message_next_step(message=message(MessageState.ACCEPTED), now=NOW)
    assert step == (
        "Waits for Meta's status. If still accepted at 2026-12-01 12:01:00 UTC, the "
        "reconciler's rule “accepted, no status” flags it stalled (accepted_no_status)."
    )


def test_an_authentication_template_meets_its_ttl_before_the_sent_threshold():
    rule, when = message_next_rule(message=message(MessageState.SENT, category="AUTHENTICATION"))
    assert (rule.name, when) == ("authentication TTL", NOW + timedelta(seconds=600))
    rule, when = message_next_rule(message=message(MessageState.SENT))
    assert (rule.name, when) == ("sent, not delivered", NOW + timedelta(seconds=900))


def test_a_waiting_message_with_a_time_to_live_says_when_it_expires():
    expires = NOW + timedelta(minutes=10)
    step = message_next_step(
        message=message(MessageState.QUEUED, expires_at=expires, category="AUTHENTICATION"),
        now=NOW,
    )
    assert step.startswith("Due: the tenant's next drain sends it (now). If still queued at ")
    assert "2026-12-01 12:10:00 UTC" in step and "“messages expired” marks it expired" in step
    assert message_next_rule(message=message(MessageState.QUEUED)) is None  # no TTL, no rule


def test_a_past_deadline_waits_for_the_next_pass():
    step = message_next_step(message=message(MessageState.HELD, age=timedelta(hours=2)), now=NOW)
    assert "If still held at its next pass (due since 2026-12-01 11:00:00 UTC)" in step
    assert "“held too long” flags it stalled (held_too_long)" in step


def test_the_page_follows_a_changed_rule(monkeypatch):
    slower = tuple(
        replace(r, threshold=sweeps.Fixed(7200, "test")) if r.name == "held too long" else r
        for r in sweeps.RULES
    )
    monkeypatch.setattr("messaging.selectors.RULES", slower)
    rule, when = message_next_rule(message=message(MessageState.HELD))
    assert (rule.name, when) == ("held too long", NOW + timedelta(hours=2))


def test_final_and_delivered_messages_have_no_rule():
    for state in (MessageState.DELIVERED, MessageState.READ, MessageState.FAILED):
        assert message_next_rule(message=message(state)) is None
    assert "nothing to do" in message_next_step(message=message(MessageState.DELIVERED), now=NOW)
