"""Signed Meta-shaped webhook bodies for the tests."""

import hashlib
import hmac
import json

SECRET = "test-app-secret"  # config.settings.test WHATSAPP_APP_SECRET


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(phone_number_id, *, statuses=None, messages=None, contacts=None, waba="waba-1"):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    for key, items in (("statuses", statuses), ("messages", messages), ("contacts", contacts)):
        if items:
            value[key] = items
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"value": value, "field": "messages"}]}],
    }


def status(wamid, name, ts, opaque=None, errors=None):
    item = {"id": wamid, "status": name, "timestamp": str(ts), "recipient_id": "4915112345678"}
    if opaque:
        item["biz_opaque_callback_data"] = opaque
    if errors:
        item["errors"] = errors
    return item


def post(client, payload, *, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature if signature is not None else sign(body)}
    return client.post("/webhooks/whatsapp", body, content_type="application/json", **headers)
