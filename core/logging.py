"""Logging helpers: phone numbers and webhook route tokens never reach a log line in clear, and
lines can be JSON.

``MaskPhoneNumbersFilter`` is installed on every handler (settings.LOGGING). It rewrites the
formatted message, masking anything that looks like an international phone number to its
country prefix and last three digits: ``+4915112345678`` -> ``+491*******678``, and cutting the
secret segment of a per-sender webhook route to its first 4 characters
(``/webhooks/360dialog/AbCd…``: Django logs the path of every 4xx it answers); string values
passed as ``extra`` are masked the same way. ``core.sentry`` applies the same ``mask``.

``JsonFormatter`` (``LOG_FORMAT=json``) writes one JSON object per line: time, level, logger,
message, and the ``extra`` fields a call passed (a state change logs ``message_id``,
``tenant``, ``wamid``, ``state``).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# 8-15 digits, optionally led by "+", as E.164 allows; not part of a longer digit run. A UUID
# is matched first and left whole: its last group is all digits in about one id in 600 (a
# tenant's or a message's id in a log's fields would lose six of its digits).
_HEX = "[0-9a-fA-F]"
_PHONE = re.compile(
    rf"(?P<uuid>(?<![\w-]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!\w))"
    r"|(?<![\w.])(?P<plus>\+?)(?P<head>\d{3})(?P<middle>\d{2,9})(?P<tail>\d{3})(?![\w])"
)


def _mask_match(m: re.Match) -> str:
    if m["uuid"]:
        return m[0]
    return f"{m['plus']}{m['head']}{'*' * len(m['middle'])}{m['tail']}"


def mask_phone(text: str) -> str:
    return _PHONE.sub(_mask_match, text)


# A per-sender webhook route's last segment is its secret: /webhooks/<provider>/<token>.
_ROUTE_TOKEN = re.compile(r"(/webhooks/[^/?#\s]+/)([^/?#\s]+)")


def redact_route_tokens(text: str) -> str:
    """``text`` with each webhook route token cut to its first 4 characters: enough to tell
    two routes apart, nothing anyone could post to."""
    return _ROUTE_TOKEN.sub(lambda m: f"{m[1]}{m[2][:4]}…", text)


def mask(text: str) -> str:
    """What a log line or an error report may show of ``text``."""
    return mask_phone(redact_route_tokens(text))


# What every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class MaskPhoneNumbersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, mask(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{k: v for k, v in _extras(record).items() if _jsonable(v)},
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)
