"""Meta's wire formats, as documented in docs/meta-api.md.

Error bodies follow §1.5, the send response §1.3, webhook envelopes §4.4/§4.5/§4.8/§4.9.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from typing import Any

# code -> (HTTP status, title, default details). HTTP statuses from Meta's error table (§2).
ERRORS: dict[int, tuple[int, str, str]] = {
    1: (400, "API Unknown", "Invalid request or possible server error."),
    2: (503, "API Service", "Temporary due to downtime or due to being overloaded."),
    4: (400, "API Too Many Calls", "The app has reached its API call rate limit."),
    100: (400, "Invalid parameter", "The request included one or more invalid parameters."),
    190: (401, "Access token has expired", "Invalid OAuth access token."),
    368: (
        403,
        "Temporarily blocked for policies violations",
        "The WhatsApp Business Account is restricted for policy violations.",
    ),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (400, "Rate limit hit", "Cloud API message throughput has been reached."),
    130472: (
        400,
        "User's number is part of an experiment",
        "Message not sent as part of an experiment.",
    ),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131005: (403, "Access denied", "Permission is either not granted or has been removed."),
    131008: (400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (500, "Service unavailable", "A service is temporarily unavailable."),
    131021: (400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (400, "Message undeliverable", "Unable to deliver message."),
    131031: (403, "Account has been locked", "The WhatsApp Business Account has been locked."),
    131042: (
        400,
        "Business eligibility payment issue",
        "There was an error related to your payment method.",
    ),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours "
        "have passed since the customer last replied to this number.",
    ),
    131048: (
        400,
        "Spam rate limit hit",
        "Message failed to send because there are restrictions "
        "on how many messages can be sent from this phone number.",
    ),
    131049: (
        400,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        400,
        "User has stopped marketing messages",
        "Unable to deliver the message: the user has stopped marketing messages.",
    ),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
    131053: (400, "Media upload error", "Unable to upload the media used in the message."),
    131062: (
        400,
        "Business-scoped User ID recipients are not supported for this message",
        "Authentication templates with a code button can only be sent to a phone number.",
    ),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this "
        "phone number to the same phone number in a short period of time.",
    ),
    131057: (500, "Account in maintenance mode", "Business Account is in maintenance mode."),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        "The number of parameters does not match the template.",
    ),
    132001: (
        404,
        "Template name does not exist in the translation",
        "template name does not exist in the translation",
    ),
    132005: (400, "Translated text too long", "Translated text is too long."),
    132007: (400, "Format character policy violated", "Format character policy violated."),
    132012: (
        400,
        "Parameter format does not match format in the created template",
        "Parameter format does not match format in the created template.",
    ),
    132015: (400, "Template is Paused", "Template is paused due to low quality."),
    132016: (400, "Template is Disabled", "Template has been paused too many times."),
    # §2: which code carries this details string is a CONFLICT in the sources; we use 132018.
    132018: (
        400,
        "There was an issue with the parameters in your template.",
        "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
    ),
    133004: (503, "Server temporarily unavailable", "Server is temporarily unavailable."),
}
ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"


class MetaError(Exception):
    """A Meta error the sandbox answers with (or reports in a `failed` status)."""

    def __init__(self, code: int, details: str | None = None) -> None:
        self.code = code
        self.http_status, self.title, default = ERRORS.get(code, (400, "Error", "Error."))
        self.details = details or default
        super().__init__(f"({code}) {self.details}")


def fbtrace_id(rng: random.Random) -> str:
    return base64.urlsafe_b64encode(rng.getrandbits(96).to_bytes(12, "big")).decode().rstrip("=")


def error_body(error: MetaError, rng: random.Random) -> dict[str, Any]:
    """§1.5: ``{"error": {message, type, code, error_data{details}, fbtrace_id}}``."""
    return {
        "error": {
            "message": f"(#{error.code}) {error.title}",
            "type": "OAuthException",
            "code": error.code,
            "error_data": {"messaging_product": "whatsapp", "details": error.details},
            "fbtrace_id": fbtrace_id(rng),
        }
    }


def webhook_error(error: MetaError) -> dict[str, Any]:
    """§4.5 ``statuses[].errors[]`` / §4.7 entry: title == message."""
    return {
        "code": error.code,
        "title": error.title,
        "message": error.title,
        "error_data": {"details": error.details},
        "href": ERROR_HREF,
    }


def dialog360_error(http_status: int, message: str) -> dict[str, Any]:
    """360dialog's own error shape (§2 notes, §7)."""
    return {"meta": {"success": False, "httpCode": http_status, "developerMessage": message}}


def send_response(
    to: str, wa_id: str, wamid: str, status: str = "accepted", *, user_id: str = ""
) -> dict[str, Any]:
    """§1.3 success body; a send to a BSUID echoes it as ``input`` and ``user_id`` (§11.1)."""
    contact = {"input": to, "wa_id": wa_id} if to else {"input": user_id, "user_id": user_id}
    return {
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{"id": wamid, "message_status": status}],
    }


def new_wamid() -> str:
    """A fresh message id. Not from the seeded generator (which makes the faults
    reproducible): a sandbox started again with the same seed must not hand out the ids of its
    last run, which the Waypost it served still holds (``make demo`` twice on one database)."""
    return "wamid." + base64.b64encode(secrets.token_bytes(26)).decode()


def sign(body: bytes, secret: str) -> str:
    """§4.2 ``X-Hub-Signature-256`` value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(
    waba_id: str | None,
    field: str,
    value: dict[str, Any],
    *more: tuple[str, dict[str, Any]],
    time: int | None = None,
) -> dict[str, Any]:
    """§4.4: ``{"object": "whatsapp_business_account", "entry": [{"id", "time"?, "changes":
    [{"value", "field"}, …]}]}`` — one entry with the change ``field``/``value`` and any
    ``more`` ``(field, value)`` changes. The one builder of Meta's webhook envelope outside the
    product: the sandbox's webhooks, the tests and the benchmarks use it. ``waba_id`` None
    leaves the entry without its id (a delivery that names no account)."""
    changes = [{"value": v, "field": f} for f, v in ((field, value), *more)]
    entry: dict[str, Any] = {"changes": changes}
    if waba_id is not None:
        entry = {"id": waba_id, **entry}
    if time is not None:
        entry["time"] = time
    return {"object": "whatsapp_business_account", "entry": [entry]}


def messages_value(phone_number_id: str, display_phone_number: str, **items: Any) -> dict[str, Any]:
    """§4.4 a ``messages`` change's value: the number's metadata and the non-empty ``items``
    (``statuses``, ``messages``, ``contacts``, ``errors``)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    value.update({k: v for k, v in items.items() if v})
    return value


def status(wamid: str, status: str, timestamp: int | str, **fields: Any) -> dict[str, Any]:
    """§4.5 one ``statuses[]`` item: ``id``, ``status``, ``timestamp`` and any other fields
    Meta sends (``recipient_id``, ``biz_opaque_callback_data``, ``errors``, ``pricing``…);
    empty ones are left out."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp)}
    item.update({k: v for k, v in fields.items() if v})
    return item


def pricing(category: str) -> dict[str, Any]:
    """§11.3 a billable status's ``pricing`` (per-message pricing)."""
    return {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": category.lower(),
    }


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
