"""Logging helpers: phone numbers never reach a log line in clear.

``MaskPhoneNumbersFilter`` is installed on every handler (settings.LOGGING). It rewrites the
formatted message, masking anything that looks like an international phone number to its
country prefix and last three digits: ``+4915112345678`` -> ``+491*******678``.
"""

from __future__ import annotations

import logging
import re

# 8-15 digits, optionally led by "+", as E.164 allows; not part of a longer digit run.
_PHONE = re.compile(r"(?<![\w.])(\+?)(\d{3})(\d{2,9})(\d{3})(?![\w])")


def mask_phone(text: str) -> str:
    return _PHONE.sub(lambda m: f"{m[1]}{m[2]}{'*' * len(m[3])}{m[4]}", text)


class MaskPhoneNumbersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True
