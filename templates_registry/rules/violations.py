"""Every rule's code, what it checks, where the rule comes from, and the message a client sees —
one table, so a violation is built by naming its code (:func:`violation`), never by writing a
message at the place that finds it.

``code`` is stable: clients and tests match on it. ``source`` is a section of
``docs/meta-api.md`` (and, for send-time rules, the Meta error the rule keeps us from meeting).
A message is a ``str.format`` template filled with the facts the check found; a code found in
several situations has one message per situation (``variant``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from templates_registry.rules.limits import (
    BODY_TEXT_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_TYPES,
    BUTTONS_MAX,
    CAROUSEL_CARD_BODY_MAX,
    CAROUSEL_CARD_BUTTONS_MAX,
    CAROUSEL_CARDS_MAX,
    CAROUSEL_CARDS_MIN,
    CATEGORIES,
    COPY_CODE_MAX,
    HEADER_FORMATS,
    HEADER_TEXT_MAX,
    HEADER_VARIABLES_MAX,
    LTO_TEXT_MAX,
    MAX_CONSECUTIVE_SPACES,
    NAME_MAX,
    OTP_CODE_MAX,
    PHONE_NUMBER_MAX,
    URL_MAX,
    URL_VARIABLES_MAX,
)


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    component: str | None = None
    parameter: str | None = None
    formatting: bool = False  # repairable by the ``sanitize`` policy

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "formatting"}


@dataclass(frozen=True)
class Rule:
    code: str
    summary: str
    source: str


# --- the index: what each code means and where the rule comes from ------------------------------

DEFINITION_RULES = [
    Rule("template_name_invalid", "name of 1-512 lowercase letters, digits, underscores", "§5.2"),
    Rule("template_language_invalid", "a language code such as en or en_US", "§5.4"),
    Rule("template_category_invalid", "MARKETING, UTILITY or AUTHENTICATION", "§5.1"),
    Rule("template_parameter_format_invalid", "POSITIONAL or NAMED", "§1.2, §5.5"),
    Rule("components_invalid", "components is a list of objects", "§1.2"),
    Rule("component_type_invalid", "each is HEADER, BODY, FOOTER or BUTTONS", "§1.2"),
    Rule("component_duplicate", "each component at most once", "§5.2"),
    Rule("body_missing", "exactly one BODY, the only required component", "§5.2"),
    Rule(
        "header_format_invalid",
        "TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION (GIF: MM Lite only)",
        "§5.2",
    ),
    Rule("header_location_not_allowed", "LOCATION headers only in utility/marketing", "§5.2"),
    Rule("header_text_missing", "a TEXT header has text", "§5.2"),
    Rule("header_text_too_long", "header text ≤ 60 characters", "§5.2"),
    Rule("header_too_many_variables", "header text has at most 1 variable", "§5.2"),
    Rule("body_text_missing", "the body has text (authentication bodies are Meta's)", "§5.2"),
    Rule("body_text_too_long", "body text ≤ 1,024 characters", "§5.2"),
    Rule("variable_at_edge", "the body neither starts nor ends with a variable (2388299)", "§5.2"),
    Rule("footer_text_missing", "a footer has text", "§5.2"),
    Rule("footer_text_too_long", "footer text ≤ 60 characters", "§5.2"),
    Rule("footer_variables_not_allowed", "a footer is text only", "§5.2"),
    Rule(
        "placeholder_malformed",
        "{{1}}… when positional, {{lower_case}} when named",
        "§1.2, §5.3",
    ),
    Rule("placeholder_sequence", "positional placeholders numbered from 1 without gaps", "§1.2"),
    Rule("placeholder_adjacent", "no {{1}}{{2}} without text between (INVALID_FORMAT)", "§4.9"),
    Rule("placeholder_name_duplicate", "named placeholders are unique", "§5.3"),
    Rule("buttons_missing", "BUTTONS holds at least one button", "§5.2"),
    Rule("buttons_too_many", "at most 10 buttons (index 0-9)", "§5.2, §1.2"),
    Rule("button_type_invalid", "a known button type", "§1.2, §5.2"),
    Rule("button_text_missing", "quick-reply, URL and phone buttons have a label", "§5.2"),
    Rule("button_text_too_long", "labels ≤ 25 characters", "§5.2"),
    Rule("url_buttons_too_many", "at most 2 URL buttons", "§5.2"),
    Rule("button_url_missing", "a URL button has a url", "§5.2"),
    Rule("button_url_too_long", "url ≤ 2,000 characters", "§5.2"),
    Rule("button_url_too_many_variables", "at most 1 variable in a url", "§5.2"),
    Rule("button_url_variable_not_at_end", "the url variable is appended at the end", "§5.2"),
    Rule("phone_buttons_too_many", "at most 1 phone-number button", "§5.2"),
    Rule("button_phone_number_missing", "a phone button has a number", "§5.2"),
    Rule("button_phone_number_too_long", "number ≤ 20 characters", "§5.2"),
    Rule("copy_code_buttons_too_many", "at most 1 copy-code button", "§5.2"),
    Rule("copy_code_example_too_long", "copy code ≤ 15 characters", "§5.2"),
    Rule(
        "quick_replies_not_grouped", "quick replies in one group, before or after the rest", "§5.2"
    ),
    Rule(
        "lto_not_marketing",
        "limited-time offers in MARKETING templates only",
        "Meta: templates/marketing-templates/limited-time-offer-templates",
    ),
    Rule(
        "lto_text_too_long",
        "the offer text ≤ 16 characters",
        "Meta: templates/marketing-templates/limited-time-offer-templates",
    ),
    Rule(
        "lto_with_footer",
        "no footer in a limited-time offer template",
        "Meta: templates/marketing-templates/limited-time-offer-templates",
    ),
    Rule(
        "carousel_not_marketing",
        "carousels in MARKETING templates only",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_cards_count",
        "2 to 10 cards",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_card_header_invalid",
        "each card has an IMAGE or VIDEO header",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_card_body_too_long",
        "a card's body ≤ 160 characters",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_card_buttons_too_many",
        "at most 2 buttons per card",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_cards_differ",
        "every card has the same components and buttons",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "request_contact_info_not_allowed",
        "REQUEST_CONTACT_INFO buttons in UTILITY and MARKETING templates only",
        "Meta: business-scoped-user-ids",
    ),
    Rule(
        "otp_type_invalid",
        "an OTP button is COPY_CODE, ONE_TAP or ZERO_TAP",
        "Meta: templates/authentication-templates",
    ),
]

SEND_RULES = [
    Rule("components_invalid", "components is a list of objects", "§1.2"),
    Rule("component_type_invalid", "each is header, body or button", "§1.2"),
    Rule("component_duplicate", "header and body once; one entry per button index", "§1.2"),
    Rule("param_count", "positional: one value per placeholder", "§2 132000"),
    Rule("param_missing", "named: every name given; a URL variable given", "§1.2, §2 131008"),
    Rule("param_name_unknown", "named: no name the template lacks", "§1.2, §2 132000"),
    Rule("param_name_required", "named: every value has parameter_name", "§1.2"),
    Rule("param_name_duplicate", "named: each name once", "§1.2"),
    Rule(
        "param_type_invalid",
        "per component: text; text/currency/date_time; the media",
        "§2 132012",
    ),
    Rule(
        "param_value_invalid",
        "well-formed text, currency, date_time, media, location, payload",
        "§2 131009",
    ),
    Rule("param_empty", "text is not empty", "§5.3, #100"),
    Rule("param_newline", "no newline or tab in text; fixable by sanitize", "§5.3"),
    Rule("param_spaces", "no more than 4 consecutive spaces; fixable by sanitize", "§5.3"),
    Rule("header_too_long", "hydrated header ≤ 60", "§2 132005, §5.2"),
    Rule("body_too_long", "hydrated body ≤ 1,024", "§2 132005, §5.2"),
    Rule("button_index_invalid", "index 0-9 naming a template button", "§1.2"),
    Rule("button_sub_type_mismatch", "sub_type matches that button", "§1.2"),
    Rule(
        "button_param_count",
        "URL: one suffix iff the url has a variable; copy code: one",
        "§1.2",
    ),
    Rule("button_url_suffix_invalid", "suffix non-empty, no whitespace, url ≤ 2,000", "§5.2"),
    Rule("coupon_code_too_long", "copy code ≤ 15 characters", "§5.2"),
    Rule(
        "media_filename_invalid",
        "a document's filename, when given, is a name",
        "Meta: messages/send-messages (media objects)",
    ),
    Rule(
        "lto_expiration_invalid",
        "an offer with a countdown gets expiration_time_ms, a time in ms",
        "Meta: templates/marketing-templates/limited-time-offer-templates",
    ),
    Rule(
        "carousel_cards_count",
        "as many cards as approved (132012 otherwise)",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "carousel_card_index_invalid",
        "card_index 0 to n-1, each once",
        "Meta: templates/marketing-templates/media-card-carousel-templates",
    ),
    Rule(
        "otp_code_too_long",
        "an authentication code ≤ 15 characters",
        "Meta: templates/authentication-templates",
    ),
]

# --- the messages -------------------------------------------------------------------------------

_LIMIT = "The {name} text is {length:,} characters; the limit is {limit:,}."
_TOO_MANY = "A template has at most {limit} {kind} button(s); found {count}."

MESSAGES: dict[str, str | dict[str, str]] = {
    "template_name_invalid": (
        f"Template names are 1-{NAME_MAX} lowercase letters, digits and underscores."
    ),
    "template_language_invalid": "Language must be a Meta language code such as 'en' or 'en_US'.",
    "template_category_invalid": f"Category must be one of {', '.join(CATEGORIES)}.",
    "template_parameter_format_invalid": "parameter_format must be POSITIONAL or NAMED.",
    "components_invalid": "components must be a list of objects.",
    "component_type_invalid": {
        "definition": "Component {index} has type {type!r}; expected HEADER, BODY, FOOTER, "
        "BUTTONS, LIMITED_TIME_OFFER or CAROUSEL.",
        "send": "Component {index} has type {type!r}; expected header, body or button.",
    },
    "component_duplicate": {
        "definition": "A template has at most one {type} component.",
        "send": "Send the {name} component once.",
        "button": "Button {index} is given twice.",
    },
    "body_missing": "Every template needs exactly one BODY.",
    "header_format_invalid": f"Header format must be one of {', '.join(HEADER_FORMATS)}.",
    "header_location_not_allowed": (
        "LOCATION headers are only allowed in UTILITY and MARKETING templates."
    ),
    "header_text_missing": "The header needs text.",
    "header_text_too_long": _LIMIT,
    "header_too_many_variables": (
        f"A text header has at most {HEADER_VARIABLES_MAX} variable; found {{count}}."
    ),
    "body_text_missing": "The body needs text.",
    "body_text_too_long": _LIMIT,
    "variable_at_edge": "The body may not start or end with a variable (Meta error 2388299).",
    "footer_text_missing": "The footer needs text.",
    "footer_text_too_long": _LIMIT,
    "footer_variables_not_allowed": "A footer is static text; it cannot contain variables.",
    "placeholder_malformed": {
        "text": "Placeholder {{{{{raw}}}}} is not valid: this template's parameters are {kind} "
        "(lowercase letters, digits and underscores for names).",
        "url": "The URL placeholder is not valid.",
    },
    "placeholder_sequence": (
        "Positional placeholders must be numbered from {{{{1}}}} without gaps; found {found}."
    ),
    "placeholder_adjacent": (
        "Placeholders may not stand next to each other (like {{{{1}}}}{{{{2}}}}); separate "
        "them with text or punctuation."
    ),
    "placeholder_name_duplicate": (
        "Named placeholder {{{{{name}}}}} appears {count} times; names must be unique."
    ),
    "buttons_missing": "BUTTONS needs a list of 1-10 buttons.",
    "buttons_too_many": f"A template has at most {BUTTONS_MAX} buttons; found {{count}}.",
    "button_type_invalid": f"Button type must be one of {', '.join(BUTTON_TYPES)}.",
    "button_text_missing": "The button needs a label.",
    "button_text_too_long": (
        f"Button label is {{length}} characters; the limit is {BUTTON_TEXT_MAX}."
    ),
    "url_buttons_too_many": _TOO_MANY,
    "phone_buttons_too_many": _TOO_MANY,
    "copy_code_buttons_too_many": _TOO_MANY,
    "button_url_missing": "A URL button needs a url.",
    "button_url_too_long": f"The URL is {{length:,}} characters; the limit is {URL_MAX:,}.",
    "button_url_too_many_variables": (
        f"A URL has at most {URL_VARIABLES_MAX} variable; found {{count}}."
    ),
    "button_url_variable_not_at_end": (
        "A URL variable is appended to the URL: it must be at the very end."
    ),
    "button_phone_number_missing": "The button needs a phone number.",
    "button_phone_number_too_long": (
        f"Phone number is {{length}} characters; the limit is {PHONE_NUMBER_MAX}."
    ),
    "copy_code_example_too_long": (
        f"A copy code is at most {COPY_CODE_MAX} characters; the example has {{length}}."
    ),
    "quick_replies_not_grouped": (
        "Quick-reply buttons must be grouped together, before or after the other buttons."
    ),
    "lto_not_marketing": "Limited-time offers are for MARKETING templates only.",
    "lto_text_too_long": f"The offer text is {{length}} characters; the limit is {LTO_TEXT_MAX}.",
    "lto_with_footer": "A limited-time offer template cannot have a footer.",
    "carousel_not_marketing": "Carousels are for MARKETING templates only.",
    "carousel_cards_count": {
        "definition": f"A carousel has {CAROUSEL_CARDS_MIN} to {CAROUSEL_CARDS_MAX} cards; "
        "found {count}.",
        "send": "The template's carousel has {expected} cards; {given} sent (Meta error 132012).",
    },
    "carousel_card_header_invalid": "Card {index} needs an IMAGE or VIDEO header.",
    "carousel_card_body_too_long": (
        f"Card {{index}}'s body is {{length}} characters; the limit is {CAROUSEL_CARD_BODY_MAX}."
    ),
    "carousel_card_buttons_too_many": (
        f"Card {{index}} has {{count}} buttons; the limit is {CAROUSEL_CARD_BUTTONS_MAX}."
    ),
    "carousel_cards_differ": (
        "Card {index} differs from card 0: every card needs the same components and buttons."
    ),
    "request_contact_info_not_allowed": (
        "REQUEST_CONTACT_INFO buttons are for UTILITY and MARKETING templates only."
    ),
    "otp_type_invalid": "An OTP button's otp_type is one of COPY_CODE, ONE_TAP, ZERO_TAP.",
    # send time
    "param_count": {
        "text": "The template's {name} takes {expected} parameter(s); {given} given.",
        "media": "The template's {type} header takes 1 parameter; {given} given.",
    },
    "param_missing": {
        "named": "Parameter {name!r} is missing.",
        "button": "Button {index} ({type}) has a variable: send its parameter.",
    },
    "param_name_unknown": "The template's {name} has no parameter named {given!r}.",
    "param_name_required": (
        "This template uses named parameters: every parameter needs parameter_name."
    ),
    "param_name_duplicate": "Parameter {name!r} is given twice.",
    "param_type_invalid": {
        "text": "{name} parameters take type {allowed}, not {type!r}.",
        "media": "The header is {expected}; the parameter has type {type!r}.",
    },
    "param_value_invalid": {
        "list": "parameters must be a list of objects.",
        "text": "A text parameter needs a string 'text'.",
        "currency": "A currency parameter needs currency {{fallback_value, code (ISO 4217), "
        "amount_1000 (int)}}.",
        "date_time": "A date_time parameter needs date_time {{fallback_value}}.",
        "media": "The header parameter needs {hint}.",
        "quick_reply": "A quick-reply button takes at most one parameter of type payload with a "
        "non-empty string payload.",
    },
    "param_empty": "Parameter values cannot be empty.",
    "param_newline": "Text parameters cannot contain newline or tab characters.",
    "param_spaces": (
        f"Text parameters cannot contain more than {MAX_CONSECUTIVE_SPACES} consecutive spaces."
    ),
    "header_too_long": (
        "With these parameters the header is {length:,} characters; the limit is "
        f"{HEADER_TEXT_MAX:,} (Meta error 132005)."
    ),
    "body_too_long": (
        "With these parameters the body is {length:,} characters; the limit is "
        f"{BODY_TEXT_MAX:,} (Meta error 132005)."
    ),
    "button_index_invalid": (
        "Button index {index!r} does not name a button of this template (it has {count})."
    ),
    "button_sub_type_mismatch": (
        "Button {index} is a {type} button: its sub_type is {expected!r}, not {given!r}."
    ),
    "button_param_count": {
        "url": "This URL button takes {expected} parameter(s); {given} given.",
        "copy_code": "A copy-code button takes one parameter of type coupon_code.",
    },
    "button_url_suffix_invalid": {
        "shape": "A URL button takes one text parameter, the suffix appended to its URL: "
        "non-empty, without whitespace.",
        "length": f"With this suffix the URL exceeds {URL_MAX:,} characters.",
    },
    "coupon_code_too_long": f"A copy code is at most {COPY_CODE_MAX} characters.",
    "media_filename_invalid": "A document's filename must be a non-empty string.",
    "lto_expiration_invalid": (
        "This offer shows a countdown: send a limited_time_offer component with "
        "expiration_time_ms, the offer's end in milliseconds since the epoch."
    ),
    "carousel_card_index_invalid": (
        "card_index {index!r} is not one of this carousel's cards 0-{last}, or is sent twice."
    ),
    "otp_code_too_long": f"An authentication code is at most {OTP_CODE_MAX} characters.",
}

FORMATTING = frozenset({"param_newline", "param_spaces"})


def violation(
    code: str,
    component: str | None = None,
    parameter: str | None = None,
    *,
    variant: str = "",
    **facts: Any,
) -> Violation:
    """The violation of rule ``code`` at ``component``/``parameter``, its message filled with
    ``facts`` (and chosen by ``variant`` where the code has several)."""
    message = MESSAGES[code]
    if isinstance(message, dict):
        message = message[variant]
    return Violation(
        code,
        message.format(**facts),
        component,
        parameter,
        formatting=code in FORMATTING,
    )


def rules_index() -> str:
    """The rules as the package's docstring lists them: ``code — rule [source]``."""

    def lines(rules: list[Rule]) -> str:
        return "\n".join(f"  {r.code} — {r.summary} [{r.source}]" for r in rules)

    return (
        "Rules (definition): code — rule [source]\n"
        f"{lines(DEFINITION_RULES)}\n\n"
        "Rules (send time): code — rule [source; the Meta error it keeps us from meeting]\n"
        f"{lines(SEND_RULES)}\n"
    )
