"""Meta's messaging limit, per business portfolio (docs/meta-api.md §3.3, §12).

Meta's rule (https://developers.facebook.com/documentation/business-messaging/whatsapp/messaging-limits):
a business portfolio may reach at most ``limit`` unique WhatsApp users with messages *outside*
a customer-service window in a moving 24 hours, shared by every number of every WABA in the
portfolio. Templates inside a window (the user wrote to that number in the last 24 hours) are
not counted, and a user already reached in the window is not counted again.

What happens beyond the limit is not documented (Meta's support/error-codes page lists no code
for it; BSPs report such sends failing): the sandbox accepts the send (200 and a wamid, as
Meta does) and then sends one ``failed`` status with 131026 "Message undeliverable", its
details naming the messaging limit.

A portfolio is the WABA itself unless ``/_sandbox/numbers`` gave the WABA a ``business_id``:
WABAs with the same business id share one portfolio. The default limit is unlimited, so a
sandbox nobody configured behaves as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sandbox.wire import MetaError

# Meta's tiers (messaging-limits page; webhooks' TIER_* values). TIER_50 is in Meta's
# phone_number_quality_update table and is the smallest limit a test can ask for.
TIERS: dict[int, str] = {
    50: "TIER_50",
    250: "TIER_250",
    2000: "TIER_2K",
    10000: "TIER_10K",
    100000: "TIER_100K",
}
UNLIMITED_TIER = "TIER_UNLIMITED"
# Values a phone_number_quality_update's current_limit/old_limit may carry (its reference).
QUALITY_UPDATE_LIMITS = (*TIERS.values(), UNLIMITED_TIER, "TIER_NOT_SET")
WEBHOOK_FORMS = ("integer", "tier", "none")
REFUSED_DETAILS = (
    "Message failed to send because the business portfolio's messaging limit was reached: "
    "it has already reached its limit of unique users outside a customer service window "
    "in a moving 24 hours."
)


class LimitReached(MetaError):
    """The `failed` status's error of a send beyond the portfolio's messaging limit."""

    def __init__(self) -> None:
        super().__init__(131026, REFUSED_DETAILS)


def parse_limit(value: Any) -> int | None:
    """A limit as ``/_sandbox/limits`` takes it — ``250 | 2000 | 10000 | 100000``, ``50``,
    ``"unlimited"`` (or ``-1``, Meta's integer for it) or a ``TIER_*`` string — as an int, None
    meaning unlimited. ``ValueError`` for anything else."""
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("UNLIMITED", UNLIMITED_TIER):
            return None
        by_tier = {tier: limit for limit, tier in TIERS.items()}
        if text in by_tier:
            return by_tier[text]
        if text.lstrip("-").isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            return None
        if value in TIERS:
            return value
    allowed = ", ".join([*map(str, TIERS), "unlimited", *TIERS.values(), UNLIMITED_TIER])
    raise ValueError(f"limit must be one of {allowed}")


def tier(limit: int | None) -> str:
    """The ``TIER_*`` string of a limit (``None`` → ``TIER_UNLIMITED``)."""
    return UNLIMITED_TIER if limit is None else TIERS[limit]


def integer(limit: int | None) -> int:
    """Meta's integer form of a limit: the number, ``-1`` for unlimited."""
    return -1 if limit is None else limit


def capability_value(limit: int | None, form: str) -> dict[str, Any]:
    """A ``business_capability_update`` value (its webhook reference): the portfolio's limit in
    ``max_daily_conversations_per_business`` — an integer as Meta's example payload sends it
    (``2000``, ``-1`` unlimited) or a ``TIER_*`` string as its field table says — and, as the
    table says, ``max_phone_numbers_per_business`` only for a portfolio at 250, else
    ``max_phone_numbers_per_waba``."""
    value: dict[str, Any] = {
        "max_daily_conversations_per_business": tier(limit) if form == "tier" else integer(limit)
    }
    if limit is not None and limit <= 250:
        value["max_phone_numbers_per_business"] = 2
    else:
        value["max_phone_numbers_per_waba"] = 25
    return value


@dataclass
class Portfolio:
    """One business portfolio: its limit and the users it reached outside a service window.

    ``reached`` maps a user to the last time a counted template reached them, oldest first,
    so the moving window is pruned from the front."""

    business_id: str = ""  # "" = the portfolio of a WABA without a business id
    waba_id: str = ""  # that WABA (when business_id is "")
    limit: int | None = None  # None = unlimited
    explicit: bool = False  # set through /_sandbox/limits (webhooks then carry it)
    reached: OrderedDict[str, float] = field(default_factory=OrderedDict)
    refused: int = 0

    def forget_traffic(self) -> None:
        self.reached.clear()
        self.refused = 0

    def count(self, now: float, window: float) -> int:
        """Unique users reached in the moving window ending at ``now``."""
        while self.reached:
            user, last = next(iter(self.reached.items()))
            if now - last < window:
                break
            del self.reached[user]
        return len(self.reached)

    def admit(self, user: str, now: float, window: float) -> bool:
        """Whether a template outside a service window may reach ``user`` now; counts the user
        when it may. A user already reached in the window is admitted and not counted again;
        a new one only while the count is below the limit."""
        count = self.count(now, window)
        if user not in self.reached and self.limit is not None and count >= self.limit:
            self.refused += 1
            return False
        self.reached[user] = now
        self.reached.move_to_end(user)
        return True

    def as_dict(self, waba_ids: list[str], now: float, window: float) -> dict[str, Any]:
        return {
            "business_id": self.business_id or None,
            "waba_ids": waba_ids,
            "limit": "unlimited" if self.limit is None else self.limit,
            "tier": tier(self.limit),
            "explicit": self.explicit,
            "reached": self.count(now, window),
            "refused": self.refused,
            "window_seconds": window,
        }
