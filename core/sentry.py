"""What may leave for Sentry: ``before_send`` drops the values of anything that can hold a
secret or a user's data (tokens, signatures, message parameters, bodies, metadata) and masks
phone numbers and webhook route tokens (a request's URL) in every remaining string."""

from __future__ import annotations

import re
from typing import Any

from core.logging import mask

# Secret-ish words anywhere in a key; the data-carrying names only as whole words of the key
# ("text", "body_text" — not "contexts", which the SDK itself needs intact).
SENSITIVE = re.compile(
    r"token|secret|passw|authori[sz]ation|api[_-]?key|signature|cookie|session|credential|"
    r"(?:^|[_\-.])(?:parameters|components|payload|metadata|body|text|recipient|to|wa_id)"
    r"(?:$|[_\-.])",
    re.IGNORECASE,
)
FILTERED = "[Filtered]"


def scrub(value: Any, key: str = "") -> Any:
    if key and SENSITIVE.search(key):
        return FILTERED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask(value)
    return value


def before_send(event: dict, hint: dict) -> dict:
    return scrub(event)
