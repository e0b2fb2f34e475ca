"""Meta's webhook envelope → normalised events (docs/meta-api.md §4.4 to §4.9). Pure: no
database, no Django.

``parse(body)`` never raises. A body that is not JSON or not Meta's envelope gives
``Parsed(invalid=...)``. Inside a valid envelope every item (a status, an inbound message, a
change of an unknown kind) is parsed on its own: a bad item becomes an ``ItemError`` and the
rest of the batch is unaffected. Unknown fields are kept in ``raw`` and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from messaging.reports import InboundReport, StatusReport


@dataclass(frozen=True)
class TemplateEvent:
    """message_template_status_update / message_template_quality_update (§4.8)."""

    waba_id: str
    kind: str  # status | quality
    template_id: str
    name: str
    language: str
    event: str = ""  # APPROVED, REJECTED, PAUSED, ... (status updates)
    reason: str = ""
    quality: str = ""  # GREEN, YELLOW, RED, UNKNOWN (quality updates)
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class AccountEvent:
    """phone_number_quality_update, account_update and the like: recorded, not acted on."""

    waba_id: str
    field: str
    event: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SystemErrorEvent:
    """``value.errors[]``: app-level errors not tied to one message (§4.7)."""

    phone_number_id: str
    code: int | None
    title: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ItemError:
    where: str
    error: str


@dataclass
class Parsed:
    events: list = field(default_factory=list)
    invalid: str = ""  # why the whole body is unusable


TEMPLATE_FIELDS = ("message_template_status_update", "message_template_quality_update")


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _status(pnid: str, item: dict) -> StatusReport:
    return StatusReport(
        phone_number_id=pnid,
        wamid=str(item["id"]),
        status=str(item["status"]),
        occurred_at=_ts(item["timestamp"]),
        recipient_id=str(item.get("recipient_id", "")),
        biz_opaque_callback_data=str(item.get("biz_opaque_callback_data", "")),
        errors=tuple(item.get("errors") or ()),
        raw=item,
    )


def _inbound(pnid: str, item: dict, names: dict[str, str]) -> InboundReport:
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
    wa_id = str(item["from"])
    return InboundReport(
        phone_number_id=pnid,
        wamid=str(item["id"]),
        wa_id=wa_id,
        type=kind,
        occurred_at=_ts(item["timestamp"]),
        text=text,
        payload=payload,
        context_wamid=str((item.get("context") or {}).get("id", "")),
        profile_name=names.get(wa_id, ""),
        raw=item,
    )


def _template(waba: str, change_field: str, value: dict) -> TemplateEvent:
    quality = change_field == "message_template_quality_update"
    return TemplateEvent(
        waba_id=waba,
        kind="quality" if quality else "status",
        template_id=str(value.get("message_template_id", "")),
        name=str(value["message_template_name"]),
        language=str(value.get("message_template_language", "")).replace("-", "_"),
        event=str(value.get("event", "")).upper(),
        reason=str(value.get("reason") or ""),
        quality=str(value.get("new_quality_score", "")).upper(),
        raw=value,
    )


def _messages_change(waba: str, value: dict, out: list, where: str) -> None:
    pnid = str((value.get("metadata") or {}).get("phone_number_id", ""))
    names = {
        str(c.get("wa_id")): str((c.get("profile") or {}).get("name", ""))
        for c in value.get("contacts") or []
        if isinstance(c, dict)
    }
    for kind, items in (
        ("statuses", value.get("statuses")),
        ("messages", value.get("messages")),
        ("errors", value.get("errors")),
    ):
        for index, item in enumerate(items or []):
            try:
                if kind == "statuses":
                    out.append(_status(pnid, item))
                elif kind == "messages":
                    out.append(_inbound(pnid, item, names))
                else:
                    out.append(
                        SystemErrorEvent(
                            pnid, item.get("code"), str(item.get("title", "")), raw=item
                        )
                    )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                out.append(ItemError(f"{where}.{kind}[{index}]", f"{type(exc).__name__}: {exc}"))


def load(body: bytes) -> Any:
    """The JSON of a body, or None when it is not JSON (or nested beyond the parser's reach)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def addressed_to(data: Any) -> tuple[set[str], set[str]]:
    """(WABA ids, phone number ids) that a webhook body names: each ``entry[].id`` and each
    ``changes[].value.metadata.phone_number_id``."""
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


def names_only(event, *, waba_id: str, phone_number_id: str) -> bool:
    """Does ``event`` concern only this sender (its WABA, its number)?"""
    if isinstance(event, TemplateEvent | AccountEvent):
        return event.waba_id == waba_id
    if isinstance(event, StatusReport | InboundReport | SystemErrorEvent):
        return event.phone_number_id == phone_number_id
    return True  # an ItemError concerns nothing


def parse(body: bytes) -> Parsed:
    data = load(body)
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
        for c_index, change in enumerate(entry.get("changes") or []):
            where = f"entry[{e_index}].changes[{c_index}]"
            try:
                change_field, value = str(change.get("field", "")), change["value"]
                if change_field == "messages":
                    _messages_change(waba, value, parsed.events, where)
                elif change_field in TEMPLATE_FIELDS:
                    parsed.events.append(_template(waba, change_field, value))
                else:
                    parsed.events.append(
                        AccountEvent(waba, change_field, str(value.get("event", "")), raw=value)
                    )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                parsed.events.append(ItemError(where, f"{type(exc).__name__}: {exc}"))
    return parsed
