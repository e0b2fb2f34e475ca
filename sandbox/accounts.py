"""The account side of Meta, on demand: portfolio limits, number quality, account alerts, the
spam limit, and the fields of ``GET /{phone-number-id}`` (docs/meta-api.md §3.3, §4.8, §12).

A mixin of :class:`sandbox.server.Sandbox` (it uses its ``state``, ``config``, ``dispatcher``,
``rng``, ``error`` and ``check_token``). The control endpoints answer ``{"error": ...}`` with
400 (or 404 for an unknown number) when a body is wrong, like the sandbox's others.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox import limits, wire

if TYPE_CHECKING:
    from sandbox.state import Number

JSON = "application/json"
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "UNKNOWN")
# phone_number_quality_update's events: today's reference lists ONBOARDING and
# THROUGHPUT_UPGRADE; the messaging-limit events are the ones Meta sent before Oct 2025.
QUALITY_EVENTS = (
    "DOWNGRADE",
    "UPGRADE",
    "FLAGGED",
    "UNFLAGGED",
    "ONBOARDING",
    "THROUGHPUT_UPGRADE",
)
# account_alerts (its webhook reference): alert type -> (severity, description).
ALERT_DEFAULTS = {
    "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED": (
        "WARNING",
        "Limits cannot be increased for your business Sandbox Business. Use WhatsApp Business "
        "platform actively for several days and follow our messaging policies.",
    ),
    "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED": (
        "CRITICAL",
        "Based on your activity, limits cannot be increased for your business. Contact "
        "support for more information.",
    ),
    "INCREASED_CAPABILITIES_ELIGIBILITY_NEED_MORE_INFO": (
        "WARNING",
        "Additional verification is required for your business Sandbox Business. Go to "
        "Security Center in Meta for Business to complete identity verification. To continue "
        "without completing additional verification, your business can use WhatsApp Business "
        "platform actively for several days and follow our messaging policies.",
    ),
}
# GET /{phone-number-id}: what it answers without ?fields= (the phone number reference's
# default set, as far as the sandbox knows the fields).
DEFAULT_NUMBER_FIELDS = (
    "verified_name",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps(data), status=status, content_type=JSON)


def _bad(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Accounts:
    # --- portfolios and their messaging limit --------------------------------------------------

    def portfolio_view(self, key: tuple[str, str]) -> dict[str, Any]:
        portfolio = self.state.portfolio(key)
        window = self.config.limit_window_seconds
        return portfolio.as_dict(self.state.wabas_of(key), time.time(), window)

    async def get_limits(self, request: web.Request) -> web.Response:
        """``GET /_sandbox/limits``: every portfolio the sandbox knows, with its limit, the
        unique users reached in the moving window and the sends refused beyond it."""
        data = [self.portfolio_view(key) for key in self.state.known_portfolios()]
        return _json({"count": len(data), "data": data})

    async def set_limits(self, request: web.Request) -> web.Response:
        """``POST /_sandbox/limits {"waba_id" | "business_id", "limit", "webhook"}``: set a
        portfolio's messaging limit (``250 | 2000 | 10000 | 100000 | 50 | "unlimited" |
        "TIER_…"``) and, unless ``webhook`` is ``"none"``, announce it to every WABA of the
        portfolio with a ``business_capability_update`` — the limit as an integer
        (``"integer"``, the default: Meta's example payload) or a ``TIER_*`` string
        (``"tier"``: Meta's field table). Users already reached stay counted."""
        body = await _body(request)
        form = str(body.get("webhook", "integer")).lower()
        if form not in limits.WEBHOOK_FORMS:
            return _bad(f"webhook must be one of {', '.join(limits.WEBHOOK_FORMS)}")
        if body.get("business_id"):
            key = ("business", str(body["business_id"]))
        elif body.get("waba_id"):
            key = self.state.portfolio_key(str(body["waba_id"]))
        else:
            return _bad("waba_id or business_id is required")
        if "limit" not in body:
            return _bad("limit is required")
        try:
            limit = limits.parse_limit(body["limit"])
        except ValueError as exc:
            return _bad(str(exc))
        portfolio = self.state.portfolio(key)
        portfolio.limit, portfolio.explicit = limit, True
        wabas = self.state.wabas_of(key) if form != "none" else []
        for waba_id in wabas:
            value = limits.capability_value(limit, form)
            self.announce(waba_id, "business_capability_update", value)
        return _json(self.portfolio_view(key) | {"webhooks_sent_to": wabas})

    def announce(self, waba_id: str, field: str, value: dict[str, Any]) -> None:
        """One account webhook (§4.8): entry id = the WABA, with the time it happened."""
        envelope = wire.envelope(waba_id, field, value, time=int(time.time()))
        self.dispatcher.schedule_payload(0, envelope)

    # --- number quality ------------------------------------------------------------------------

    def quality_update(self, number: Number, event: str, **fields: Any) -> dict[str, Any]:
        """Send a ``phone_number_quality_update`` for ``number`` (its webhook reference:
        ``display_phone_number``, ``event``, then ``old_limit``/``current_limit``/
        ``max_daily_conversations_per_business`` when given) and return its value."""
        value = {"display_phone_number": number.display_phone_number, "event": event}
        value |= {name: item for name, item in fields.items() if item is not None}
        self.announce(number.waba_id or "0", "phone_number_quality_update", value)
        return value

    async def quality(self, request: web.Request) -> web.Response:
        """``POST /_sandbox/quality {"phone_number_id", "event", "quality"?, "current_limit"?,
        "old_limit"?}``: the number's ``quality_rating`` becomes ``quality`` (GREEN, YELLOW,
        RED, UNKNOWN) and a ``phone_number_quality_update`` goes out, with the portfolio's
        limit as ``max_daily_conversations_per_business`` when one was set. THROUGHPUT_UPGRADE
        also moves the number to 1,000 mps, as ``/_sandbox/numbers``' throughput_upgrade."""
        body = await _body(request)
        number = self.state.numbers.get(str(body.get("phone_number_id", "")))
        if number is None:
            return _bad(
                "phone_number_id must name a registered number (POST /_sandbox/numbers)", 404
            )
        event = str(body.get("event", "")).upper()
        quality = str(body.get("quality") or number.quality_rating).upper()
        if event not in QUALITY_EVENTS:
            return _bad(f"event must be one of {', '.join(QUALITY_EVENTS)}")
        if quality not in QUALITY_RATINGS:
            return _bad(f"quality must be one of {', '.join(QUALITY_RATINGS)}")
        try:
            old_limit, current_limit = (
                _quality_limit(body.get(name)) for name in ("old_limit", "current_limit")
            )
        except ValueError as exc:
            return _bad(str(exc))
        number.quality_rating = quality
        if event == "THROUGHPUT_UPGRADE":
            self.raise_throughput(number)
        portfolio = self.state.portfolio(self.state.portfolio_key(number.waba_id))
        value = self.quality_update(
            number,
            event,
            old_limit=old_limit,
            current_limit=current_limit,
            max_daily_conversations_per_business=(
                limits.tier(portfolio.limit) if portfolio.explicit else None
            ),
        )
        return _json({"phone_number_id": number.phone_number_id, "quality_rating": quality} | value)

    def raise_throughput(self, number: Number) -> None:
        """§3.1, §11.4: the number moves to 1,000 messages a second."""
        number.mps = 1000
        self.state.buckets.pop(number.phone_number_id, None)

    # --- account alerts ------------------------------------------------------------------------

    async def account_alert(self, request: web.Request) -> web.Response:
        """``POST /_sandbox/account_alert {"waba_id", "alert_type", "alert_severity"?,
        "alert_status"?, "alert_description"?, "entity_type"?, "entity_id"?}`` → an
        ``account_alerts`` webhook (its reference: ``entity_type``, ``entity_id`` and
        ``alert_info`` {severity, status, type, description}). For the
        ``INCREASED_CAPABILITIES_ELIGIBILITY_*`` types severity and description default to
        Meta's; the entity defaults to the WABA's business portfolio (``BUSINESS``)."""
        body = await _body(request)
        waba_id = str(body.get("waba_id") or "")
        alert_type = str(body.get("alert_type") or "").upper()
        if not waba_id or not alert_type:
            return _bad("waba_id and alert_type are required")
        severity, description = ALERT_DEFAULTS.get(alert_type, ("INFORMATIONAL", ""))
        description = str(body.get("alert_description") or description)
        if not description:
            return _bad(f"alert_description is required for alert_type {alert_type}")
        _kind, ident = self.state.portfolio_key(waba_id)
        value = {
            "entity_type": str(body.get("entity_type") or "BUSINESS"),
            "entity_id": str(body.get("entity_id") or ident),
            "alert_info": {
                "alert_severity": str(body.get("alert_severity") or severity).upper(),
                "alert_status": str(body.get("alert_status") or "ACTIVE").upper(),
                "alert_type": alert_type,
                "alert_description": description,
            },
        }
        self.announce(waba_id, "account_alerts", value)
        return _json(value)

    # --- the spam rate limit -------------------------------------------------------------------

    async def spam_limit(self, request: web.Request) -> web.Response:
        """``POST /_sandbox/spam_limit {"phone_number_id", "on"}``: while on, every send from
        that number is answered 400 with Meta's 131048 "Spam rate limit hit" (§12). A reset
        lifts it, as it does the other rate limiters."""
        body = await _body(request)
        phone_number_id = str(body.get("phone_number_id") or "")
        if not phone_number_id or not isinstance(body.get("on"), bool):
            return _bad("phone_number_id and on (true or false) are required")
        if body["on"]:
            self.state.spam_limited.add(phone_number_id)
        else:
            self.state.spam_limited.discard(phone_number_id)
        return _json({"phone_number_id": phone_number_id, "spam_limited": body["on"]})

    # --- GET /{version}/{phone-number-id} ------------------------------------------------------

    def number_fields(self, number: Number, fields: list[str]) -> dict[str, Any]:
        """The fields asked for, plus ``id``, as the phone number node answers them: the
        portfolio's limit as a ``TIER_*`` string in ``whatsapp_business_manager_messaging_limit``
        (messaging-limits page), ``messaging_limit_tier`` null (deprecated there),
        ``throughput.level`` HIGH at 1,000 mps else STANDARD. ``MetaError`` 100 for a field the
        node does not have, as Graph answers."""
        portfolio = self.state.portfolio(self.state.portfolio_key(number.waba_id))
        mps = number.mps if number.mps is not None else self.config.default_mps
        known = {
            "verified_name": number.verified_name,
            "display_phone_number": number.display_phone_number,
            "quality_rating": number.quality_rating,
            "platform_type": "CLOUD_API",
            "throughput": {"level": "HIGH" if mps == 0 or mps >= 1000 else "STANDARD"},
            "whatsapp_business_manager_messaging_limit": limits.tier(portfolio.limit),
            "messaging_limit_tier": None,
        }
        for name in fields:
            if name not in known and name != "id":
                raise wire.MetaError(
                    100,
                    f"Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                )
        answer = {name: known[name] for name in fields or DEFAULT_NUMBER_FIELDS if name != "id"}
        return answer | {"id": number.phone_number_id}


def _quality_limit(value: Any) -> str | None:
    """A ``current_limit``/``old_limit`` as the webhook carries it: a ``TIER_*`` string (an
    integer limit is turned into its tier)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    if text in limits.QUALITY_UPDATE_LIMITS:
        return text
    return limits.tier(limits.parse_limit(value))
