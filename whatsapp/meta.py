"""Meta's WhatsApp Cloud API (Graph API), and the sandbox that stands in for it.

* Sends: ``POST {graph}/{version}/{phone_number_id}/messages`` with ``Authorization: Bearer``;
  the body is Meta's message object (docs/meta-api.md §1.2, §1.4); the answer is
  ``{"messages": [{"id": wamid, "message_status"?}]}`` or ``{"error": {...}}`` (§1.3, §1.5).
* Templates: ``{waba_id}/message_templates`` (create, list with cursor paging) and
  ``{template_id}`` (edit) (§5).
* Webhooks: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body, app secret)>`` (§4.2), the
  ``entry[].changes[]`` envelope (§4.4 to §4.9), the ``hub.*`` verification handshake (§4.1).
* Errors: :data:`META_ERROR_CLASSES`, Meta's codes and what each means (§2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from whatsapp.base import BaseProvider, OutboundMessage, SendAnswer, as_int
from whatsapp.errors import Classification, CoolDownScope, ErrorClass
from whatsapp.reports import (
    AccountEvent,
    InboundReport,
    ItemError,
    Parsed,
    RemoteTemplate,
    StatusReport,
    SystemErrorEvent,
    TemplateEvent,
)

_RETRY = Classification(ErrorClass.RETRY_BACKOFF)
_AMBIGUOUS = Classification(ErrorClass.AMBIGUOUS)
_ALERT = Classification(ErrorClass.ALERT_TENANT)
_NEVER = Classification(ErrorClass.NEVER_RETRY)


def _cool_down(seconds: float, scope: CoolDownScope) -> Classification:
    return Classification(ErrorClass.COOL_DOWN, seconds, scope)


#: Meta's error codes → what each means for the next attempt (docs/meta-api.md §2). A code
#: missing here is classified by the HTTP status; 200-299 (permissions) alert the tenant.
META_ERROR_CLASSES: dict[int, Classification] = {
    # Throughput / limits
    130429: _cool_down(1.0, CoolDownScope.SENDER),  # per-number throughput
    131056: _cool_down(6.0, CoolDownScope.RECIPIENT),  # pair rate limit: 1 msg / 6 s (§3.2)
    131048: _cool_down(900.0, CoolDownScope.SENDER),  # spam rate limit: no documented wait
    131057: _cool_down(90.0, CoolDownScope.SENDER),  # maintenance mode, up to 1 minute
    132015: _cool_down(600.0, CoolDownScope.TEMPLATE),  # paused template: until reinstated
    131049: _cool_down(86_400.0, CoolDownScope.RECIPIENT),  # "wait at least 24 hours"
    # Transient
    4: _RETRY,
    80007: _RETRY,
    1: _RETRY,
    131016: _RETRY,
    133004: _RETRY,
    # Ambiguous: the request may have been processed
    131000: _AMBIGUOUS,
    2: _AMBIGUOUS,
    # Alert the tenant: a person must act before this sender can send again
    **dict.fromkeys(
        (0, 3, 10, 190, 368, 131005, 131031, 131037, 131042, 131045, 133010, 134011), _ALERT
    ),
    # Never retry: the request is wrong or the user cannot receive it
    **dict.fromkeys(
        (
            100, 130472, 130497, 131008, 131009, 131021, 131026, 131047, 131050, 131051,
            131053, 132000, 132001, 132005, 132007, 132012, 132016, 132018, 132068, 132069,
            135000,
        ),
        _NEVER,
    ),
}  # fmt: skip

TEMPLATE_FIELDS = ("message_template_status_update", "message_template_quality_update")
ACCEPTED = "accepted"


class MetaCloudProvider(BaseProvider):
    base_url_setting = "WHATSAPP_GRAPH_URL"
    signature_header = "X-Hub-Signature-256"
    webhook_secret_setting = "WHATSAPP_APP_SECRET"
    error_classes = META_ERROR_CLASSES

    # --- sends -------------------------------------------------------------------------------

    def build_payload(self, message: OutboundMessage) -> dict:
        envelope = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.recipient,
        }
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

    def message_request(self, *, credential: str, phone_number_id: str) -> tuple[str, dict]:
        url = f"{self.base_url}/{self.graph_version}/{phone_number_id}/messages"
        return url, self._auth(credential)

    def parse_send(self, http_status: int, body: Any) -> SendAnswer:
        if http_status == 200 and isinstance(body, dict) and body.get("messages"):
            message = body["messages"][0]
            status = str(message.get("message_status", ACCEPTED))
            return SendAnswer(
                wamid=str(message.get("id", "")), message_status=status, held=status != ACCEPTED
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

    def classify(self, code: int | None, http_status: int | None) -> Classification:
        if code is not None and code not in self.error_classes and 200 <= code <= 299:
            return _ALERT  # permission errors (§2)
        return super().classify(code, http_status)

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

    # --- webhooks ----------------------------------------------------------------------------

    def signature_valid(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        header = headers.get(self.signature_header, "")
        if not secret or not header.startswith("sha256="):
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, header[7:].strip().lower())

    @staticmethod
    def verification_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
        """Meta's subscription handshake (§4.1): the challenge to echo, or None to refuse."""
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
            for c_index, change in enumerate(entry.get("changes") or []):
                where = f"entry[{e_index}].changes[{c_index}]"
                try:
                    change_field, value = str(change.get("field", "")), change["value"]
                    if change_field == "messages":
                        self._messages_change(value, parsed.events, where)
                    elif change_field in TEMPLATE_FIELDS:
                        parsed.events.append(_template(waba, change_field, value))
                    else:
                        parsed.events.append(
                            AccountEvent(waba, change_field, str(value.get("event", "")), raw=value)
                        )
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    parsed.events.append(ItemError(where, f"{type(exc).__name__}: {exc}"))
        return parsed

    def _messages_change(self, value: dict, out: list, where: str) -> None:
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
                        out.append(self._status(pnid, item))
                    elif kind == "messages":
                        out.append(_inbound(pnid, item, names))
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

    def _status(self, pnid: str, item: dict) -> StatusReport:
        error: dict = {}
        errors = item.get("errors") or ()
        if errors and isinstance(errors[0], dict):
            error = errors[0]
        code = as_int(error.get("code"))
        return StatusReport(
            phone_number_id=pnid,
            wamid=str(item["id"]),
            status=str(item["status"]),
            occurred_at=_ts(item["timestamp"]),
            recipient_id=str(item.get("recipient_id", "")),
            biz_opaque_callback_data=str(item.get("biz_opaque_callback_data", "")),
            error_code=code,
            error_title=str(error.get("title", ""))[:255],
            error_details=str((error.get("error_data") or {}).get("details", "")),
            error_class=str(self.classify(code, None).error_class) if error else "",
            raw=item,
        )


class SandboxProvider(MetaCloudProvider):
    """Waypost's sandbox speaks Meta's Cloud API; only the address differs (and it accepts
    any token, so a sandbox sender needs no credential)."""

    base_url_setting = "SANDBOX_URL"
    credential_required = False


def _load(body: bytes) -> Any:
    """The JSON of a body, or None when it is not JSON (or nested beyond the parser's reach)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


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
