"""Meta's WhatsApp Cloud API (Graph API), and the sandbox that stands in for it.

* Sends: ``POST {graph}/{version}/{phone_number_id}/messages`` with ``Authorization: Bearer``;
  the body is Meta's message object (docs/meta-api.md §1.2, §1.4); the answer is
  ``{"messages": [{"id": wamid, "message_status"?}]}`` or ``{"error": {...}}`` (§1.3, §1.5).
* Templates: ``{waba_id}/message_templates`` (create, list with cursor paging) and
  ``{template_id}`` (edit) (§5).
* Number health: ``GET {phone_number_id}?fields=whatsapp_business_manager_messaging_limit,
  quality_rating`` (§3.3, Meta's messaging-limits page).
* Webhooks: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body, app secret)>`` (§4.2), the
  ``entry[].changes[]`` envelope (§4.4 to §4.9), the ``hub.*`` verification handshake (§4.1).
* Errors: Meta's codes, what each means and who must act: :mod:`whatsapp.meta_errors` (§2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from whatsapp.base import BaseProvider, OutboundMessage, SendAnswer, as_int
from whatsapp.errors import ErrorInfo
from whatsapp.meta_errors import META_ERRORS, meta_code_info
from whatsapp.reports import (
    AccountEvent,
    AlertEvent,
    CapabilityEvent,
    InboundReport,
    ItemError,
    NumberEvent,
    NumberHealth,
    Parsed,
    PreferenceReport,
    Pricing,
    RemoteTemplate,
    StatusReport,
    SystemErrorEvent,
    TemplateEvent,
)

TEMPLATE_FIELDS = {
    "message_template_status_update": "status",
    "message_template_quality_update": "quality",
    "template_category_update": "category",
    "message_template_components_update": "components",
}
ACCEPTED = "accepted"
# Graph API versions (docs/meta-api.md §11.6): v26.0 is current (released Jul 2026; the
# default, WHATSAPP_GRAPH_VERSION); v21.0 the oldest still supported (until Jan 2027). The
# contract suite runs on both. v23 and older put pricing on ``sent``, v24+ on delivered/read.
CURRENT_GRAPH_VERSION = "v26.0"
OLDEST_SUPPORTED_GRAPH_VERSION = "v21.0"
THROUGHPUT_UPGRADE_MPS = 1000  # a number's throughput after THROUGHPUT_UPGRADE (§3.1)
# What the health poll asks of a number (§3.3).
HEALTH_FIELDS = "whatsapp_business_manager_messaging_limit,quality_rating"


def is_user_id(value: str) -> bool:
    """A business-scoped user id (``US.13491208655302741918``) rather than a phone number."""
    return "." in value


class MetaCloudProvider(BaseProvider):
    base_url_setting = "WHATSAPP_GRAPH_URL"
    signature_header = "X-Hub-Signature-256"
    webhook_secret_setting = "WHATSAPP_APP_SECRET"
    verify_token_setting = "WHATSAPP_VERIFY_TOKEN"
    supports_marketing_lite = True
    error_table = META_ERRORS

    # --- sends -------------------------------------------------------------------------------

    def build_payload(self, message: OutboundMessage) -> dict:
        # A BSUID goes in ``recipient`` (since May 2026); never both (``to`` would win).
        address = (
            {"to": message.recipient}
            if message.recipient
            else {"recipient": message.recipient_user_id}
        )
        envelope = {"messaging_product": "whatsapp", "recipient_type": "individual", **address}
        if message.text is not None:
            content: dict = {"type": "text", "text": {"body": message.text}}
        else:
            template: dict = {
                "name": message.template_name,
                "language": {"code": message.template_language},
            }
            if message.components:
                template["components"] = list(message.components)
            content = {"type": "template", "template": template}
        return {**envelope, **content, "biz_opaque_callback_data": message.callback_data}

    def message_request(
        self, *, credential: str, phone_number_id: str, marketing_lite: bool = False
    ) -> tuple[str, dict]:
        # Marketing Messages Lite: MARKETING templates through their own endpoint (§11.5).
        endpoint = "marketing_messages" if marketing_lite else "messages"
        url = f"{self.base_url}/{self.graph_version}/{phone_number_id}/{endpoint}"
        return url, self._auth(credential)

    def parse_send(self, http_status: int, body: Any) -> SendAnswer:
        if http_status == 200 and isinstance(body, dict) and body.get("messages"):
            message = body["messages"][0]
            status = str(message.get("message_status", ACCEPTED))
            contact = (body.get("contacts") or [{}])[0]
            contact = contact if isinstance(contact, dict) else {}
            return SendAnswer(
                wamid=str(message.get("id", "")),
                message_status=status,
                held=status != ACCEPTED,
                wa_id=str(contact.get("wa_id") or ""),
                user_id=str(contact.get("user_id") or ""),
            )
        return self.parse_error(http_status, body)

    def parse_error(self, http_status: int, body: Any) -> SendAnswer:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return SendAnswer(
                error_code=as_int(error.get("code")),
                error_title=str(error.get("message", "")),
                error_details=str((error.get("error_data") or {}).get("details", "")),
            )
        return SendAnswer(error_title=f"HTTP {http_status}")

    @classmethod
    def code_info(cls, code: int) -> ErrorInfo | None:
        return meta_code_info(code)  # the table, and 200-299 (permissions, §2)

    # --- templates ---------------------------------------------------------------------------

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        url = f"{self.base_url}/{self.graph_version}/{waba_id}/message_templates"
        return url, self._auth(credential)

    def template_request(self, *, credential: str, template_id: str) -> tuple[str, dict]:
        return f"{self.base_url}/{self.graph_version}/{template_id}", self._auth(credential)

    def templates_page(self, body: dict) -> list[dict]:
        return list(body.get("data") or [])

    def parse_template(self, item: dict) -> RemoteTemplate:
        return RemoteTemplate(
            provider_id=str(item.get("id", "")),
            status=str(item.get("status", "PENDING")).upper(),
            name=str(item.get("name", "")),
            language=str(item.get("language", "")),
            category=str(item.get("category", "UTILITY")).upper(),
            parameter_format=str(item.get("parameter_format") or "POSITIONAL").upper(),
            components=list(item.get("components") or []),
            quality=str((item.get("quality_score") or {}).get("score", "")).upper(),
        )

    def next_page(self, body: dict) -> str:
        # Graph cursor paging (§5.5): the end is when ``paging.next`` is absent.
        return str((body.get("paging") or {}).get("next") or "")

    @staticmethod
    def _auth(credential: str) -> dict:
        return {"Authorization": f"Bearer {credential}"}

    # --- number health -----------------------------------------------------------------------

    def number_health_request(
        self, *, credential: str, phone_number_id: str
    ) -> tuple[str, dict, dict] | None:
        """``GET /{phone-number-id}?fields=whatsapp_business_manager_messaging_limit,
        quality_rating`` (§3.3). Not ``messaging_limit_tier``: deprecated, it answers null."""
        url = f"{self.base_url}/{self.graph_version}/{phone_number_id}"
        return url, self._auth(credential), {"fields": HEALTH_FIELDS}

    def parse_number_health(self, body: dict) -> NumberHealth:
        return NumberHealth(
            messaging_limit=_limit_field(body.get("whatsapp_business_manager_messaging_limit")),
            quality=_text(body.get("quality_rating")).upper(),
            raw=body,
        )

    # --- webhooks ----------------------------------------------------------------------------

    def signature_valid(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        header = headers.get(self.signature_header, "")
        if not secret or not header.startswith("sha256="):
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        # Bytes: compare_digest refuses a str with a non-ASCII character (a forged header
        # would be a TypeError, a 500, instead of a refusal).
        given = header[7:].strip().lower().encode("utf-8", "replace")
        return hmac.compare_digest(expected.encode(), given)

    def verification_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None:
        """Meta's subscription handshake (§4.1): ``GET ?hub.mode=subscribe&hub.verify_token=…
        &hub.challenge=…`` — the challenge to echo when the token matches, else None."""
        token = params.get("hub.verify_token", "")
        if (
            params.get("hub.mode") == "subscribe"
            and verify_token
            and hmac.compare_digest(token.encode(), verify_token.encode())
        ):
            return params.get("hub.challenge", "")
        return None

    def webhook_addresses(self, body: bytes) -> tuple[set[str], set[str]] | None:
        """Each ``entry[].id`` (WABA) and ``changes[].value.metadata.phone_number_id``."""
        data = _load(body)
        if data is None:
            return None
        wabas: set[str] = set()
        numbers: set[str] = set()
        entries = data.get("entry") if isinstance(data, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            if "id" in entry:
                wabas.add(str(entry["id"]))
            changes = entry.get("changes")
            for change in changes if isinstance(changes, list) else []:
                value = change.get("value") if isinstance(change, dict) else None
                metadata = value.get("metadata") if isinstance(value, dict) else None
                if isinstance(metadata, dict) and "phone_number_id" in metadata:
                    numbers.add(str(metadata["phone_number_id"]))
        return wabas, numbers

    def parse_webhook(self, body: bytes) -> Parsed:
        """Each item (a status, an inbound message, a change of an unknown kind) is parsed on
        its own: a bad one becomes an ``ItemError`` and the rest stands. Unknown fields are
        kept in ``raw`` and ignored."""
        data = _load(body)
        if data is None:
            return Parsed(invalid="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
            return Parsed(invalid="not Meta's envelope (no entry[])")
        parsed = Parsed()
        for e_index, entry in enumerate(data["entry"]):
            if not isinstance(entry, dict):
                parsed.events.append(ItemError(f"entry[{e_index}]", "not an object"))
                continue
            waba = str(entry.get("id", ""))
            at = _entry_time(entry.get("time"))
            for c_index, change in enumerate(entry.get("changes") or []):
                where = f"entry[{e_index}].changes[{c_index}]"
                try:
                    change_field, value = str(change.get("field", "")), change["value"]
                    if change_field == "messages":
                        self._messages_change(value, parsed.events, where)
                    elif change_field == "user_preferences":
                        _preferences(value, parsed.events, where)
                    elif change_field in TEMPLATE_FIELDS:
                        parsed.events.append(_template(waba, change_field, value))
                    elif change_field == "phone_number_quality_update":
                        parsed.events.append(_number(waba, value, at))
                    elif change_field == "business_capability_update":
                        parsed.events.append(_capability(waba, value, at))
                    elif change_field == "account_alerts":
                        parsed.events.append(_alert(waba, value, at))
                    else:
                        parsed.events.append(
                            AccountEvent(waba, change_field, str(value.get("event", "")), raw=value)
                        )
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    parsed.events.append(ItemError(where, f"{type(exc).__name__}: {exc}"))
        return parsed

    def _messages_change(self, value: dict, out: list, where: str) -> None:
        pnid = str((value.get("metadata") or {}).get("phone_number_id", ""))
        contacts = _Contacts(value.get("contacts"))
        for kind, items in (
            ("statuses", value.get("statuses")),
            ("messages", value.get("messages")),
            ("errors", value.get("errors")),
        ):
            for index, item in enumerate(items or []):
                try:
                    if kind == "statuses":
                        out.append(self._status(pnid, item, contacts))
                    elif kind == "messages":
                        out.append(_inbound(pnid, item, contacts))
                    else:
                        out.append(
                            SystemErrorEvent(
                                pnid, as_int(item.get("code")), str(item.get("title", "")), raw=item
                            )
                        )
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    out.append(
                        ItemError(f"{where}.{kind}[{index}]", f"{type(exc).__name__}: {exc}")
                    )

    def _status(self, pnid: str, item: dict, contacts: _Contacts) -> StatusReport:
        error: dict = {}
        errors = item.get("errors") or ()
        if errors and isinstance(errors[0], dict):
            error = errors[0]
        code = as_int(error.get("code"))
        kind = self.classify(code, None)
        recipient = str(item.get("recipient_id") or "")
        user_id = str(item.get("recipient_user_id") or "")
        if is_user_id(recipient):  # a send to a BSUID names the BSUID here
            recipient, user_id = "", user_id or recipient
        contact = contacts.find(wa_id=recipient, user_id=user_id)
        return StatusReport(
            phone_number_id=pnid,
            wamid=str(item["id"]),
            status=str(item["status"]),
            occurred_at=_ts(item["timestamp"]),
            recipient_id=recipient or contact.get("wa_id", ""),
            biz_opaque_callback_data=str(item.get("biz_opaque_callback_data", "")),
            recipient_user_id=user_id or contact.get("user_id", ""),
            recipient_parent_user_id=str(
                item.get("recipient_parent_user_id") or contact.get("parent_user_id", "")
            ),
            username=contact.get("username", ""),
            pricing=_pricing(item.get("pricing")),
            error_code=code,
            error_title=str(error.get("title", ""))[:255],
            error_details=str((error.get("error_data") or {}).get("details", "")),
            error_class=str(kind.error_class) if error else "",
            error_policy=str(kind.policy) if error else "",
            raw=item,
        )


class SandboxProvider(MetaCloudProvider):
    """Waypost's sandbox speaks Meta's Cloud API; only the address differs (and it accepts
    any token, so a sandbox sender needs no credential). Its webhooks are Meta's too: posted on
    Meta's app-wide route, signed with the app secret as Meta signs them."""

    base_url_setting = "SANDBOX_URL"
    credential_required = False


def _load(body: bytes) -> Any:
    """The JSON of a body, or None when it is not JSON (or nested beyond the parser's reach)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    # PostgreSQL text cannot hold NUL: a "\u0000" in a string (never in Meta's own data) is
    # replaced, so the item is read and stored instead of failing the delivery.
    return _without_nul(data) if b"\\u0000" in body else data


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


class _Contacts:
    """``value.contacts[]``: who the items of a change concern, found by phone number or BSUID."""

    def __init__(self, raw: Any) -> None:
        self.items = []
        for contact in raw if isinstance(raw, list) else []:
            if not isinstance(contact, dict):
                continue
            profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
            wa_id = str(contact.get("wa_id") or "")
            user_id = str(contact.get("user_id") or "")
            if is_user_id(wa_id):  # some payloads put the BSUID in wa_id
                wa_id, user_id = "", user_id or wa_id
            self.items.append(
                {
                    "wa_id": wa_id,
                    "user_id": user_id,
                    "parent_user_id": str(contact.get("parent_user_id") or ""),
                    "name": str(profile.get("name") or ""),
                    "username": str(profile.get("username") or ""),
                }
            )

    def find(self, *, wa_id: str = "", user_id: str = "") -> dict[str, str]:
        for contact in self.items:
            if (wa_id and contact["wa_id"] == wa_id) or (user_id and contact["user_id"] == user_id):
                return contact
        # One contact and an item that names nobody else: it is that contact.
        return self.items[0] if len(self.items) == 1 and not (wa_id and user_id) else {}


def _pricing(raw: Any) -> Pricing | None:
    if not isinstance(raw, dict):
        return None
    billable = raw.get("billable")
    return Pricing(
        model=str(raw.get("pricing_model") or ""),
        type=str(raw.get("type") or ""),
        category=str(raw.get("category") or ""),
        billable=billable if isinstance(billable, bool) else None,
    )


def _preferences(value: dict, out: list, where: str) -> None:
    """``user_preferences``: a user stopped or resumed marketing messages (§11.2)."""
    pnid = str((value.get("metadata") or {}).get("phone_number_id", ""))
    contacts = _Contacts(value.get("contacts"))
    for index, item in enumerate(value.get("user_preferences") or []):
        try:
            wa_id = str(item.get("wa_id") or "")
            user_id = str(item.get("user_id") or "")
            if is_user_id(wa_id):
                wa_id, user_id = "", user_id or wa_id
            contact = contacts.find(wa_id=wa_id, user_id=user_id)
            wa_id, user_id = (
                wa_id or contact.get("wa_id", ""),
                user_id or contact.get("user_id", ""),
            )
            if not wa_id and not user_id:
                raise ValueError("names no user (no wa_id, no user_id)")
            out.append(
                PreferenceReport(
                    phone_number_id=pnid,
                    category=str(item["category"]),
                    value=str(item["value"]).lower(),
                    occurred_at=_ts(item["timestamp"]),
                    wa_id=wa_id,
                    user_id=user_id,
                    detail=str(item.get("detail") or ""),
                    raw=item,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            out.append(
                ItemError(f"{where}.user_preferences[{index}]", f"{type(exc).__name__}: {exc}")
            )


def _entry_time(value: Any) -> datetime | None:
    """An entry's ``time`` (Unix seconds), when it has a readable one."""
    seconds = as_int(value)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds and seconds > 0 else None


def _text(value: Any) -> str:
    """A field Meta writes as a string or a number (``TIER_2K`` or ``2000``); "" when absent."""
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def _limit_field(value: Any) -> str:
    """``whatsapp_business_manager_messaging_limit``: a tier name (``TIER_2K``); an object
    holding one is read too (the field is young and Meta's shapes move)."""
    if isinstance(value, dict):
        for key in ("current_limit", "max_daily_conversations_per_business", "tier", "limit"):
            if _text(value.get(key)):
                return _text(value.get(key))
        return ""
    return _text(value)


def _number(waba: str, value: dict, at: datetime | None = None) -> NumberEvent:
    """``phone_number_quality_update`` (§11.4): ``event`` (``ONBOARDING``,
    ``THROUGHPUT_UPGRADE``; older ``UPGRADE``, ``DOWNGRADE``, ``FLAGGED``, ``UNFLAGGED``), the
    portfolio's limit in ``max_daily_conversations_per_business``, else in ``current_limit``
    (removed by Meta in February 2026) — but never ``current_limit`` of a
    ``THROUGHPUT_UPGRADE``: there it is the throughput level (Meta's example says
    ``TIER_UNLIMITED`` beside a portfolio limit of ``TIER_2K``), and reading it as the
    messaging limit would lift every campaign's limit. A quality rating when one is given."""
    event = str(value.get("event", "")).upper()
    limit = _text(value.get("max_daily_conversations_per_business"))
    if not limit and event != "THROUGHPUT_UPGRADE":
        limit = _text(value.get("current_limit"))
    return NumberEvent(
        waba_id=waba,
        display_phone_number=str(value.get("display_phone_number", "")),
        event=event,
        messages_per_second=THROUGHPUT_UPGRADE_MPS if event == "THROUGHPUT_UPGRADE" else None,
        messaging_limit=limit,
        quality=_text(value.get("quality_rating") or value.get("quality")).upper(),
        occurred_at=at,
        raw=value,
    )


def _capability(waba: str, value: dict, at: datetime | None = None) -> CapabilityEvent:
    """``business_capability_update``: the portfolio's limit in
    ``max_daily_conversations_per_business`` — ``TIER_2K`` in Meta's field table, ``2000`` in
    its example payload: kept as written, ``tenants.limits`` reads both — else in
    ``max_daily_conversation_per_phone`` (v23 and older, until February 2026)."""
    limit = _text(value.get("max_daily_conversations_per_business"))
    if not limit:
        limit = _text(value.get("max_daily_conversation_per_phone"))
    return CapabilityEvent(
        waba_id=waba,
        field="business_capability_update",
        event="",
        raw=value,
        messaging_limit=limit,
        max_phone_numbers=as_int(value.get("max_phone_numbers_per_business")),
        occurred_at=at,
    )


def _alert(waba: str, value: dict, at: datetime | None = None) -> AlertEvent:
    """``account_alerts``: ``entity_type``, ``entity_id`` and ``alert_info`` {``alert_severity``,
    ``alert_status``, ``alert_type``, ``alert_description``} — read from ``alert_info`` as Meta's
    reference nests them, or from the value itself where a payload puts them flat."""
    info = value.get("alert_info") if isinstance(value.get("alert_info"), dict) else value
    alert_type = _text(info.get("alert_type")).upper()
    if not alert_type:
        raise ValueError("names no alert_type")
    return AlertEvent(
        waba_id=waba,
        field="account_alerts",
        event=alert_type,
        raw=value,
        entity_type=_text(value.get("entity_type")).upper(),
        entity_id=_text(value.get("entity_id")),
        severity=_text(info.get("alert_severity")).upper(),
        status=_text(info.get("alert_status")).upper(),
        description=_text(info.get("alert_description")),
        occurred_at=at,
    )


def _inbound(pnid: str, item: dict, contacts: _Contacts) -> InboundReport:
    kind = str(item.get("type", ""))
    text = ""
    payload = ""
    if kind == "text":
        text = str((item.get("text") or {}).get("body", ""))
    elif kind == "button":
        button = item.get("button") or {}
        text, payload = str(button.get("text", "")), str(button.get("payload", ""))
    elif kind == "interactive":
        reply = item.get("interactive") or {}
        reply = reply.get("button_reply") or reply.get("list_reply") or {}
        text, payload = str(reply.get("title", "")), str(reply.get("id", ""))
    # ``from`` is the phone number, a BSUID, or absent for a user with a username (§11.1).
    sender = str(item.get("from") or "")
    user_id = str(item.get("from_user_id") or "")
    wa_id = "" if is_user_id(sender) else sender
    user_id = user_id or (sender if is_user_id(sender) else "")
    contact = contacts.find(wa_id=wa_id, user_id=user_id)
    wa_id, user_id = wa_id or contact.get("wa_id", ""), user_id or contact.get("user_id", "")
    if not wa_id and not user_id:
        raise ValueError("names no sender (no from, from_user_id or contact)")
    return InboundReport(
        phone_number_id=pnid,
        wamid=str(item["id"]),
        wa_id=wa_id,
        type=kind,
        occurred_at=_ts(item["timestamp"]),
        text=text,
        payload=payload,
        context_wamid=str((item.get("context") or {}).get("id", "")),
        profile_name=contact.get("name", ""),
        user_id=user_id,
        parent_user_id=contact.get("parent_user_id", ""),
        username=contact.get("username", ""),
        raw=item,
    )


def _template(waba: str, change_field: str, value: dict) -> TemplateEvent:
    kind = TEMPLATE_FIELDS[change_field]
    when = value.get("category_update_timestamp")
    return TemplateEvent(
        waba_id=waba,
        kind=kind,
        template_id=str(value.get("message_template_id", "")),
        name=str(value["message_template_name"]),
        language=str(value.get("message_template_language", "")).replace("-", "_"),
        event=str(value.get("event", "")).upper(),
        reason=str(value.get("reason") or ""),
        quality=str(value.get("new_quality_score", "")).upper(),
        previous_category=str(value.get("previous_category") or "").upper(),
        new_category=str(value.get("new_category") or "").upper(),
        correct_category=str(value.get("correct_category") or "").upper(),
        category_update_at=_ts(when) if when else None,
        components=_components(value) if kind == "components" else [],
        raw=value,
    )


def _components(value: dict) -> list[dict]:
    """``message_template_components_update``: the edited template's parts, back in the
    creation format (HEADER, BODY, FOOTER, BUTTONS)."""
    components: list[dict] = []
    if value.get("message_template_title"):
        components.append(
            {"type": "HEADER", "format": "TEXT", "text": str(value["message_template_title"])}
        )
    if value.get("message_template_element"):
        components.append({"type": "BODY", "text": str(value["message_template_element"])})
    if value.get("message_template_footer"):
        components.append({"type": "FOOTER", "text": str(value["message_template_footer"])})
    buttons = []
    for button in value.get("message_template_buttons") or []:
        if not isinstance(button, dict):
            continue
        out = {
            "type": str(button.get("message_template_button_type", "")).upper(),
            "text": str(button.get("message_template_button_text", "")),
        }
        if button.get("message_template_button_url"):
            out["url"] = str(button["message_template_button_url"])
        if button.get("message_template_button_phone_number"):
            out["phone_number"] = str(button["message_template_button_phone_number"])
        buttons.append(out)
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return components
