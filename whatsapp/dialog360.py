"""360dialog's hosted Cloud API: Meta's payloads, error codes and webhook envelope pass through;
what differs is translated here (docs/meta-api.md §7).

* Sends: ``POST {base}/messages`` with ``D360-API-KEY`` — no version and no phone number id in
  the path (the key names the number).
* Templates: ``{base}/v1/configs/templates``, one page (360dialog pages by offset; one page of
  ``limit`` covers a WABA).
* Errors: Meta's ``{"error": …}`` when Meta answered; 360dialog's own
  ``{"meta": {"httpCode", "developerMessage", "success"}}`` otherwise (no Meta code: classified
  by the HTTP status).
* Number health: 360dialog does not proxy Graph's phone-number node (``/{phone-number-id}``);
  its ``GET {base}/health_status`` passes a ``fields`` parameter on to the number's node
  ("additional fields … are concatenated with ``health_status`` into a single ``fields``
  param": 360dialog Messaging API reference, Health,
  https://docs.360dialog.com/docs/messaging-api/api-reference/health), so the limit and the
  quality rating are asked there, and answered in Meta's field names.
* Webhooks: delivered to a sender's own route (``/webhooks/360dialog/<token>``: the token
  authenticates it); ``X-360dialog-Signature`` (hex HMAC-SHA256 of the body) is checked too when
  a secret is configured. No subscription handshake (Meta's ``hub.challenge`` is Meta's app
  subscription; 360dialog's webhook URL is set through its API): a GET is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from whatsapp.base import BaseProvider, SendAnswer
from whatsapp.meta import HEALTH_FIELDS, MetaCloudProvider


class Dialog360Provider(MetaCloudProvider):
    base_url_setting = "DIALOG360_BASE_URL"
    signature_header = "X-360dialog-Signature"
    webhook_secret_setting = "DIALOG360_WEBHOOK_SECRET"
    verify_token_setting = ""  # no handshake (see above)
    per_sender_webhooks = True
    supports_marketing_lite = False  # a partner beta, not a documented route

    def message_request(
        self, *, credential: str, phone_number_id: str, marketing_lite: bool = False
    ) -> tuple[str, dict]:
        return f"{self.base_url}/messages", {"D360-API-KEY": credential}

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        return f"{self.base_url}/v1/configs/templates", {"D360-API-KEY": credential}

    def template_request(self, *, credential: str, template_id: str) -> tuple[str, dict]:
        # No documented edit route at 360dialog: the base's refusal, not Meta's Graph path.
        return BaseProvider.template_request(self, credential=credential, template_id=template_id)

    def parse_error(self, http_status: int, body: Any) -> SendAnswer:
        meta = body.get("meta") if isinstance(body, dict) else None
        if isinstance(meta, dict) and "error" not in body:
            message = str(meta.get("developerMessage", ""))
            return SendAnswer(error_title=message, error_details=message)
        return super().parse_error(http_status, body)

    def number_health_request(
        self, *, credential: str, phone_number_id: str
    ) -> tuple[str, dict, dict] | None:
        # The key names the number (see above); Meta's fields are passed on.
        return (
            f"{self.base_url}/health_status",
            {"D360-API-KEY": credential},
            {"fields": HEALTH_FIELDS},
        )

    def templates_page(self, body: dict) -> list[dict]:
        return list(body.get("waba_templates") or body.get("data") or [])

    def next_page(self, body: dict) -> str:
        return ""

    def verification_challenge(self, params: Mapping[str, str], verify_token: str) -> str | None:
        return BaseProvider.verification_challenge(self, params, verify_token)  # none: refused

    def signature_valid(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        header = headers.get(self.signature_header, "")
        if not secret or not header:
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        given = header.strip().lower().encode("utf-8", "replace")  # bytes: see meta.py
        return hmac.compare_digest(expected.encode(), given)
