"""Signed Meta-shaped webhook bodies for the tests, built by the sandbox's wire module (the one
builder of Meta's envelope outside the product)."""

import json

from sandbox import wire

SECRET = "test-app-secret"  # config.settings.test WHATSAPP_APP_SECRET
DISPLAY = "15550783881"


def sign(body: bytes, secret: str = SECRET) -> str:
    return wire.sign(body, secret)


def envelope(phone_number_id, *, statuses=None, messages=None, contacts=None, waba="waba-1"):
    value = wire.messages_value(
        phone_number_id, DISPLAY, statuses=statuses, messages=messages, contacts=contacts
    )
    return wire.envelope(waba, "messages", value)


def status(wamid, name, ts, opaque=None, errors=None):
    return wire.status(
        wamid,
        name,
        ts,
        recipient_id="4915112345678",
        biz_opaque_callback_data=opaque,
        errors=errors,
    )


def post(client, payload, *, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature if signature is not None else sign(body)}
    return client.post("/webhooks/whatsapp", body, content_type="application/json", **headers)
