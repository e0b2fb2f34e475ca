"""Meta's error codes, one table: per code its title (Meta's), what it means in one sentence,
who must act, and what Waypost does next (its :class:`~whatsapp.errors.Classification`;
docs/meta-api.md §2). 360dialog and the sandbox pass Meta's codes through, so this is their
table too.

Classify by code, not by HTTP status: Meta's throttling codes come with 400, not 429. A code
missing here is classified by the HTTP status, except 200-299 (API permissions), which alert
the tenant (:func:`meta_code_info`). The admin shows this table beside a message's error
(``whatsapp.error_info``).
"""

from __future__ import annotations

from dataclasses import replace

from whatsapp.errors import (
    Classification,
    CoolDownScope,
    ErrorClass,
    ErrorInfo,
    Policy,
    WhoActs,
)

_RETRY = Classification(ErrorClass.RETRY_BACKOFF)
_AMBIGUOUS = Classification(ErrorClass.AMBIGUOUS)
_ALERT = Classification(ErrorClass.ALERT_TENANT)
_NEVER = Classification(ErrorClass.NEVER_RETRY)

OPERATOR, BUSINESS = WhoActs.OPERATOR, WhoActs.BUSINESS
RECIPIENT, NOBODY = WhoActs.RECIPIENT, WhoActs.NOBODY


def _cool_down(seconds: float, scope: CoolDownScope) -> Classification:
    return Classification(ErrorClass.COOL_DOWN, seconds, scope)


_TABLE: tuple[tuple[int, str, str, WhoActs, Classification], ...] = (
    # --- cool-down: a limit was hit; waiting helps, retrying at once does not -----------------
    (130429, "Rate limit hit",
     "The number's message throughput was reached; Waypost waits a second and sends again.",
     NOBODY, _cool_down(1.0, CoolDownScope.SENDER)),
    (131056, "(Business Account, Consumer Account) pair rate limit hit",
     "Too many messages from this number to this user in a short time (about one per 6 "
     "seconds); Waypost waits, other recipients are not affected (§3.2).",
     NOBODY, _cool_down(6.0, CoolDownScope.RECIPIENT)),
    (131048, "Spam rate limit hit",
     "Meta restricts how many messages this number may send because earlier ones were blocked "
     "or reported; Waypost waits 15 minutes, and the business should look at its quality.",
     BUSINESS, _cool_down(900.0, CoolDownScope.SENDER)),
    (131057, "Account in maintenance mode",
     "The business account is in maintenance (for instance a throughput upgrade) for about a "
     "minute; Waypost waits and sends again.",
     NOBODY, _cool_down(90.0, CoolDownScope.SENDER)),
    (132015, "Template is Paused",
     "Meta paused the template for low quality: Waypost marks it paused and its messages wait "
     "until it is reinstated or edited.",
     BUSINESS, _cool_down(600.0, CoolDownScope.TEMPLATE)),
    # --- retry with backoff: transient on Meta's side ----------------------------------------
    (1, "API Unknown",
     "An invalid request or a possible server error at Meta; Waypost retries with backoff.",
     NOBODY, _RETRY),
    (4, "API Too Many Calls",
     "The app reached its API call rate limit; Waypost retries with backoff.",
     NOBODY, _RETRY),
    (80007, "Rate limit issues",
     "The WhatsApp Business Account reached its rate limit; Waypost retries with backoff.",
     NOBODY, _RETRY),
    (131016, "Service unavailable",
     "A Meta service is temporarily unavailable; Waypost retries with backoff.",
     NOBODY, _RETRY),
    (133004, "Server temporarily unavailable",
     "Meta's server is temporarily unavailable; Waypost retries with backoff.",
     NOBODY, _RETRY),
    # --- ambiguous: the request may have been processed --------------------------------------
    (131000, "Something went wrong",
     "The send failed for an unknown reason and Meta may have sent it anyway: Waypost never "
     "resends blindly, it waits for a status and then follows the tenant's ambiguous policy.",
     NOBODY, _AMBIGUOUS),
    (2, "API Service",
     "Meta was down or overloaded and may have processed the request: Waypost waits for a "
     "status instead of resending.",
     NOBODY, _AMBIGUOUS),
    # --- alert the tenant: a person must act before this sender can send again ---------------
    (0, "AuthException",
     "Meta could not authenticate the sender's access token (expired, revoked, or its user "
     "changed a setting): give the sender a new token.",
     OPERATOR, _ALERT),
    (3, "API Method",
     "The app lacks the capability or permission this call needs: check the token's "
     "permissions.",
     OPERATOR, _ALERT),
    (10, "Permission Denied",
     "The permission this call needs was not granted or was removed: check the token's "
     "permissions.",
     OPERATOR, _ALERT),
    (190, "Access token has expired",
     "The sender's access token expired or is invalid: give the sender a new token.",
     OPERATOR, _ALERT),
    (368, "Temporarily blocked for policies violations",
     "Meta restricted or disabled the WhatsApp Business Account for violating a platform "
     "policy: the business must resolve it with Meta.",
     BUSINESS, _ALERT),
    (131005, "Access denied",
     "The permission this call needs was not granted or was removed: check the token's "
     "permissions.",
     OPERATOR, _ALERT),
    (131031, "Account has been locked",
     "Meta locked the WhatsApp Business Account (a policy violation, or data it could not "
     "verify such as the two-step PIN): the business must resolve it with Meta.",
     BUSINESS, _ALERT),
    (131037, "WhatsApp provided number needs display name approval",
     "The number's display name is not approved yet: the business must have it approved "
     "before the number can send.",
     BUSINESS, _ALERT),
    (131042, "Business eligibility payment issue",
     "A problem with the account's payment method (none attached, over its credit line, or "
     "suspended): the business must fix its billing at Meta.",
     BUSINESS, _ALERT),
    (131045, "Incorrect certificate",
     "The number's registration is incomplete (its certificate is wrong): register the number "
     "again.",
     OPERATOR, _ALERT),
    (133010, "Phone number Not Registered",
     "The number is not registered on the Cloud API: register it before it can send.",
     OPERATOR, _ALERT),
    (134011, "Business account issue",
     "Meta refuses to send for this business account until its owner resolves an issue with "
     "the account (Meta's error-code page names it): a person must act.",
     BUSINESS, _ALERT),
    # --- never retry: the request is wrong or the user cannot receive it ---------------------
    (100, "Invalid parameter",
     "The request had an unsupported or misspelled parameter: the same request fails again.",
     BUSINESS, _NEVER),
    (130472, "User's number is part of an experiment",
     "Meta withheld this marketing message because the user is part of an experiment; "
     "nothing to do.",
     NOBODY, _NEVER),
    (130497, "Business account is restricted from messaging users in this country",
     "The business may not message users in the recipient's country.",
     BUSINESS, _NEVER),
    (131008, "Required parameter is missing",
     "The request lacks a required parameter: the client must send it.",
     BUSINESS, _NEVER),
    (131009, "Parameter value is not valid",
     "One or more parameter values are invalid: the client must correct them.",
     BUSINESS, _NEVER),
    (131021, "Recipient cannot be sender",
     "The recipient is the sending number itself.",
     BUSINESS, _NEVER),
    (131026, "Message undeliverable",
     "The user cannot receive it: not on WhatsApp, an outdated app, terms not accepted, or the "
     "user blocked the business.",
     RECIPIENT, _NEVER),
    (131047, "Re-engagement message",
     "More than 24 hours passed since the user last wrote: only a template can be sent now, "
     "not free text.",
     BUSINESS, _NEVER),
    (131049, "This message was not delivered to maintain healthy ecosystem engagement.",
     "Meta's per-user marketing limit: the user got enough marketing messages for now (and "
     "US numbers get none); the tenant may have it tried once more after 24 hours.",
     NOBODY, Classification(ErrorClass.NEVER_RETRY, policy=Policy.MARKETING_LIMIT)),
    (131050, "User has stopped marketing messages",
     "The user stopped marketing messages from this business: Waypost sends them no more "
     "marketing templates until they resume.",
     RECIPIENT, Classification(ErrorClass.NEVER_RETRY, policy=Policy.MARKETING_STOPPED)),
    (131051, "Unsupported message type",
     "Meta does not support this type of message.",
     BUSINESS, _NEVER),
    (131053, "Media upload error",
     "The media in the message could not be uploaded: check its URL, type and size.",
     BUSINESS, _NEVER),
    (131062, "Business-scoped User ID recipients are not supported for this message",
     "An authentication template with a code button goes to a phone number only, not to a "
     "business-scoped user id (§11.1): send it with 'to'.",
     BUSINESS, _NEVER),
    (132000, "Number of parameters does not match the expected number of params",
     "The message has more or fewer parameters than the template's placeholders.",
     BUSINESS, _NEVER),
    (132001, "Template name does not exist in the translation",
     "No approved template with this name in this language at Meta.",
     BUSINESS, _NEVER),
    (132005, "Translated text too long",
     "The template's text with its parameters filled in is too long.",
     BUSINESS, _NEVER),
    (132007, "Format character policy violated",
     "A parameter breaks Meta's formatting rules for templates.",
     BUSINESS, _NEVER),
    (132012, "Parameter format does not match format in the created template",
     "A parameter's type does not match the template (for instance text where the header "
     "takes an image, or the wrong number of carousel cards).",
     BUSINESS, _NEVER),
    (132016, "Template is Disabled",
     "Meta disabled the template after it was paused too many times: it cannot be sent again.",
     BUSINESS, _NEVER),
    (132018, "There was an issue with the parameters in your template.",
     "A parameter has a newline, a tab or more than 4 consecutive spaces.",
     BUSINESS, _NEVER),
    (132068, "Flow is in blocked state",
     "The template's flow is blocked: the business must fix the flow.",
     BUSINESS, _NEVER),
    (132069, "Flow is in throttled state",
     "The template's flow is throttled (too many messages with it): the business must fix "
     "the flow.",
     BUSINESS, _NEVER),
    (135000, "Generic user error",
     "Meta refused the request's parameters for an unknown reason: the same request fails "
     "again.",
     BUSINESS, _NEVER),
)  # fmt: skip

#: Meta's codes → what each means.
META_ERRORS: dict[int, ErrorInfo] = {
    code: ErrorInfo(str(code), title, meaning, who, classification)
    for code, title, meaning, who, classification in _TABLE
}

#: 200-299 (API Permission): one entry for the range.
PERMISSION_CODES = range(200, 300)
PERMISSION_ERROR = ErrorInfo(
    "200-299",
    "API Permission",
    "The permission this call needs was not granted or was removed: check the token's permissions.",
    OPERATOR,
    _ALERT,
)


def meta_code_info(code: int) -> ErrorInfo | None:
    """Meta's entry for ``code`` (the permission range included), or None."""
    if code in META_ERRORS:
        return META_ERRORS[code]
    if code in PERMISSION_CODES:
        return replace(PERMISSION_ERROR, code=str(code))
    return None
