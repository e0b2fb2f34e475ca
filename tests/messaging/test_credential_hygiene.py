"""A credential that is not a clean header value never leaks (issue 18 §5).

A secret with a trailing newline made ``requests`` raise an error quoting the header —
``'Bearer <token>\\n'`` — and that text became the message's ``error_title`` and its ledger,
readable through the tenant's API. Through the real pipeline (the API, a drain in this
process, the sandbox over HTTP): surrounding whitespace is stripped when the credential is
loaded; a value with a control character inside is refused by name, with an alert; and no
transport error is ever recorded by its text."""

from __future__ import annotations

import json
import logging

import pytest
from django.forms.models import model_to_dict

from messaging.models import Message
from messaging.send import pipeline
from tenants import models as tenant_models
from tenants.models import SenderNumber
from whatsapp import get_provider

from .conftest import make_live_tenant, send

SECRET = "EAAG-crlf-secret-0123456789abcdef"


class Everything(logging.Handler):
    """Every log record at DEBUG, as a real handler would write it, with its extras."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))
        self.lines.append(json.dumps(record.__dict__, default=str))


@pytest.fixture
def logs():
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
def shop(db, sandbox, settings, monkeypatch):
    """A tenant whose sender reads its token from a variable reserved for it, on the sandbox.

    No worker: the drain runs in this process (with this process's environment), and the
    test's transaction keeps its rows from any worker another test started."""
    settings.SANDBOX_URL = sandbox.url
    get_provider.cache_clear()
    monkeypatch.setattr(tenant_models, "_unusable_alerted", {})
    tenant = make_live_tenant(sandbox, "crlf")
    variable = "WAYPOST_CRLF__ACCESS_TOKEN"  # a name reserved for tenant "crlf"
    SenderNumber.objects.filter(pk=tenant.sender.pk).update(credentials_env=variable)
    tenant.variable = variable
    yield tenant
    get_provider.cache_clear()


def sent_and_drained(shop, key: str) -> Message:
    message_id = send(shop, key)["id"]
    pipeline.drain(tenant_id=shop.tenant.pk)
    return Message.objects.get(pk=message_id)


def everything_about(shop, message: Message, logs: Everything) -> dict[str, str]:
    """Where the secret must never be: the message, its ledger, the API, the sender's row
    (shown in the admin), and every log line."""
    message.refresh_from_db()
    sender = SenderNumber.objects.get(pk=shop.sender.pk)
    return {
        "message": json.dumps(model_to_dict(message), default=str),
        "ledger": json.dumps(list(message.events.values()), default=str),
        "API": shop.client.get(f"/api/v1/messages/{message.pk}").content.decode()
        + shop.client.get("/api/v1/messages").content.decode(),
        "sender": json.dumps(model_to_dict(sender), default=str),
        "logs": "\n".join(logs.lines),
    }


def assert_nowhere(haystacks: dict[str, str]) -> None:
    found = [where for where, text in haystacks.items() if SECRET in text]
    assert not found, f"the secret is in: {found}"


def test_a_trailing_newline_is_stripped_and_the_message_goes(shop, monkeypatch, logs):
    monkeypatch.setenv(shop.variable, f"  {SECRET}\r\n")
    message = sent_and_drained(shop, "k1")
    assert message.state == "accepted", (message.error_code, message.error_title)
    assert_nowhere(everything_about(shop, message, logs))


def test_a_newline_inside_is_refused_by_name_with_an_alert(shop, monkeypatch, logs):
    monkeypatch.setenv(shop.variable, f"{SECRET}\r\nX-Injected: yes")
    message = sent_and_drained(shop, "k1")
    second = sent_and_drained(shop, "k2")  # one alert per variable, not one per message
    assert message.state != "accepted" and message.error_class == "alert_tenant"
    assert shop.variable in message.error_title
    assert "control or non-ASCII character" in message.error_title
    assert SenderNumber.objects.get(pk=shop.sender.pk).status == "blocked"
    alerts = [r for r in logs.records if getattr(r, "alert", "").startswith("sender credential")]
    assert len(alerts) == 1
    assert alerts[0].variable == shop.variable
    assert alerts[0].tenant_id == str(shop.tenant.pk)
    assert_nowhere(everything_about(shop, message, logs))
    assert_nowhere(everything_about(shop, second, logs))


def test_a_transport_error_is_recorded_by_its_class_never_its_text(shop, monkeypatch, logs):
    """Whatever reaches ``requests`` (here the raw value, past the credential's own checks):
    its error quotes the header; Waypost records the class and a fixed sentence."""
    monkeypatch.setattr(SenderNumber, "credential", lambda self: f"{SECRET}\n")
    message = sent_and_drained(shop, "k1")
    assert message.error_title == "InvalidHeader: a request header was refused before sending"
    # Refused while the request was prepared: nothing left, so it is retried, not unknown.
    assert message.state == "retry_scheduled"
    [answer] = message.events.filter(type="submit_responded")
    assert (answer.detail["outcome"], answer.detail["error"]) == ("not_sent", message.error_title)
    assert_nowhere(everything_about(shop, message, logs))
