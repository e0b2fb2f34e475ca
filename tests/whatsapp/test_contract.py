"""The contract every provider passes: send, error classification, webhook signature, webhook
parsing. It runs for Meta and 360dialog against the project's sandbox over HTTP, and for
``Relay`` — a provider defined in ``tests/whatsapp/relay.py`` with a wire format of its own —
against its own little server. What a case supplies is only its wire format (how to inject a
failure, how to sign, how a webhook looks); the assertions are the same for all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings

from devtools.servers import free_port
from sandbox import wire
from whatsapp import ErrorClass, OutboundMessage, Provider, SubmitOutcome, get_provider
from whatsapp.base import BaseProvider
from whatsapp.dialog360 import Dialog360Provider
from whatsapp.meta import OLDEST_SUPPORTED_GRAPH_VERSION, MetaCloudProvider
from whatsapp.registry import PROVIDERS
from whatsapp.reports import InboundReport, ItemError, StatusReport

from .relay import BAD_NUMBER, KEY_REVOKED, THROTTLED, RelayProvider, RelayServer

pytestmark = pytest.mark.redis

SECRET = "contract-secret"
WABA = "contract-waba"
TEMPLATE = {
    "name": "contract_order",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Order {{1}} has shipped."}],
}
_refs = itertools.count(1)


@dataclass
class Case:
    provider: BaseProvider
    credential: str
    phone_number_id: str
    codes: dict[ErrorClass, int]  # one of the provider's codes for each class
    fail_next: Callable[[int, int | None], None]  # (HTTP status, provider code)
    received: Callable[[str], bool]  # did the server accept a message with this ref?
    sign: Callable[[bytes, str], dict]  # body, secret → the request headers
    webhook: Callable[[str, list[dict]], bytes]  # phone number id, neutral events → body


# --- Meta and 360dialog: the sandbox -------------------------------------------------------------


def _meta_sign(body: bytes, secret: str) -> dict:
    return {"X-Hub-Signature-256": wire.sign(body, secret)}


def _d360_sign(body: bytes, secret: str) -> dict:
    return {"X-360dialog-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def _meta_webhook(phone_number_id: str, events: list[dict]) -> bytes:
    statuses, messages = [], []
    for e in events:
        if e["kind"] == "status":
            errors = [{"code": e["code"], "title": "Failed"}] if e.get("code") else None
            statuses.append(wire.status(e["wamid"], e["status"], e["at"], errors=errors))
        elif e["kind"] == "inbound":
            messages.append(
                {
                    "from": e["from"],
                    "id": e["wamid"],
                    "timestamp": str(e["at"]),
                    "type": "text",
                    "text": {"body": e["text"]},
                }
            )
        else:  # a status without its id
            statuses.append({"status": "sent", "timestamp": "1"})
    value = wire.messages_value(
        phone_number_id, "15550001111", statuses=statuses, messages=messages
    )
    return json.dumps(wire.envelope(WABA, "messages", value)).encode()


def _sandbox_case(sandbox, provider: BaseProvider, phone_number_id: str, sign) -> Case:
    MetaCloudProvider(
        base_url=sandbox.url, graph_version=settings.WHATSAPP_GRAPH_VERSION
    ).create_template(credential="test-token", waba_id=WABA, definition=TEMPLATE)

    def fail_next(status: int, code: int | None) -> None:
        if status >= 500:
            sandbox.configure(http_500_rate=1.0)
        else:
            sandbox.configure(error_rates={str(code): 1.0})

    def received(ref: str) -> bool:
        found = sandbox.get("/_sandbox/messages", params={"biz_opaque_callback_data": ref})
        return found.json()["count"] == 1

    return Case(
        provider=provider,
        credential="test-token" if isinstance(provider, MetaCloudProvider) else "d360-key",
        phone_number_id=phone_number_id,
        codes={
            ErrorClass.NEVER_RETRY: 131026,
            ErrorClass.COOL_DOWN: 130429,
            ErrorClass.ALERT_TENANT: 131031,
        },
        fail_next=fail_next,
        received=received,
        sign=sign,
        webhook=_meta_webhook,
    )


# --- Relay: its own server -----------------------------------------------------------------------


def _relay_webhook(phone_number_id: str, events: list[dict]) -> bytes:
    out = []
    for e in events:
        if e["kind"] == "status":
            item = {"kind": "status", "number": phone_number_id, "message_id": e["wamid"]}
            item |= {"state": e["status"], "at": e["at"]}
            if e.get("code"):
                item["fault"] = {"code": e["code"], "reason": "Failed"}
            out.append(item)
        elif e["kind"] == "inbound":
            out.append(
                {"kind": "inbound", "number": phone_number_id, "id": e["wamid"], "from": e["from"]}
                | {"text": e["text"], "at": e["at"]}
            )
        else:
            out.append({"kind": "status", "number": phone_number_id})
    return json.dumps({"events": out}).encode()


def _relay_sign(body: bytes, secret: str) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"X-Relay-Signature": base64.b64encode(digest).decode()}


@pytest.fixture(params=["meta", "meta-oldest-version", "360dialog", "relay"])
def case(request):
    if request.param == "relay":
        server = RelayServer()
        provider = RelayProvider(base_url=server.url)

        def fail_next(status: int, code: int | None) -> None:
            server.fail_with = (status, code)

        yield Case(
            provider=provider,
            credential=server.key,
            phone_number_id="relay-number",
            codes={
                ErrorClass.NEVER_RETRY: BAD_NUMBER,
                ErrorClass.COOL_DOWN: THROTTLED,
                ErrorClass.ALERT_TENANT: KEY_REVOKED,
            },
            fail_next=fail_next,
            received=lambda ref: [b["ref"] for b in server.received].count(ref) == 1,
            sign=_relay_sign,
            webhook=_relay_webhook,
        )
        server.stop()
        return
    sandbox = request.getfixturevalue("sandbox")
    common = {"graph_version": settings.WHATSAPP_GRAPH_VERSION}
    if request.param.startswith("meta"):
        if request.param == "meta-oldest-version":  # the wire formats hold on it too
            common = {"graph_version": OLDEST_SUPPORTED_GRAPH_VERSION}
        provider = MetaCloudProvider(base_url=sandbox.url, **common)
        yield _sandbox_case(sandbox, provider, "contract-meta", _meta_sign)
    else:
        sandbox.post(
            "/_sandbox/numbers",
            {"phone_number_id": "contract-360", "waba_id": WABA, "d360_api_key": "d360-key"},
        )
        provider = Dialog360Provider(base_url=sandbox.url, **common)
        yield _sandbox_case(sandbox, provider, "contract-360", _d360_sign)


def _send(case: Case, ref: str):
    message = OutboundMessage(
        recipient="+15551230001",
        callback_data=ref,
        template_name="contract_order",
        template_language="en_US",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}],
    )
    payload = case.provider.build_payload(message)
    result = case.provider.send_message(
        credential=case.credential, phone_number_id=case.phone_number_id, payload=payload
    )
    return result, case.provider.answer(result)


# --- send ----------------------------------------------------------------------------------------


def test_a_send_is_accepted_with_the_providers_message_id(case):
    ref = f"ref-{next(_refs)}"
    result, answer = _send(case, ref)
    assert result.outcome == SubmitOutcome.RESPONSE
    assert answer.accepted and answer.wamid and answer.classification is None
    assert case.received(ref)


@pytest.mark.parametrize(
    "error_class", [ErrorClass.NEVER_RETRY, ErrorClass.COOL_DOWN, ErrorClass.ALERT_TENANT]
)
def test_a_refusal_is_classified_by_the_providers_code(case, error_class):
    code = case.codes[error_class]
    case.fail_next(400, code)
    _, answer = _send(case, f"ref-{next(_refs)}")
    assert not answer.accepted
    assert answer.error_code == code and answer.code == str(code)
    assert answer.classification.error_class == error_class
    assert case.provider.known_error_code(code)


def test_a_server_error_is_ambiguous(case):
    case.fail_next(500, None)
    _, answer = _send(case, f"ref-{next(_refs)}")
    assert answer.classification.error_class == ErrorClass.AMBIGUOUS


def test_no_connection_is_not_sent_and_retried(case):
    closed = type(case.provider)(
        base_url=f"http://127.0.0.1:{free_port()}", graph_version=case.provider.graph_version
    )
    result = closed.send_message(credential="x", phone_number_id="1", payload={"to": "1"})
    answer = closed.answer(result)
    assert result.outcome == SubmitOutcome.NOT_SENT
    assert answer.classification.error_class == ErrorClass.RETRY_BACKOFF
    assert answer.code == "not_sent"


# --- webhook signature ---------------------------------------------------------------------------


def test_the_webhook_signature_is_checked(case):
    body = case.webhook(case.phone_number_id, [_delivered("w-1")])
    valid = case.provider.signature_valid
    assert valid(body, case.sign(body, SECRET), SECRET)
    assert not valid(body, case.sign(body, "another-secret"), SECRET)
    assert not valid(body + b" ", case.sign(body, SECRET), SECRET)
    assert not valid(body, {}, SECRET)
    assert not valid(body, case.sign(body, SECRET), "")
    assert case.provider.signature_header in case.sign(body, SECRET)
    # A forged header with a non-ASCII character is a refusal, not an exception (a 500).
    forged = {name: value[:-1] + "\u00e9" for name, value in case.sign(body, SECRET).items()}
    assert not valid(body, forged, SECRET)


# --- webhook parsing -----------------------------------------------------------------------------


def _delivered(wamid: str) -> dict:
    return {"kind": "status", "wamid": wamid, "status": "delivered", "at": 1_750_000_000}


def test_statuses_are_parsed_into_reports(case):
    failed = {"kind": "status", "wamid": "w-2", "status": "failed", "at": 1_750_000_001}
    failed["code"] = case.codes[ErrorClass.NEVER_RETRY]
    body = case.webhook(case.phone_number_id, [_delivered("w-1"), failed])
    parsed = case.provider.parse_webhook(body)
    assert not parsed.invalid
    delivered, refused = parsed.events
    assert isinstance(delivered, StatusReport) and isinstance(refused, StatusReport)
    assert (delivered.phone_number_id, delivered.wamid, delivered.status) == (
        case.phone_number_id,
        "w-1",
        "delivered",
    )
    assert delivered.occurred_at.timestamp() == 1_750_000_000
    assert not delivered.has_error and delivered.error_class == ""
    assert refused.status == "failed" and refused.error_code == failed["code"]
    assert refused.error_class == ErrorClass.NEVER_RETRY
    assert case.provider.webhook_addresses(body)[1] == {case.phone_number_id}


def test_inbound_messages_are_parsed_into_reports(case):
    inbound = {"kind": "inbound", "wamid": "in-1", "from": "15551230001", "text": "Hello"}
    body = case.webhook(case.phone_number_id, [inbound | {"at": 1_750_000_002}])
    [report] = case.provider.parse_webhook(body).events
    assert isinstance(report, InboundReport)
    assert (report.phone_number_id, report.wamid, report.wa_id, report.text) == (
        case.phone_number_id,
        "in-1",
        "15551230001",
        "Hello",
    )


def test_a_bad_item_spoils_only_itself_and_a_bad_body_is_invalid(case):
    body = case.webhook(case.phone_number_id, [{"kind": "broken"}, _delivered("w-3")])
    broken, good = case.provider.parse_webhook(body).events
    assert isinstance(broken, ItemError) and isinstance(good, StatusReport)
    assert case.provider.parse_webhook(b"not json").invalid
    assert case.provider.parse_webhook(b"[]").invalid
    assert case.provider.webhook_addresses(b"not json") is None


# --- the registry --------------------------------------------------------------------------------


def test_every_provider_value_has_a_class():
    assert set(PROVIDERS) == set(Provider)


def test_adding_a_provider_is_one_registry_line(monkeypatch, settings):
    server = RelayServer()
    try:
        monkeypatch.setitem(PROVIDERS, "relay", RelayProvider)
        settings.RELAY_URL = server.url
        get_provider.cache_clear()
        provider = get_provider("relay")
        assert isinstance(provider, RelayProvider) and provider.base_url == server.url
        case = Case(provider, server.key, "n", {}, None, None, None, None)
        _, answer = _send(case, "via-registry")
        assert answer.accepted and server.received[0]["ref"] == "via-registry"
    finally:
        get_provider.cache_clear()
        server.stop()
