"""What a provider reports, in Waypost's terms: pure data built by a provider's webhook parser
(``BaseProvider.parse_webhook``) and applied by the apps that own each fact — statuses and
inbound messages by ``messaging``, template updates by ``templates_registry``.

Every report names the sender it concerns (phone number id or WABA id), so a delivery that came
through one sender's own route can be held to that sender (:func:`concerns_only`).

A WhatsApp user is identified by a phone number (``wa_id``, digits without ``+``), a
business-scoped user id (``user_id``, a BSUID such as ``US.13491208655302741918``; since 2026),
or both: every identifier is optional, and a report carries every one the provider gave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from whatsapp.errors import ErrorInfo
from whatsapp.meta_errors import meta_code_info


@dataclass(frozen=True)
class Pricing:
    """What a message costs, as the provider counts it (no prices: the model, the type —
    ``regular`` is billable, ``free_customer_service`` and ``free_entry_point`` are not — and
    the pricing category)."""

    model: str = ""
    type: str = ""
    category: str = ""
    billable: bool | None = None  # deprecated by Meta in favour of ``type``; kept while sent

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "type": self.type,
            "category": self.category,
            "billable": self.billable,
        }


@dataclass(frozen=True)
class StatusReport:
    """One status of one sent message (sent, delivered, read, failed)."""

    phone_number_id: str
    wamid: str
    status: str
    occurred_at: datetime
    recipient_id: str = ""  # the phone number (wa_id) when the send used one
    biz_opaque_callback_data: str = ""
    recipient_user_id: str = ""  # the BSUID
    recipient_parent_user_id: str = ""
    username: str = ""
    pricing: Pricing | None = None
    # The first error of a ``failed`` status, already classified by its provider.
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    error_class: str = ""
    error_policy: str = ""  # a whatsapp.errors.Policy, when the error says one
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def dedupe_key(self) -> str:
        return f"status:{self.wamid}:{self.status}:{int(self.occurred_at.timestamp())}"

    @property
    def has_error(self) -> bool:
        return bool(self.error_code is not None or self.error_title)

    def as_json(self) -> dict[str, Any]:
        return {
            "phone_number_id": self.phone_number_id,
            "wamid": self.wamid,
            "status": self.status,
            "occurred_at": self.occurred_at.isoformat(),
            "recipient_id": self.recipient_id,
            "biz_opaque_callback_data": self.biz_opaque_callback_data,
            "recipient_user_id": self.recipient_user_id,
            "recipient_parent_user_id": self.recipient_parent_user_id,
            "username": self.username,
            "pricing": self.pricing.as_json() if self.pricing else None,
            "error_code": self.error_code,
            "error_title": self.error_title,
            "error_details": self.error_details,
            "error_class": self.error_class,
            "error_policy": self.error_policy,
            "raw": self.raw,
        }

    @classmethod
    def from_json(
        cls, data: dict, *, error_info: Callable[[int], ErrorInfo | None] = meta_code_info
    ) -> StatusReport:
        """A report stored by :meth:`as_json` (a parked status), whichever version stored it.

        What older versions did not store is derived: from ``errors`` (stored before the error
        was parsed into fields) its code and title; from ``error_info`` (the sender's provider's
        table, ``BaseProvider.error_info``; Meta's when not said) its class and policy when no
        ``error_policy`` was stored — so a 131050 parked before the upgrade still records the
        user's stop when it is re-applied."""
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in known}
        values["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
        if values.get("pricing"):
            values["pricing"] = Pricing(**values["pricing"])
        legacy = data.get("errors")  # stored before the error was parsed into fields
        if legacy and isinstance(legacy[0], dict) and "error_code" not in data:
            code = legacy[0].get("code")
            values["error_code"] = code if isinstance(code, int) else None
            values["error_title"] = str(legacy[0].get("title", ""))[:255]
        if values.get("error_code") is not None and "error_policy" not in data:
            info = error_info(values["error_code"])
            if info is not None:
                values.setdefault("error_class", str(info.classification.error_class))
                values.setdefault("error_policy", str(info.classification.policy))
        return cls(**values)


@dataclass(frozen=True)
class InboundReport:
    """A message a user sent to one of the business's numbers. A user with a username may
    come without a phone number (``wa_id`` empty): then ``user_id`` identifies them."""

    phone_number_id: str
    wamid: str
    wa_id: str
    type: str
    occurred_at: datetime
    text: str = ""
    payload: str = ""
    context_wamid: str = ""
    profile_name: str = ""
    user_id: str = ""
    parent_user_id: str = ""
    username: str = ""
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PreferenceReport:
    """A user stopped or resumed a kind of message from the business (``marketing_messages``)."""

    phone_number_id: str
    category: str
    value: str  # stop | resume
    occurred_at: datetime
    wa_id: str = ""
    user_id: str = ""
    detail: str = ""
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TemplateEvent:
    """A template's review status or quality changed."""

    waba_id: str
    kind: str  # status | quality | category | components
    template_id: str
    name: str
    language: str
    event: str = ""  # APPROVED, REJECTED, PAUSED, ... (status updates)
    reason: str = ""
    quality: str = ""  # GREEN, YELLOW, RED, UNKNOWN (quality updates)
    # Category updates: an impending one names ``correct_category`` and when it applies; a done
    # one names ``new_category``.
    previous_category: str = ""
    new_category: str = ""
    correct_category: str = ""
    category_update_at: datetime | None = None
    # Components updates: the template's components after an edit, in the creation format.
    components: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NumberEvent:
    """A change of a business number's capacity (``THROUGHPUT_UPGRADE``: 1,000 messages per
    second), of its portfolio's messaging limit or of its quality rating, named by its display
    number (``phone_number_quality_update``). Meta marks these fields "subject to change":
    every one but the event is optional."""

    waba_id: str
    display_phone_number: str
    event: str
    messages_per_second: int | None = None  # the new throughput, when the event sets one
    # The portfolio's messaging limit as Meta wrote it (TIER_2K, 2000…: tenants.limits), or "".
    messaging_limit: str = ""
    quality: str = ""  # GREEN, YELLOW, RED, UNKNOWN, or "" when not said
    occurred_at: datetime | None = None  # the entry's time, when Meta gave one
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RemoteTemplate:
    """A template as the provider knows it: the answer to a submission, or one item of the
    template list. Upper-case status, category and parameter format, as Waypost stores them."""

    provider_id: str
    status: str
    name: str = ""
    language: str = ""
    category: str = ""
    parameter_format: str = ""
    components: list = field(default_factory=list)
    quality: str = ""  # GREEN, YELLOW, RED, UNKNOWN, or "" when not said


@dataclass(frozen=True)
class AccountEvent:
    """An account-level notice (an account update…): recorded, not acted on — except the kinds
    that are subclasses below, which Waypost acts on."""

    waba_id: str
    field: str
    event: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CapabilityEvent(AccountEvent):
    """``business_capability_update``: what the business portfolio owning the WABA may do —
    its messaging limit (``max_daily_conversations_per_business``, a tier name or a number:
    ``tenants.limits``) and how many numbers it may have."""

    messaging_limit: str = ""
    max_phone_numbers: int | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AlertEvent(AccountEvent):
    """``account_alerts``: Meta tells the business something it should act on — a messaging
    limit increase refused, deferred or needing more information
    (``INCREASED_CAPABILITIES_ELIGIBILITY_*``), an Official Business Account decision, a lost
    profile photo. ``entity_type`` says what ``entity_id`` is (``BUSINESS``: the portfolio,
    ``PHONE_NUMBER``: a number's id). ``event`` is the alert's type."""

    entity_type: str = ""
    entity_id: str = ""
    severity: str = ""  # CRITICAL, WARNING, INFORMATIONAL
    status: str = ""  # ACTIVE, NONE
    description: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class NumberHealth:
    """A number's health as the provider answers a poll (``BaseProvider.number_health``): its
    portfolio's messaging limit as written (``TIER_2K``…; "" when not said) and its quality
    rating (GREEN, YELLOW, RED, UNKNOWN; "" when not said)."""

    messaging_limit: str = ""
    quality: str = ""
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SystemErrorEvent:
    """An app-level error not tied to one message."""

    phone_number_id: str
    code: int | None
    title: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ItemError:
    """One item of a delivery that could not be parsed; the rest of the delivery stands."""

    where: str
    error: str


@dataclass
class Parsed:
    """A webhook body, parsed: its reports, or why the whole body is unusable."""

    events: list = field(default_factory=list)
    invalid: str = ""


def concerns_only(event, *, waba_id: str, phone_number_id: str) -> bool:
    """Does ``event`` concern only this sender (its WABA, its number)?"""
    if isinstance(event, TemplateEvent | AccountEvent | NumberEvent):
        return event.waba_id == waba_id
    if isinstance(event, StatusReport | InboundReport | SystemErrorEvent | PreferenceReport):
        return event.phone_number_id == phone_number_id
    return True  # an ItemError concerns nothing
