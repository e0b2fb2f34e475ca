"""The sandbox's in-memory ground truth. Lost on restart, by design.

Everything here runs on the event loop's single thread, so no locks are needed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.limits import Portfolio
from sandbox.media import MediaStore


@dataclass
class Number:
    phone_number_id: str
    waba_id: str = ""  # "" = unregistered: sees every WABA's templates
    display_phone_number: str = "15550000000"
    mps: int | None = None  # None = the configured default
    d360_api_key: str = ""
    verified_name: str = "Sandbox Business"
    quality_rating: str = "GREEN"  # GREEN | YELLOW | RED | UNKNOWN (POST /_sandbox/quality)


@dataclass(slots=True)
class MessageRecord:
    wamid: str
    phone_number_id: str
    to: str
    wa_id: str
    type: str
    template: dict[str, str] | None
    biz_opaque_callback_data: str
    logical_key: str
    accepted_at: float
    user_id: str = ""  # the user's BSUID (every send has one; a BSUID send is addressed by it)
    by_phone: bool = True  # addressed with `to` (else with `recipient`)
    endpoint: str = "messages"  # or marketing_messages (MM Lite)
    answered: bool = True
    limit_refused: bool = False  # accepted, then failed: the portfolio's messaging limit
    statuses_planned: list[str] = field(default_factory=list)
    statuses_dropped: list[str] = field(default_factory=list)

    def as_dict(self, submissions: int) -> dict[str, Any]:
        return {
            "wamid": self.wamid,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "by_phone": self.by_phone,
            "endpoint": self.endpoint,
            "type": self.type,
            "template": self.template,
            "biz_opaque_callback_data": self.biz_opaque_callback_data,
            "submissions": submissions,
            "answered": self.answered,
            "limit_refused": self.limit_refused,
            "accepted_at": self.accepted_at,
            "statuses_planned": self.statuses_planned,
            "statuses_dropped": self.statuses_dropped,
        }


class TokenBucket:
    """Per-number throughput: ``rate`` tokens a second, bursts of one second's worth (§3.1).
    The clock is the caller's (``now``, at creation and at each ``take``): a bucket created
    full at the instant of its first message grants it, whatever the rate."""

    __slots__ = ("last", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.tokens = rate
        self.last = now

    def take(self, rate: float, now: float) -> bool:
        self.tokens = min(rate, self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class PairLimiter:
    """Pair rate limit (§3.2) as a GCRA: one message per ``interval`` seconds on average,
    ``burst`` at once; a burst is paid back before the next message goes through."""

    def __init__(self) -> None:
        self.tat: dict[tuple[str, str], float] = {}

    def take(self, key: tuple[str, str], interval: float, burst: int, now: float) -> bool:
        tat = max(self.tat.get(key, now), now)
        if tat - now > (burst - 1) * interval:
            return False
        self.tat[key] = tat + interval
        return True


@dataclass
class Stats:
    requests: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # Meta code -> count
    http_errors: Counter = field(default_factory=Counter)  # injected 500/503
    connection_resets: int = 0
    timeouts_after_accept: int = 0
    duplicate_submissions: int = 0
    templates_created: int = 0
    templates_edited: int = 0
    webhook_posts: int = 0  # POST attempts
    webhook_posts_ok: int = 0  # answered 200
    webhook_posts_failed: int = 0  # non-200 or connection error
    webhook_retries: int = 0
    webhook_gave_up: int = 0
    webhook_events_sent: int = 0  # statuses / updates / inbound, counted once per 200
    webhook_events_dropped: int = 0
    webhook_events_duplicated: int = 0
    limit_refused: int = 0  # accepted sends failed by the portfolio's messaging limit
    media_uploads: int = 0

    def as_dict(self, pending: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "http_errors": {str(k): v for k, v in sorted(self.http_errors.items())},
            "connection_resets": self.connection_resets,
            "timeouts_after_accept": self.timeouts_after_accept,
            "duplicate_submissions": self.duplicate_submissions,
            "templates_created": self.templates_created,
            "templates_edited": self.templates_edited,
            "limit_refused": self.limit_refused,
            "media_uploads": self.media_uploads,
            "webhooks": {
                "posts": self.webhook_posts,
                "posts_ok": self.webhook_posts_ok,
                "posts_failed": self.webhook_posts_failed,
                "retries": self.webhook_retries,
                "gave_up": self.webhook_gave_up,
                "events_sent": self.webhook_events_sent,
                "dropped": self.webhook_events_dropped,
                "duplicated": self.webhook_events_duplicated,
                "pending": pending,
            },
        }


class State:
    def __init__(self) -> None:
        self.templates: dict[str, dict[tuple[str, str], dict]] = {}  # waba -> (name, lang) -> t
        self.template_ids = 1_000_000_000_000
        self.media = MediaStore()  # one store for the run: media ids are never reused
        self.reset(everything=True)

    def reset(self, *, everything: bool = False) -> None:
        """Forget the traffic: messages, windows, rate limiters (the spam limit too), counters,
        the users each portfolio reached, uploaded media. ``everything`` forgets the accounts
        too: templates, numbers, business ids and portfolio limits."""
        self.messages: dict[str, MessageRecord] = {}
        self.submissions: Counter = Counter()
        self.last_inbound: dict[tuple[str, str], float] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.pairs = PairLimiter()
        self.spam_limited: set[str] = set()  # phone number ids answering 131048
        self.stats = Stats()
        self.media.clear()
        if everything:
            self.templates = {}
            self.numbers: dict[str, Number] = {}
            self.businesses: dict[str, str] = {}  # WABA id -> business (portfolio) id
            self.portfolios: dict[tuple[str, str], Portfolio] = {}
        for portfolio in self.portfolios.values():
            portfolio.forget_traffic()

    # --- business portfolios -------------------------------------------------------------------

    def portfolio_key(self, waba_id: str) -> tuple[str, str]:
        """A WABA's portfolio: its business's, else its own (the unregistered "" is "0")."""
        waba_id = waba_id or "0"
        business = self.businesses.get(waba_id)
        return ("business", business) if business else ("waba", waba_id)

    def portfolio(self, key: tuple[str, str]) -> Portfolio:
        portfolio = self.portfolios.get(key)
        if portfolio is None:
            kind, ident = key
            portfolio = self.portfolios[key] = Portfolio(
                business_id=ident if kind == "business" else "",
                waba_id=ident if kind == "waba" else "",
            )
        return portfolio

    def wabas_of(self, key: tuple[str, str]) -> list[str]:
        """Every WABA the sandbox knows in this portfolio (by its numbers or business ids)."""
        known = {n.waba_id for n in self.numbers.values() if n.waba_id} | set(self.businesses)
        if key[0] == "waba":
            known.add(key[1])
        return sorted(waba for waba in known if self.portfolio_key(waba) == key)

    def known_portfolios(self) -> list[tuple[str, str]]:
        keys = set(self.portfolios)
        keys |= {self.portfolio_key(n.waba_id) for n in self.numbers.values() if n.waba_id}
        keys |= {self.portfolio_key(waba) for waba in self.businesses}
        return sorted(keys)

    # --- numbers and templates -----------------------------------------------------------------

    def number(self, phone_number_id: str) -> Number:
        number = self.numbers.get(phone_number_id)
        if number is None:
            number = self.numbers[phone_number_id] = Number(phone_number_id)
        return number

    def number_for_d360_key(self, key: str) -> Number:
        for number in self.numbers.values():
            if number.d360_api_key and number.d360_api_key == key:
                return number
        return self.number("360dialog")

    def find_template(self, number: Number, name: str, language: str) -> dict | None:
        wabas = [number.waba_id] if number.waba_id else list(self.templates)
        for waba in wabas:
            template = self.templates.get(waba, {}).get((name, language))
            if template is not None:
                return template
        return None

    def add_template(self, waba_id: str, definition: dict, status: str) -> dict:
        self.template_ids += 1
        template = {
            "id": str(self.template_ids),
            "name": definition["name"],
            "language": definition["language"],
            "category": str(definition.get("category", "")).upper(),
            "parameter_format": str(definition.get("parameter_format") or "POSITIONAL").upper(),
            "components": definition.get("components", []),
            "status": status,
            "waba_id": waba_id,
        }
        self.templates.setdefault(waba_id, {})[(template["name"], template["language"])] = template
        self.stats.templates_created += 1
        return template

    # --- messages ------------------------------------------------------------------------------

    @staticmethod
    def logical_key(phone_number_id: str, body: dict, opaque: str) -> str:
        """The same logical message submitted twice has the same key: Waypost's message id in
        ``biz_opaque_callback_data`` when present, else a hash of the whole request."""
        if opaque:
            return f"{phone_number_id}:{opaque}"
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return f"{phone_number_id}:{digest[:32]}"

    def record(self, message: MessageRecord) -> None:
        self.messages[message.wamid] = message
        self.submissions[message.logical_key] += 1
        if self.submissions[message.logical_key] > 1:
            self.stats.duplicate_submissions += 1
        self.stats.accepted += 1
