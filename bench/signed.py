"""Signed Meta status webhooks for the load and fault-injection runs (``make bench``,
``make chaos``), built by the sandbox's wire module — the one builder of Meta's envelope
outside the product."""

from __future__ import annotations

from devtools.stack import APP_SECRET
from sandbox import wire


def signed_status(sender: dict, wamid: str, recipient: str, status: str, n: int) -> tuple[str, str]:
    """A Meta status webhook for one message, as the sandbox (or Meta) would post it, and its
    ``X-Hub-Signature-256`` header under ``APP_SECRET``: ``(signature, body)``. ``sender`` is
    ``create_tenant``'s ``sender`` (``phone_number_id``, ``waba_id``); ``n`` makes the
    timestamp, and so the body, unique."""
    item = wire.status(
        wamid,
        status,
        1_790_000_000 + n,
        recipient_id=recipient.lstrip("+"),
        pricing=wire.pricing("utility") if status == "delivered" else None,
    )
    value = wire.messages_value(sender["phone_number_id"], "15550000000", statuses=[item])
    body = wire.dumps(wire.envelope(sender["waba_id"], "messages", value))
    return wire.sign(body, APP_SECRET), body.decode()
