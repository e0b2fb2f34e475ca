"""A made-up provider, "Relay", with a wire format of its own — to prove that adding a provider
is one module (this one) and one registry line, and that the contract suite is not written for
Meta's shapes. Its server (:class:`RelayServer`) is a thread in the test process.

Relay's wire format:

* send: ``POST {base}/v2/numbers/{number}/send`` with ``X-Relay-Key``; body
  ``{"to", "ref", "text"}`` or ``{"to", "ref", "template": {"id", "locale", "values"}}``;
  answers ``201 {"message_id"}`` or ``{"fault": {"code", "reason"}}``;
* webhooks: ``{"events": [{"kind": "status"|"inbound", "number", …}]}`` signed with
  ``X-Relay-Signature: <base64 HMAC-SHA256(body)>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from whatsapp.base import BaseProvider, OutboundMessage, SendAnswer, as_int
from whatsapp.errors import Classification, CoolDownScope, ErrorClass, ErrorInfo, WhoActs
from whatsapp.reports import InboundReport, ItemError, Parsed, StatusReport

THROTTLED, BAD_NUMBER, KEY_REVOKED = 1001, 1002, 1003


class RelayProvider(BaseProvider):
    base_url_setting = "RELAY_URL"
    signature_header = "X-Relay-Signature"
    error_table = {
        THROTTLED: ErrorInfo(
            str(THROTTLED),
            "Throttled",
            "Too many sends from this number; Waypost waits.",
            WhoActs.NOBODY,
            Classification(ErrorClass.COOL_DOWN, 2.0, CoolDownScope.SENDER),
        ),
        BAD_NUMBER: ErrorInfo(
            str(BAD_NUMBER),
            "Bad number",
            "The recipient cannot receive messages.",
            WhoActs.RECIPIENT,
            Classification(ErrorClass.NEVER_RETRY),
        ),
        KEY_REVOKED: ErrorInfo(
            str(KEY_REVOKED),
            "Key revoked",
            "The sender's key was revoked: give it a new one.",
            WhoActs.OPERATOR,
            Classification(ErrorClass.ALERT_TENANT),
        ),
    }

    def build_payload(self, message: OutboundMessage) -> dict:
        body: dict = {"to": message.recipient, "ref": message.callback_data}
        if message.text is not None:
            body["text"] = message.text
        else:
            values = [
                parameter.get("text", "")
                for component in message.components
                for parameter in component.get("parameters", [])
            ]
            body["template"] = {
                "id": message.template_name,
                "locale": message.template_language,
                "values": values,
            }
        return body

    def message_request(
        self, *, credential: str, phone_number_id: str, marketing_lite: bool = False
    ) -> tuple[str, dict]:
        return f"{self.base_url}/v2/numbers/{phone_number_id}/send", {"X-Relay-Key": credential}

    def parse_send(self, http_status: int, body: Any) -> SendAnswer:
        if http_status == 201 and isinstance(body, dict) and body.get("message_id"):
            return SendAnswer(wamid=str(body["message_id"]), message_status="queued")
        return self.parse_error(http_status, body)

    def parse_error(self, http_status: int, body: Any) -> SendAnswer:
        fault = body.get("fault") if isinstance(body, dict) else None
        if isinstance(fault, dict):
            return SendAnswer(error_code=as_int(fault.get("code")), error_title=fault["reason"])
        return SendAnswer(error_title=f"HTTP {http_status}")

    def signature_valid(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        header = headers.get(self.signature_header, "")
        if not secret or not header:
            return False
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        return hmac.compare_digest(expected, header.strip().encode())

    def webhook_addresses(self, body: bytes) -> tuple[set[str], set[str]] | None:
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError):
            return None
        return set(), {str(e.get("number")) for e in events if isinstance(e, dict)}

    def parse_webhook(self, body: bytes) -> Parsed:
        try:
            data = json.loads(body)
        except ValueError:
            return Parsed(invalid="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            return Parsed(invalid="not Relay's envelope (no events[])")
        parsed = Parsed()
        for index, event in enumerate(data["events"]):
            try:
                at = datetime.fromtimestamp(int(event["at"]), tz=UTC)
                if event["kind"] == "status":
                    fault = event.get("fault") or {}
                    code = as_int(fault.get("code"))
                    parsed.events.append(
                        StatusReport(
                            phone_number_id=str(event["number"]),
                            wamid=str(event["message_id"]),
                            status=str(event["state"]),
                            occurred_at=at,
                            biz_opaque_callback_data=str(event.get("ref", "")),
                            error_code=code,
                            error_title=str(fault.get("reason", "")),
                            error_class=str(self.classify(code, None).error_class) if fault else "",
                            raw=event,
                        )
                    )
                elif event["kind"] == "inbound":
                    parsed.events.append(
                        InboundReport(
                            phone_number_id=str(event["number"]),
                            wamid=str(event["id"]),
                            wa_id=str(event["from"]),
                            type="text",
                            occurred_at=at,
                            text=str(event["text"]),
                            raw=event,
                        )
                    )
                else:
                    raise ValueError(f"unknown kind {event['kind']!r}")
            except (KeyError, TypeError, ValueError) as exc:
                parsed.events.append(ItemError(f"events[{index}]", f"{type(exc).__name__}: {exc}"))
        return parsed


class RelayServer:
    """Relay's API, as a thread: accepts sends, fails them as told (``fail_with``)."""

    def __init__(self, key: str = "relay-key") -> None:
        self.key = key
        self.received: list[dict] = []
        self.fail_with: tuple[int, int | None] | None = None  # (HTTP status, fault code)
        ids = itertools.count(1)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # the body is a write of its own, after the headers

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("X-Relay-Key") != outer.key:
                    return self._answer(401, {"fault": {"code": KEY_REVOKED, "reason": "key"}})
                if outer.fail_with:
                    status, code = outer.fail_with
                    fault = {"fault": {"code": code, "reason": "told to"}} if code else {}
                    return self._answer(status, fault)
                outer.received.append(body)
                return self._answer(201, {"message_id": f"relay-{next(ids)}"})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
