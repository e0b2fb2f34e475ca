"""Signed Meta status webhooks for the load and fault-injection runs (``make bench``,
``make chaos``): the wire format lives here, outside the product packages."""

from __future__ import annotations

import hashlib
import hmac
import json

from devtools.stack import APP_SECRET


def signed_status(sender: dict, wamid: str, recipient: str, status: str, n: int) -> tuple[str, str]:
    """A Meta status webhook for one message, as the sandbox (or Meta) would post it, and its
    ``X-Hub-Signature-256`` header under ``APP_SECRET``: ``(signature, body)``. ``sender`` is
    ``create_tenant``'s ``sender`` (``phone_number_id``, ``waba_id``); ``n`` makes the
    timestamp, and so the body, unique."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550000000",
            "phone_number_id": sender["phone_number_id"],
        },
        "statuses": [
            {
                "id": wamid,
                "status": status,
                "timestamp": str(1_790_000_000 + n),
                "recipient_id": recipient.lstrip("+"),
                **(
                    {
                        "pricing": {
                            "billable": True,
                            "pricing_model": "PMP",
                            "type": "regular",
                            "category": "utility",
                        }
                    }
                    if status == "delivered"
                    else {}
                ),
            }
        ],
    }
    data = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": sender["waba_id"], "changes": [{"field": "messages", "value": value}]}
            ],
        },
        separators=(",", ":"),
    )
    digest = hmac.new(APP_SECRET.encode(), data.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}", data
