"""Meta's template formats as JSON Schema (OpenAPI 3.0), for the API's description: a template in
Meta's creation JSON, and the send-time ``components`` of a message. Built from the rules' own
limits (``rules.limits``), so what the schema states is what the rules enforce.

The rules stay the judge of what a schema cannot say — one body, placeholders numbered in
order, a message's parameters fitting *its* template — and answer those with their own codes;
the schema keeps a client (or a schema-driven fuzzer such as schemathesis) within everything
else. Where the API is lenient (lower-case enums, separators in a phone number), the schema
states the canonical form.
"""

from __future__ import annotations

from typing import Any

from templates_registry.rules.limits import (
    BODY_TEXT_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_TYPES,
    BUTTONS_MAX,
    CAROUSEL_CARD_BUTTONS_MAX,
    CAROUSEL_CARDS_MAX,
    CAROUSEL_CARDS_MIN,
    CAROUSEL_HEADER_FORMATS,
    CATEGORIES,
    COPY_CODE_MAX,
    FOOTER_TEXT_MAX,
    HEADER_FORMATS,
    HEADER_TEXT_MAX,
    LANGUAGE_CODE,
    LTO_TEXT_MAX,
    NAME_MAX,
    NAMED_NAME,
    OTP_TYPES,
    PARAMETER_FORMATS,
    PHONE_NUMBER_MAX,
    SEND_SUB_TYPE,
    TEMPLATE_NAME,
    URL_MAX,
)

Schema = dict[str, Any]


def _text(limit: int, *, braces: bool = True, **extra: Any) -> Schema:
    """Text that is not blank, at most ``limit`` characters; without ``{``/``}`` when the text
    takes no placeholders."""
    pattern = r"\S" if braces else r"^[^{}]*[^{}\s][^{}]*$"
    return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": pattern, **extra}


def _const(value: str) -> Schema:
    return {"type": "string", "enum": [value]}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {
        "type": "object",
        **({"required": required} if required else {}),
        "properties": properties,
    }


TEMPLATE_NAME_SCHEMA: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_MAX,
    "pattern": TEMPLATE_NAME.pattern,
    "description": "Lower-case letters, digits and underscores.",
    "example": "order_update",
}
LANGUAGE_SCHEMA: Schema = {
    "type": "string",
    "pattern": LANGUAGE_CODE.pattern,
    "description": "Meta's language code: `en`, `en_US`, `pt_BR`…",
    "example": "en_US",
}
CATEGORY_SCHEMA: Schema = {"type": "string", "enum": [str(c) for c in CATEGORIES]}
PARAMETER_FORMAT_SCHEMA: Schema = {
    "type": "string",
    "enum": list(PARAMETER_FORMATS),
    "default": "POSITIONAL",
    "description": "Placeholders numbered (`{{1}}`) or named (`{{first_name}}`).",
}

# --- a template being created ------------------------------------------------------------------

_BUTTON_TEXT = _text(BUTTON_TEXT_MAX)
_DESCRIBED_BUTTONS = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP")
_DEFINITION_BUTTONS: list[Schema] = [
    _object(["type", "text"], type=_const("QUICK_REPLY"), text=_BUTTON_TEXT),
    _object(
        ["type", "text", "url"],
        type=_const("URL"),
        text=_BUTTON_TEXT,
        url={
            "type": "string",
            "maxLength": URL_MAX,
            "pattern": r"^https?://[^\s{}]+(\{\{[1-9][0-9]*\}\})?$",
            "description": "At most one placeholder, at the end: the suffix sent with the message.",
            "example": "https://example.com/track/{{1}}",
        },
    ),
    _object(
        ["type", "text", "phone_number"],
        type=_const("PHONE_NUMBER"),
        text=_BUTTON_TEXT,
        phone_number={
            "type": "string",
            "maxLength": PHONE_NUMBER_MAX,
            "pattern": r"^\+[1-9][0-9]{6,14}$",
        },
    ),
    _object(
        ["type"],
        type=_const("COPY_CODE"),
        example={"type": "string", "maxLength": COPY_CODE_MAX},
    ),
    _object(
        ["type", "otp_type"],
        type=_const("OTP"),
        otp_type={"type": "string", "enum": list(OTP_TYPES)},
    ),
    _object(
        ["type"],
        type={
            "type": "string",
            "enum": [t for t in BUTTON_TYPES if t not in _DESCRIBED_BUTTONS],
        },
        text=_BUTTON_TEXT,
    ),
]

DEFINITION_COMPONENT: Schema = {
    "description": "One component of a template in Meta's creation format. A template has "
    "one BODY; LIMITED_TIME_OFFER and CAROUSEL are for MARKETING templates.",
    "oneOf": [
        _object(
            ["type", "text"],
            type=_const("HEADER"),
            format=_const("TEXT"),
            text=_text(HEADER_TEXT_MAX, description="At most one placeholder."),
        ),
        _object(
            ["type", "format"],
            type=_const("HEADER"),
            format={"type": "string", "enum": [f for f in HEADER_FORMATS if f != "TEXT"]},
            example={"type": "object", "description": "Meta's sample media handle."},
        ),
        _object(
            ["type", "text"],
            type=_const("BODY"),
            text=_text(
                BODY_TEXT_MAX,
                description="Placeholders in order (`{{1}}`, `{{2}}`…), never at either end.",
                example="Hi {{1}}, your order {{2}} has shipped.",
            ),
        ),
        _object(
            ["type", "text"],
            type=_const("FOOTER"),
            text=_text(FOOTER_TEXT_MAX, braces=False, description="No placeholders."),
        ),
        _object(
            ["type", "buttons"],
            type=_const("BUTTONS"),
            buttons={
                "type": "array",
                "minItems": 1,
                "maxItems": BUTTONS_MAX,
                "items": {"oneOf": _DEFINITION_BUTTONS},
            },
        ),
        _object(
            ["type", "limited_time_offer"],
            type=_const("LIMITED_TIME_OFFER"),
            limited_time_offer=_object(
                [],
                text={"type": "string", "maxLength": LTO_TEXT_MAX},
                has_expiration={"type": "boolean"},
            ),
        ),
        _object(
            ["type", "cards"],
            type=_const("CAROUSEL"),
            cards={
                "type": "array",
                "minItems": CAROUSEL_CARDS_MIN,
                "maxItems": CAROUSEL_CARDS_MAX,
                "items": _object(
                    ["components"],
                    components={
                        "type": "array",
                        "description": f"A {' or '.join(CAROUSEL_HEADER_FORMATS)} HEADER, "
                        f"an optional BODY, up to {CAROUSEL_CARD_BUTTONS_MAX} BUTTONS; the "
                        "same on every card.",
                        "items": {"type": "object", "additionalProperties": True},
                    },
                ),
            },
        ),
    ],
}

DEFINITION_COMPONENTS: Schema = {
    "type": "array",
    "minItems": 1,
    "maxItems": 6,
    "items": DEFINITION_COMPONENT,
    "description": "The template's components in Meta's creation format: one BODY, at most "
    "one of each other type.",
    "example": [
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
    ],
}

# --- a message's parameters --------------------------------------------------------------------

_PARAMETER_NAME: Schema = {
    "type": "string",
    "pattern": NAMED_NAME.pattern,
    "description": "The placeholder's name, for a template with named parameters.",
}
_MEDIA: Schema = {
    "type": "object",
    "description": "Exactly one of `id` (the provider's media id), `link` (http or https) or "
    "`media_id` (a file uploaded with `POST /api/v1/media`: Waypost sends the provider's id, "
    "uploaded again when it would expire); a document may have a `filename`.",
    "minProperties": 1,
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "media_id": {"type": "string", "format": "uuid"},
        "link": {"type": "string", "pattern": r"^https?://\S+$"},
        "filename": {"type": "string", "pattern": r"^[^/]*\S[^/]*$"},
    },
}
SEND_PARAMETER: Schema = {
    "description": "One parameter, in Meta's send format; its type follows the placeholder or "
    "button it fills.",
    "oneOf": [
        _object(
            ["type", "text"],
            type=_const("text"),
            text={
                "type": "string",
                "minLength": 1,
                "maxLength": BODY_TEXT_MAX,
                "pattern": r"^[^\n\r\t]*\S[^\n\r\t]*$",
                "description": "No newline or tab, at most four spaces in a row (the tenant's "
                "`param_policy` may repair them instead).",
            },
            parameter_name=_PARAMETER_NAME,
        ),
        _object(
            ["type", "currency"],
            type=_const("currency"),
            currency=_object(
                ["fallback_value", "code", "amount_1000"],
                fallback_value={"type": "string", "minLength": 1, "pattern": r"\S"},
                code={"type": "string", "pattern": r"^[A-Z]{3}$"},
                amount_1000={"type": "integer"},
            ),
            parameter_name=_PARAMETER_NAME,
        ),
        _object(
            ["type", "date_time"],
            type=_const("date_time"),
            date_time=_object(
                ["fallback_value"], fallback_value={"type": "string", "minLength": 1}
            ),
            parameter_name=_PARAMETER_NAME,
        ),
        *(
            _object(["type", kind], type=_const(kind), **{kind: _MEDIA})
            for kind in ("image", "video", "document")
        ),
        _object(
            ["type", "location"],
            type=_const("location"),
            location=_object(
                ["latitude", "longitude"],
                latitude={"type": "number", "minimum": -90, "maximum": 90},
                longitude={"type": "number", "minimum": -180, "maximum": 180},
                name={"type": "string"},
                address={"type": "string"},
            ),
        ),
        _object(
            ["type", "payload"], type=_const("payload"), payload={"type": "string", "minLength": 1}
        ),
        _object(
            ["type", "limited_time_offer"],
            type=_const("limited_time_offer"),
            limited_time_offer=_object(
                ["expiration_time_ms"], expiration_time_ms={"type": "integer", "minimum": 1}
            ),
        ),
        _object(
            ["type", "coupon_code"],
            type=_const("coupon_code"),
            coupon_code={"type": "string", "minLength": 1, "maxLength": COPY_CODE_MAX},
        ),
    ],
}
SEND_COMPONENT: Schema = {
    "type": "object",
    "description": "The parameters of one component of the template, in Meta's send format: "
    "`header` and `body` take `parameters`; a `button` also its `sub_type` and `index`; a "
    "`carousel` its `cards`.",
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["header", "body", "button", "limited_time_offer", "carousel"],
        },
        "sub_type": {
            "type": "string",
            "enum": sorted({s for s in SEND_SUB_TYPE.values() if s}),
        },
        "index": {
            "type": "string",
            "pattern": f"^[0-{BUTTONS_MAX - 1}]$",
            "description": "A button's position in the template, from 0.",
        },
        "parameters": {"type": "array", "items": SEND_PARAMETER},
        "cards": {
            "type": "array",
            "items": _object(
                ["card_index", "components"],
                card_index={"type": "integer", "minimum": 0},
                components={"type": "array", "items": {"type": "object"}},
            ),
        },
    },
}
SEND_COMPONENTS: Schema = {
    "type": "array",
    "items": SEND_COMPONENT,
    "description": "The parameters, in Meta's component format, checked against the approved "
    "template before anything is sent: a template without placeholders takes none.",
    "example": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
}
