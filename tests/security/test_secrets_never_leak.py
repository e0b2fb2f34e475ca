"""No access token, API key, app secret, callback secret or full phone number appears in logs,
Sentry events, error responses or the admin's change history.

One test drives the paths that touch them — sends (accepted and refused), a provider that
refuses the token, webhooks with good and bad signatures, a callback endpoint with its secret,
admin actions — with every log record captured at DEBUG and Sentry initialised with a
transport that keeps its events; then it searches all of it for each secret."""

import json
import logging

import pytest
import sentry_sdk
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User

from core import sentry as sentry_setup
from messaging.models import Message
from webhooks.services import deliveries_drain

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body
from ..webhooks.helpers import SECRET as APP_SECRET
from ..webhooks.helpers import envelope, sign, status

pytestmark = pytest.mark.django_db
PHONE = "+4915198765432"
TOKEN = "EAAG-very-secret-access-token-0123456789"


class Kept(sentry_sdk.transport.Transport):
    events: list = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.payload.json is not None:
                Kept.events.append(item.payload.json)


@pytest.fixture
def sentry():
    Kept.events = []
    sentry_setup.init(dsn="https://public@sentry.invalid/1", transport=Kept)  # as in settings
    yield Kept.events
    sentry_sdk.init(dsn=None)


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        # What a real handler would write: the formatted message, its traceback, its extras.
        self.lines.append(self.format(record))
        self.lines.append(json.dumps(record.__dict__, default=str))


@pytest.fixture
def logs(settings):
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(previous)


def test_secrets_and_numbers_stay_out_of_logs_sentry_errors_and_admin_history(
    tenant_a, client, admin_client, logs, sentry, monkeypatch, settings
):
    api, raw_key = tenant_a.client, tenant_a.raw_key
    template = MessageTemplateFactory(tenant=tenant_a.tenant)
    monkeypatch.setenv("WAYPOST_TEST_TOKEN", TOKEN)
    sender = tenant_a.tenant.senders.get()
    sender.credentials_env = "WAYPOST_TEST_TOKEN"
    sender.save()
    responses: list[str] = []

    # The API: a callback endpoint (its secret is shown once, in that answer only), sends.
    configured = api.patch(
        "/api/v1/tenant",
        {"callback_url": "https://client.example/hooks", "callback_events": ["message.read"]},
        format="json",
    )
    assert configured.status_code == 200, configured.content
    callback_secret = configured.json()["callback_secret"]
    sent = api.post(
        "/api/v1/messages", body(template, to=PHONE), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert sent.status_code == 202
    for answer in (
        api.post(
            "/api/v1/messages",
            body(template, to=PHONE + "9999"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k2",
        ),
        api.post(
            "/api/v1/messages",
            {**body(template, to=PHONE), "template": {}},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k3",
        ),
        api.post(
            "/api/v1/messages",
            body(template, to="+4915100000001"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k1",
        ),  # the key again, another body: 409
        client.get("/api/v1/messages", HTTP_AUTHORIZATION=f"Bearer {raw_key}x"),
        client.get("/api/v1/messages", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"),
    ):
        assert 400 <= answer.status_code < 500
        responses.append(answer.content.decode())

    # Webhooks: a good one naming the number, a forged one.
    message = Message.objects.get(pk=sent.json()["id"])
    hook = (
        json.dumps(
            envelope(
                sender.phone_number_id,
                statuses=[status("wamid.x", "read", 1750030073, opaque=str(message.pk))],
            )
        )
        .replace("4915112345678", PHONE.lstrip("+"))
        .encode()
    )
    assert (
        client.post(
            "/webhooks/whatsapp",
            hook,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=sign(hook),
        ).status_code
        == 200
    )
    forged = client.post(
        "/webhooks/whatsapp",
        hook,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(hook, "guess"),
    )
    responses.append(forged.content.decode())
    deliveries_drain()

    # Errors that reach Sentry: an exception whose text holds the number and the token.
    try:
        raise RuntimeError(f"provider refused {PHONE} with Bearer {TOKEN}")
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    logging.getLogger("waypost.test").error("sending to %s failed", PHONE, exc_info=True)
    sentry_sdk.flush()

    # The admin: a tenant edited, an API key made, the sender edited.
    admin = User.objects.get(username="admin")
    admin_client.force_login(admin)
    admin_client.post(
        "/admin/messaging/message/",
        {
            "action": "cancel",
            "_selected_action": [str(message.pk)],
            "apply": "1",
            "reason": "customer asked",
        },
    )
    history = [
        f"{e.object_repr} {e.change_message} {e.get_change_message()}"
        for e in LogEntry.objects.all()
    ]

    haystacks = {
        "logs": "\n".join(logs),
        "sentry": json.dumps(sentry),
        "error responses": "\n".join(responses),
        "admin history": "\n".join(history),
    }
    assert logs and sentry and responses
    secrets = {
        "API key": raw_key,
        "access token": TOKEN,
        "app secret": APP_SECRET,
        "callback secret": callback_secret,
        "full phone number": PHONE.lstrip("+")[2:],  # the national part, in any formatting
    }
    found = [
        f"{secret} in {where}"
        for where, text in haystacks.items()
        for secret, value in secrets.items()
        if value and value in text
    ]
    assert not found, found
