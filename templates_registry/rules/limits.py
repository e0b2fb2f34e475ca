"""Meta's limits and vocabularies for templates (docs/meta-api.md §5.2, §5.3, §1.2), and the
patterns the rules share."""

import re
from enum import StrEnum


class TemplateCategory(StrEnum):
    """Meta's template categories (§5.1): what a template may say, how it is priced, and which
    limits apply (marketing: the user's stop and the per-user limit, §11.2; authentication:
    a short time to live, §1.7). The one definition: the model's choices, the rules and the
    pipeline all use it."""

    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


NAME_MAX = 512
HEADER_TEXT_MAX = 60
HEADER_VARIABLES_MAX = 1
BODY_TEXT_MAX = 1024
FOOTER_TEXT_MAX = 60
BUTTONS_MAX = 10
BUTTON_TEXT_MAX = 25
URL_BUTTONS_MAX = 2
URL_MAX = 2000
URL_VARIABLES_MAX = 1
PHONE_BUTTONS_MAX = 1
PHONE_NUMBER_MAX = 20
COPY_CODE_BUTTONS_MAX = 1
COPY_CODE_MAX = 15
MAX_CONSECUTIVE_SPACES = 4  # §5.3
# Kinds of templates (Meta's template pages, 2025-2026): limited-time offers, media card
# carousels, authentication codes.
LTO_TEXT_MAX = 16
CAROUSEL_CARDS_MIN, CAROUSEL_CARDS_MAX = 2, 10
CAROUSEL_CARD_BUTTONS_MAX = 2
CAROUSEL_CARD_BODY_MAX = 160
CAROUSEL_HEADER_FORMATS = ("IMAGE", "VIDEO")
OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
OTP_CODE_MAX = 15

CATEGORIES = tuple(TemplateCategory)
# How long Meta keeps trying to deliver a message, by its template's category, when the request
# sets no ``ttl_seconds``: an authentication code is dropped after 10 minutes (§1.7). Waypost
# does not send one later (the message expires), and flags one sent but not delivered by then.
DEFAULT_TTL_SECONDS = {TemplateCategory.AUTHENTICATION: 600}
PARAMETER_FORMATS = ("POSITIONAL", "NAMED")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
BUTTON_TYPES = (
    "QUICK_REPLY",
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "OTP",
    "FLOW",
    "CATALOG",
    "MPM",
    "REQUEST_CONTACT_INFO",  # 2026: the user may share their phone number (utility, marketing)
)
# The send-time ``sub_type`` that addresses each definition button type (§1.2).
SEND_SUB_TYPE = {
    "QUICK_REPLY": "quick_reply",
    "URL": "url",
    "OTP": "url",  # authentication one-tap/copy-code buttons take the code as a url param
    "COPY_CODE": "copy_code",
    "FLOW": "flow",
    "CATALOG": "catalog",
    "MPM": "mpm",
    "PHONE_NUMBER": None,  # static: nothing to send
    "REQUEST_CONTACT_INFO": None,  # static: nothing to send
}

TEMPLATE_NAME = re.compile(r"^[a-z0-9_]+$")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
POSITIONAL_NAME = re.compile(r"^[1-9][0-9]*$")
NAMED_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
ADJACENT_PLACEHOLDERS = re.compile(r"\}\}\s*\{\{")
FORMATTING_WHITESPACE = re.compile(r"[\n\r\t]")
SPACE_RUN = re.compile(f" {{{MAX_CONSECUTIVE_SPACES + 1},}}")
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def upper(value) -> str:
    """``value`` upper-cased when it is a string, else "" (Meta's enums are upper-case)."""
    return value.upper() if isinstance(value, str) else ""
