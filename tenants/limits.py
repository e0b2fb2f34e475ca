"""Meta's messaging limit, as a number: pure, no database.

The limit is how many unique WhatsApp users a business portfolio's numbers together may reach
outside a customer-service window in a moving 24 hours: 250 for a new portfolio, then 2,000,
10,000, 100,000 and unlimited (Meta: messaging-limits,
https://developers.facebook.com/docs/whatsapp/messaging-limits). Meta says it two ways, and
Waypost accepts both wherever it arrives (webhook, poll, operator):

* a tier name — ``TIER_50``, ``TIER_250``, ``TIER_1K`` (the old ladder), ``TIER_2K``,
  ``TIER_10K``, ``TIER_100K``, ``TIER_UNLIMITED``, and ``TIER_NOT_SET`` (a number that has not
  sent yet: nothing known) — in ``whatsapp_business_manager_messaging_limit``,
  ``max_daily_conversations_per_business`` and the older ``current_limit``;
* a number — ``2000`` in the example payload of ``business_capability_update`` (whose field
  table says ``TIER_…``), ``-1`` for unlimited.

Anything else is *unknown* (``None``): logged, never raised, so a shape Meta changes without
notice ("subject to change") costs a log line, not a failed webhook.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

UNLIMITED = -1
#: A tier name: TIER_<digits> with an optional K (thousands) or M (millions).
_TIER = re.compile(r"TIER_(\d{1,9})([KM]?)")
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000}
_UNLIMITED_WORDS = {"TIER_UNLIMITED", "UNLIMITED", "-1"}
_UNKNOWN_WORDS = {"TIER_NOT_SET", "NOT_SET", ""}


def parse_limit(value: object) -> int | None:
    """Meta's messaging limit in either of its forms → unique users per 24 hours,
    :data:`UNLIMITED` (-1), or None when unknown (``TIER_NOT_SET``, absent, or not understood
    — the last is logged)."""
    if value is None or isinstance(value, bool):  # bool is an int: True is no limit
        return _not_understood(value) if isinstance(value, bool) else None
    if isinstance(value, float):
        if not value.is_integer():
            return _not_understood(value)
        value = int(value)
    if isinstance(value, int):
        if value == UNLIMITED:
            return UNLIMITED
        return value if value > 0 else _not_understood(value)
    if not isinstance(value, str):
        return _not_understood(value)
    text = value.strip().upper()
    if text in _UNLIMITED_WORDS:
        return UNLIMITED
    if text in _UNKNOWN_WORDS:
        return None
    if text.isdigit():
        number = int(text)
        return number if number > 0 else _not_understood(value)
    match = _TIER.fullmatch(text)
    if match is None:
        return _not_understood(value)
    number = int(match.group(1)) * _SCALE[match.group(2)]
    return number if number > 0 else _not_understood(value)


def _not_understood(value: object) -> None:
    log.warning("messaging limit not understood, taken as unknown: %r", value)
    return None


def limit_label(limit: int | None) -> str:
    """A limit for people: ``2,000``, ``unlimited``, ``unknown``."""
    if limit is None:
        return "unknown"
    if limit == UNLIMITED:
        return "unlimited"
    return f"{limit:,}"
