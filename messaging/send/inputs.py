"""What the message API accepts, as DRF serializers: a template message or a text message, and a
batch of them. ``message_input`` validates one body and returns typed data, raising the API's
one error shape (``core.api``) with the codes clients already handle. A key no serializer
defines is refused (``unknown_field``), and each serializer states in the OpenAPI schema the
constraints that are checked later (``openapi_properties``, ``core.openapi``).

The checks that need the database (the template exists and is sendable, its parameters fit,
the 24-hour window is open) are the services'; these are the checks of the body alone.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import timedelta
from typing import Any

import phonenumbers
from django.utils import timezone
from rest_framework import serializers

from core.api import UNKNOWN_FIELD, RejectUnknownFields, flatten_errors, validation_summary
from core.errors import ValidationFailed
from messaging.send.windows import InvalidWindow, SendWindow
from templates_registry.formats import LANGUAGE_SCHEMA, SEND_COMPONENTS, TEMPLATE_NAME_SCHEMA

TEXT_MAX = 4096  # Meta's limit for a text message body
# Metadata is the caller's own reference data (an order id, a user id), stored with the message
# and returned with it; not a document store. Measured as compact JSON in UTF-8.
METADATA_MAX_BYTES = 4096
MAX_BATCH = 1000
SEND_AT_MAX_DAYS = 35  # a schedule further out is a campaign plan, not a queued message

# A field's first error → the error code clients see (otherwise ``validation_error``).
ERROR_CODES = {
    ("to", None): "recipient_invalid",
    ("recipient", "ambiguous"): "recipient_ambiguous",
    ("recipient", None): "recipient_invalid",
    ("metadata", "too_large"): "metadata_too_large",
    ("template.components", None): "components_invalid",
    ("messages", "max_length"): "batch_too_large",
    ("send_at", None): "send_at_invalid",
    ("send_window", None): "send_window_invalid",
}


PHONE_CHARACTERS = re.compile(r"\A *\+[0-9 ().\-]{4,30} *\Z")


def normalise_recipient(raw: str) -> str:
    """E.164 with phonenumbers; a number without ``+`` and country code is refused (Meta
    would prepend the *business's* country code and may mis-deliver, docs/meta-api.md §1.1).
    Only digits and the usual separators are read: phonenumbers alone would also take
    ``mailto:+49…``, zero-width spaces or a trailing newline, which say the input is broken."""
    number = None
    if PHONE_CHARACTERS.match(raw):
        try:
            number = phonenumbers.parse(raw.strip(" "), None)
        except phonenumbers.NumberParseException:
            number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise serializers.ValidationError(
            "'to' must be a valid phone number in international format, e.g. +4915112345678.",
            code="invalid",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A business-scoped user id: ISO country code, optionally ENT (a parent BSUID), then up to 128
# letters and digits (docs/meta-api.md §11.1).
BSUID = re.compile(r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")


def country_of(recipient: str, user_id: str) -> str:
    """The recipient's ISO country: from the number, else the BSUID's prefix (``US.…``)."""
    if recipient:
        try:
            return phonenumbers.region_code_for_number(phonenumbers.parse(recipient)) or ""
        except phonenumbers.NumberParseException:
            return ""
    return user_id[:2] if user_id else ""


def normalise_user_id(raw: str) -> str:
    value = raw.strip()
    if not BSUID.match(value):
        raise serializers.ValidationError(
            "'recipient' must be a business-scoped user id such as US.13491208655302741918.",
            code="invalid",
        )
    return value


def send_at_checked(value):
    """A ``send_at`` at most ``SEND_AT_MAX_DAYS`` ahead (a message's, a campaign's)."""
    if value > timezone.now() + timedelta(days=SEND_AT_MAX_DAYS):
        raise serializers.ValidationError(
            f"'send_at' is more than {SEND_AT_MAX_DAYS} days ahead.", code="too_far"
        )
    return value


class WindowInput(RejectUnknownFields, serializers.Serializer):
    """A send window (``messaging.send.windows.SendWindow``): validated into one."""

    openapi_properties = {
        "start": {"pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:00"},
        "end": {"pattern": r"^([01][0-9]|2[0-4]):[0-5][0-9]$", "example": "20:00"},
    }

    # null is the default, as the window's own JSON writes it (SendWindow.as_dict): start of
    # the day, end of the day.
    start = serializers.CharField(
        required=False, allow_null=True, help_text="Local time, e.g. 09:00 (null: 00:00)."
    )
    end = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Local time, e.g. 20:00 (exclusive; null or 24:00: the end of the day).",
    )
    days = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='Days it opens: ["mon", …, "sun"] or ISO numbers 1 (Monday) … 7. '
        "Omitted: every day.",
    )

    def to_internal_value(self, data):
        checked = super().to_internal_value(data)
        try:
            return SendWindow.parse(dict(checked))
        except InvalidWindow as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}, code="invalid") from exc


class _MessageInput(RejectUnknownFields, serializers.Serializer):
    # The checks below and in the services, stated in the schema: E.164 is the canonical form
    # of what ``normalise_recipient`` accepts; exactly one of ``to`` and ``recipient``.
    openapi_properties = {
        "to": {"pattern": r"^\+[1-9][0-9]{6,14}$", "example": "+4915112345678"},
        "recipient": {"pattern": BSUID.pattern, "example": "US.13491208655302741918"},
        "metadata": {"example": {"order": "A-1042"}},
    }
    openapi_schema = {"oneOf": [{"required": ["to"]}, {"required": ["recipient"]}]}

    to = serializers.CharField(
        required=False,
        help_text="The recipient's phone number in international format (E.164), e.g. "
        "+4915112345678. Give this or `recipient`, not both.",
    )
    recipient = serializers.CharField(
        required=False,
        help_text="The recipient's business-scoped user id (BSUID), e.g. "
        "US.13491208655302741918, for users known without a phone number. Give this or `to`.",
    )
    metadata = serializers.DictField(
        required=False,
        default=dict,
        help_text=f"Your own reference data, returned with the message and in callbacks "
        f"(at most {METADATA_MAX_BYTES} bytes as JSON).",
    )
    ttl_seconds = serializers.IntegerField(
        required=False,
        min_value=30,
        max_value=30 * 86400,
        help_text="Not sent once this many seconds have passed since the request: the message "
        "ends `expired` instead. Default: 600 for authentication templates, none otherwise "
        "(the provider keeps trying an undelivered message for up to 30 days).",
    )

    send_at = serializers.DateTimeField(
        required=False,
        help_text="Not sent before this time (ISO 8601 with a time zone), at most "
        f"{SEND_AT_MAX_DAYS} days ahead; it must come before the message's time to live "
        "ends. Omitted or past: sent at once.",
    )

    send_window = WindowInput(
        required=False,
        help_text="Sent only inside these local hours and days, in the recipient's time zone "
        "(from the number; the tenant's `time_zone` for a BSUID): outside them the message "
        "waits for the next opening, its time to live still counting.",
    )

    def validate_to(self, value: str) -> str:
        return normalise_recipient(value)

    def validate_send_at(self, value):
        return send_at_checked(value)

    def validate_recipient(self, value: str) -> str:
        return normalise_user_id(value)

    def validate(self, data: dict) -> dict:
        if "to" in data and "recipient" in data:
            raise serializers.ValidationError(
                {
                    "recipient": serializers.ErrorDetail(
                        "Give 'to' (a phone number) or 'recipient' (a BSUID), not both.",
                        code="ambiguous",
                    )
                }
            )
        if "to" not in data and "recipient" not in data:
            raise serializers.ValidationError(
                {"to": serializers.ErrorDetail("'to' is required.", code="required")}
            )
        return {**data, "to": data.get("to", ""), "recipient": data.get("recipient", "")}

    def validate_metadata(self, value: dict) -> dict:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > METADATA_MAX_BYTES:
            raise serializers.ValidationError(
                f"'metadata' is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}.",
                code="too_large",
            )
        return value


class TemplateRefInput(RejectUnknownFields, serializers.Serializer):
    openapi_properties = {
        "name": TEMPLATE_NAME_SCHEMA,
        "language": LANGUAGE_SCHEMA,
        "components": SEND_COMPONENTS,
    }

    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=16, help_text="e.g. en_US")
    components = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text="The parameters, in Meta's component format: "
        '[{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]. '
        "Checked against the approved template before anything is sent.",
    )


class TemplateMessageInput(_MessageInput):
    """A template message: sendable at any time, once the template is approved."""

    template = TemplateRefInput()


class TextContentInput(RejectUnknownFields, serializers.Serializer):
    openapi_properties = {"body": {"minLength": 1, "pattern": r"\S"}}

    body = serializers.CharField(max_length=TEXT_MAX, trim_whitespace=False)

    def validate_body(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("'text.body' must not be blank.", code="blank")
        return value


class TextMessageInput(_MessageInput):
    """A free-form text message: only within 24 hours of the user's last message."""

    text = TextContentInput()


class BatchItemInput(serializers.Serializer):
    """One message of a batch: a template or text message plus its own idempotency key."""

    idempotency_key = serializers.CharField(max_length=255)


class BatchInput(RejectUnknownFields, serializers.Serializer):
    messages = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH} messages, each a template or text message with its own "
        "idempotency_key.",
    )


def _raise(errors: Any) -> None:
    details = flatten_errors(errors)
    first = details[0]
    field, code = first["field"] or "", first["code"]
    if code == UNKNOWN_FIELD:
        code, message = validation_summary(details)
        raise ValidationFailed(message, code=code, details=details)
    error_code = (
        ERROR_CODES.get((field, code))
        or ERROR_CODES.get((field, None))
        or ERROR_CODES.get((field.split(".", 1)[0], None))  # send_window.start → send_window
    )
    raise ValidationFailed(first["message"], code=error_code or "validation_error", details=details)


@functools.cache
def _checker(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """One instance per input serializer, its fields built once: ``run_validation`` keeps no
    state on the instance (it is how DRF's ``ListSerializer`` checks each item with one
    child). Building the fields per call was a sixth of a 1,000-item batch's time."""
    return serializer_class()


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    """``data`` checked by ``serializer_class``: its validated data, or ValidationFailed."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="validation_error")
    try:
        return dict(_checker(serializer_class).run_validation(data))
    except serializers.ValidationError as exc:
        _raise(exc.detail)


def message_input(body: Any) -> dict:
    """One message body (without its idempotency key): a text message when it has ``text`` and
    no ``template``, otherwise a template message. Returns the validated data, with ``kind``."""
    if isinstance(body, dict) and "text" in body and "template" not in body:
        return {**validated(TextMessageInput, body), "kind": "text"}
    return {**validated(TemplateMessageInput, body), "kind": "template"}
