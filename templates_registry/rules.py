"""Meta's template rules as pure functions: no database, no HTTP, no Django.

Two families, each returning a list of :class:`Violation` (empty = valid):

* :func:`check_definition` — a template *being created*, in Meta's creation JSON
  (``name, language, category, parameter_format, components``).
* :func:`check_send` — the parameters of *one message*, in Meta's send-time ``components``
  JSON, against the approved template's components. With the tenant policy ``sanitize``,
  formatting violations (newline/tab, > 4 spaces) are repaired instead, and every repair is
  returned so the caller can record it — never silently.

Every violation has a stable ``code`` (clients and tests match on it), the ``component`` and
``parameter`` it concerns, and a human ``message``. The source of each rule is cited beside it
as a section of ``docs/meta-api.md``; the table-driven tests cite the same.

Rules (definition): code — rule [source]
  template_name_invalid — name of 1-512 lowercase letters, digits, underscores [§5.2]
  template_language_invalid — a language code such as en or en_US [§5.4]
  template_category_invalid — MARKETING, UTILITY or AUTHENTICATION [§5.1]
  template_parameter_format_invalid — POSITIONAL or NAMED [§1.2, §5.5]
  components_invalid — components is a list of objects [§1.2]
  component_type_invalid — each is HEADER, BODY, FOOTER or BUTTONS [§1.2]
  component_duplicate — each component at most once [§5.2]
  body_missing — exactly one BODY, the only required component [§5.2]
  header_format_invalid — TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION (GIF: MM Lite only) [§5.2]
  header_location_not_allowed — LOCATION headers only in utility/marketing [§5.2]
  header_text_missing — a TEXT header has text [§5.2]
  header_text_too_long — header text ≤ 60 characters [§5.2]
  header_too_many_variables — header text has at most 1 variable [§5.2]
  body_text_missing — the body has text (authentication bodies are Meta's) [§5.2]
  body_text_too_long — body text ≤ 1,024 characters [§5.2]
  variable_at_edge — the body neither starts nor ends with a variable (2388299) [§5.2]
  footer_text_missing — a footer has text [§5.2]
  footer_text_too_long — footer text ≤ 60 characters [§5.2]
  footer_variables_not_allowed — a footer is text only [§5.2]
  placeholder_malformed — {{1}}… when positional, {{lower_case}} when named [§1.2, §5.3]
  placeholder_sequence — positional placeholders numbered from 1 without gaps [§1.2]
  placeholder_adjacent — no {{1}}{{2}} without text between (INVALID_FORMAT) [§4.9]
  placeholder_name_duplicate — named placeholders are unique [§5.3]
  buttons_missing — BUTTONS holds at least one button [§5.2]
  buttons_too_many — at most 10 buttons (index 0-9) [§5.2, §1.2]
  button_type_invalid — a known button type [§1.2, §5.2]
  button_text_missing — quick-reply, URL and phone buttons have a label [§5.2]
  button_text_too_long — labels ≤ 25 characters [§5.2]
  url_buttons_too_many — at most 2 URL buttons [§5.2]
  button_url_missing — a URL button has a url [§5.2]
  button_url_too_long — url ≤ 2,000 characters [§5.2]
  button_url_too_many_variables — at most 1 variable in a url [§5.2]
  button_url_variable_not_at_end — the url variable is appended at the end [§5.2]
  phone_buttons_too_many — at most 1 phone-number button [§5.2]
  button_phone_number_missing — a phone button has a number [§5.2]
  button_phone_number_too_long — number ≤ 20 characters [§5.2]
  copy_code_buttons_too_many — at most 1 copy-code button [§5.2]
  copy_code_example_too_long — copy code ≤ 15 characters [§5.2]
  quick_replies_not_grouped — quick replies in one group, before or after the rest [§5.2]

Rules (send time): code — rule [source; the Meta error it keeps us from meeting]
  components_invalid — components is a list of objects [§1.2]
  component_type_invalid — each is header, body or button [§1.2]
  component_duplicate — header and body once; one entry per button index [§1.2]
  param_count — positional: one value per placeholder [§2 132000]
  param_missing — named: every name given; a URL variable given [§1.2, §2 131008]
  param_name_unknown — named: no name the template lacks [§1.2, §2 132000]
  param_name_required — named: every value has parameter_name [§1.2]
  param_name_duplicate — named: each name once [§1.2]
  param_type_invalid — per component: text; text/currency/date_time; the media [§2 132012]
  param_value_invalid — well-formed text, currency, date_time, media, location, payload [§2 131009]
  param_empty — text is not empty [§5.3, #100]
  param_newline — no newline or tab in text; fixable by sanitize [§5.3]
  param_spaces — no more than 4 consecutive spaces; fixable by sanitize [§5.3]
  header_too_long — hydrated header ≤ 60 [§2 132005, §5.2]
  body_too_long — hydrated body ≤ 1,024 [§2 132005, §5.2]
  button_index_invalid — index 0-9 naming a template button [§1.2]
  button_sub_type_mismatch — sub_type matches that button [§1.2]
  button_param_count — URL: one suffix iff the url has a variable; copy code: one [§1.2]
  button_url_suffix_invalid — suffix non-empty, no whitespace, url ≤ 2,000 [§5.2]
  coupon_code_too_long — copy code ≤ 15 characters [§5.2]
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# --- Limits (docs/meta-api.md §5.2) -------------------------------------------------------
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

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
PARAMETER_FORMATS = ("POSITIONAL", "NAMED")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "CATALOG", "MPM")
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
}

_NAME = re.compile(r"^[a-z0-9_]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_POSITIONAL = re.compile(r"^[1-9][0-9]*$")
_NAMED = re.compile(r"^[a-z_][a-z0-9_]*$")
_ADJACENT = re.compile(r"\}\}\s*\{\{")
_FORMATTING_WS = re.compile(r"[\n\r\t]")
_SPACE_RUN = re.compile(f" {{{MAX_CONSECUTIVE_SPACES + 1},}}")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    component: str | None = None
    parameter: str | None = None
    formatting: bool = False  # repairable by the ``sanitize`` policy

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "formatting"}


# ==================================================================================================
# Placeholders
# ==================================================================================================


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` in order of appearance (``"1"``, ``"first_name"``)."""
    return [m.strip() for m in _PLACEHOLDER.findall(text or "")]


def _check_placeholders(text: str, *, component: str, parameter_format: str) -> list[Violation]:
    found = placeholders(text)
    out: list[Violation] = []
    pattern = _POSITIONAL if parameter_format == "POSITIONAL" else _NAMED
    kind = (
        "numbered like {{1}}" if parameter_format == "POSITIONAL" else "named like {{first_name}}"
    )
    for raw in _PLACEHOLDER.findall(text or ""):
        if raw != raw.strip() or not pattern.match(raw):
            out.append(
                Violation(
                    "placeholder_malformed",
                    f"Placeholder {{{{{raw}}}}} is not valid: this template's parameters are "
                    f"{kind} (lowercase letters, digits and underscores for names).",
                    component,
                    raw,
                )
            )
    if out:
        return out
    if _ADJACENT.search(text or ""):
        out.append(
            Violation(
                "placeholder_adjacent",
                "Placeholders may not stand next to each other (like {{1}}{{2}}); separate "
                "them with text or punctuation.",
                component,
            )
        )
    if parameter_format == "POSITIONAL":
        numbers = sorted({int(n) for n in found})
        if numbers and numbers != list(range(1, len(numbers) + 1)):
            out.append(
                Violation(
                    "placeholder_sequence",
                    "Positional placeholders must be numbered from {{1}} without gaps; found "
                    + ", ".join(f"{{{{{n}}}}}" for n in numbers)
                    + ".",
                    component,
                )
            )
    else:
        for name, count in Counter(found).items():
            if count > 1:
                out.append(
                    Violation(
                        "placeholder_name_duplicate",
                        f"Named placeholder {{{{{name}}}}} appears {count} times; names must be "
                        "unique.",
                        component,
                        name,
                    )
                )
    return out


def _upper(value: Any) -> str:
    return value.upper() if isinstance(value, str) else ""


# ==================================================================================================
# Definition rules
# ==================================================================================================


def check_definition(template: dict[str, Any]) -> list[Violation]:
    """Check a template in Meta's creation JSON against Meta's documented rules."""
    out: list[Violation] = []
    name = template.get("name")
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not _NAME.match(name):
        out.append(
            Violation(
                "template_name_invalid",
                f"Template names are 1-{NAME_MAX} lowercase letters, digits and underscores.",
                "template",
                "name",
            )
        )
    language = template.get("language")
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        out.append(
            Violation(
                "template_language_invalid",
                "Language must be a Meta language code such as 'en' or 'en_US'.",
                "template",
                "language",
            )
        )
    category = _upper(template.get("category"))
    if category not in CATEGORIES:
        out.append(
            Violation(
                "template_category_invalid",
                f"Category must be one of {', '.join(CATEGORIES)}.",
                "template",
                "category",
            )
        )
    parameter_format = _upper(template.get("parameter_format") or "POSITIONAL")
    if parameter_format not in PARAMETER_FORMATS:
        out.append(
            Violation(
                "template_parameter_format_invalid",
                "parameter_format must be POSITIONAL or NAMED.",
                "template",
                "parameter_format",
            )
        )
        parameter_format = "POSITIONAL"
    out.extend(
        check_components(
            template.get("components"), category=category, parameter_format=parameter_format
        )
    )
    return out


def check_components(components: Any, *, category: str, parameter_format: str) -> list[Violation]:
    """The component part of :func:`check_definition` (the admin checks it field by field)."""
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return [
            Violation(
                "components_invalid",
                "components must be a list of objects.",
                "template",
                "components",
            )
        ]
    out: list[Violation] = []
    seen: Counter[str] = Counter()
    checkers = {
        "HEADER": _check_header,
        "BODY": _check_body,
        "FOOTER": _check_footer,
        "BUTTONS": _check_buttons,
    }
    for index, component in enumerate(components):
        ctype = _upper(component.get("type"))
        if ctype not in checkers:
            out.append(
                Violation(
                    "component_type_invalid",
                    f"Component {index} has type {component.get('type')!r}; expected HEADER, "
                    "BODY, FOOTER or BUTTONS.",
                    f"component[{index}]",
                )
            )
            continue
        seen[ctype] += 1
        if seen[ctype] == 2:
            out.append(
                Violation(
                    "component_duplicate",
                    f"A template has at most one {ctype} component.",
                    ctype.lower(),
                )
            )
        if seen[ctype] == 1:
            out.extend(
                checkers[ctype](component, category=category, parameter_format=parameter_format)
            )
    if not seen["BODY"]:
        out.append(Violation("body_missing", "Every template needs exactly one BODY.", "body"))
    return out


def _check_text(
    component: dict, *, name: str, limit: int, required: bool = True
) -> tuple[str, list[Violation]]:
    text = component.get("text")
    if not isinstance(text, str) or not text.strip():
        if required:
            return "", [Violation(f"{name}_text_missing", f"The {name} needs text.", name, "text")]
        return "", []
    if len(text) > limit:
        return text, [
            Violation(
                f"{name}_text_too_long",
                f"The {name} text is {len(text):,} characters; the limit is {limit:,}.",
                name,
                "text",
            )
        ]
    return text, []


def _check_header(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    fmt = _upper(component.get("format") or "TEXT")
    if fmt not in HEADER_FORMATS:
        return [
            Violation(
                "header_format_invalid",
                f"Header format must be one of {', '.join(HEADER_FORMATS)}.",
                "header",
                "format",
            )
        ]
    if fmt == "LOCATION" and category not in ("UTILITY", "MARKETING"):
        return [
            Violation(
                "header_location_not_allowed",
                "LOCATION headers are only allowed in UTILITY and MARKETING templates.",
                "header",
                "format",
            )
        ]
    if fmt != "TEXT":
        return []
    text, out = _check_text(component, name="header", limit=HEADER_TEXT_MAX)
    variables = placeholders(text)
    if len(variables) > HEADER_VARIABLES_MAX:
        out.append(
            Violation(
                "header_too_many_variables",
                f"A text header has at most {HEADER_VARIABLES_MAX} variable; found "
                f"{len(variables)}.",
                "header",
                "text",
            )
        )
    out.extend(_check_placeholders(text, component="header", parameter_format=parameter_format))
    return out


def _check_body(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    # Authentication templates have Meta-supplied body text (add_security_recommendation...).
    text, out = _check_text(
        component, name="body", limit=BODY_TEXT_MAX, required=category != "AUTHENTICATION"
    )
    stripped = text.strip()
    if stripped and (_PLACEHOLDER.match(stripped) or re.search(r"\{\{[^{}]*\}\}$", stripped)):
        out.append(
            Violation(
                "variable_at_edge",
                "The body may not start or end with a variable (Meta error 2388299).",
                "body",
                "text",
            )
        )
    out.extend(_check_placeholders(text, component="body", parameter_format=parameter_format))
    return out


def _check_footer(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    text, out = _check_text(component, name="footer", limit=FOOTER_TEXT_MAX)
    if placeholders(text):
        out.append(
            Violation(
                "footer_variables_not_allowed",
                "A footer is static text; it cannot contain variables.",
                "footer",
                "text",
            )
        )
    return out


def _check_buttons(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    buttons = component.get("buttons")
    if (
        not isinstance(buttons, list)
        or not buttons
        or not all(isinstance(b, dict) for b in buttons)
    ):
        return [Violation("buttons_missing", "BUTTONS needs a list of 1-10 buttons.", "buttons")]
    out: list[Violation] = []
    if len(buttons) > BUTTONS_MAX:
        out.append(
            Violation(
                "buttons_too_many",
                f"A template has at most {BUTTONS_MAX} buttons; found {len(buttons)}.",
                "buttons",
            )
        )
    types = [_upper(b.get("type")) for b in buttons]
    for kind, limit, code in (
        ("URL", URL_BUTTONS_MAX, "url_buttons_too_many"),
        ("PHONE_NUMBER", PHONE_BUTTONS_MAX, "phone_buttons_too_many"),
        ("COPY_CODE", COPY_CODE_BUTTONS_MAX, "copy_code_buttons_too_many"),
    ):
        if types.count(kind) > limit:
            out.append(
                Violation(
                    code,
                    f"A template has at most {limit} {kind} button(s); found {types.count(kind)}.",
                    "buttons",
                )
            )
    # Quick replies must form one contiguous group (QR,QR,URL ok; QR,URL,QR not) — §5.2.
    is_qr = [t == "QUICK_REPLY" for t in types]
    if sum(1 for a, b in itertools.pairwise(is_qr) if a != b) > 1:
        out.append(
            Violation(
                "quick_replies_not_grouped",
                "Quick-reply buttons must be grouped together, before or after the other buttons.",
                "buttons",
            )
        )
    for index, (button, btype) in enumerate(zip(buttons, types, strict=True)):
        out.extend(
            _check_button(
                button, btype, component=f"button[{index}]", parameter_format=parameter_format
            )
        )
    return out


def _check_button(
    button: dict, btype: str, *, component: str, parameter_format: str
) -> list[Violation]:
    if btype not in BUTTON_TYPES:
        return [
            Violation(
                "button_type_invalid",
                f"Button type must be one of {', '.join(BUTTON_TYPES)}.",
                component,
                "type",
            )
        ]
    out: list[Violation] = []
    if btype in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
        text = button.get("text")
        if not isinstance(text, str) or not text.strip():
            out.append(
                Violation("button_text_missing", "The button needs a label.", component, "text")
            )
        elif len(text) > BUTTON_TEXT_MAX:
            out.append(
                Violation(
                    "button_text_too_long",
                    f"Button label is {len(text)} characters; the limit is {BUTTON_TEXT_MAX}.",
                    component,
                    "text",
                )
            )
    if btype == "URL":
        out.extend(
            _check_url_button(button, component=component, parameter_format=parameter_format)
        )
    elif btype == "PHONE_NUMBER":
        number = button.get("phone_number")
        if not isinstance(number, str) or not number.strip():
            out.append(
                Violation(
                    "button_phone_number_missing",
                    "The button needs a phone number.",
                    component,
                    "phone_number",
                )
            )
        elif len(number) > PHONE_NUMBER_MAX:
            out.append(
                Violation(
                    "button_phone_number_too_long",
                    f"Phone number is {len(number)} characters; the limit is {PHONE_NUMBER_MAX}.",
                    component,
                    "phone_number",
                )
            )
    elif btype == "COPY_CODE":
        example = button.get("example")
        if isinstance(example, list):
            example = example[0] if example else ""
        if isinstance(example, str) and len(example) > COPY_CODE_MAX:
            out.append(
                Violation(
                    "copy_code_example_too_long",
                    f"A copy code is at most {COPY_CODE_MAX} characters; the example has "
                    f"{len(example)}.",
                    component,
                    "example",
                )
            )
    return out


def _check_url_button(button: dict, *, component: str, parameter_format: str) -> list[Violation]:
    url = button.get("url")
    if not isinstance(url, str) or not url.strip():
        return [Violation("button_url_missing", "A URL button needs a url.", component, "url")]
    out: list[Violation] = []
    if len(url) > URL_MAX:
        out.append(
            Violation(
                "button_url_too_long",
                f"The URL is {len(url):,} characters; the limit is {URL_MAX:,}.",
                component,
                "url",
            )
        )
    variables = placeholders(url)
    if len(variables) > URL_VARIABLES_MAX:
        out.append(
            Violation(
                "button_url_too_many_variables",
                f"A URL has at most {URL_VARIABLES_MAX} variable; found {len(variables)}.",
                component,
                "url",
            )
        )
    elif variables and not url.rstrip().endswith("}}"):
        out.append(
            Violation(
                "button_url_variable_not_at_end",
                "A URL variable is appended to the URL: it must be at the very end.",
                component,
                "url",
            )
        )
    elif variables and not _POSITIONAL.match(variables[0]) and not _NAMED.match(variables[0]):
        out.append(
            Violation(
                "placeholder_malformed", "The URL placeholder is not valid.", component, "url"
            )
        )
    return out


# ==================================================================================================
# Send-time rules
# ==================================================================================================


@dataclass(frozen=True)
class ButtonSpec:
    index: int
    type: str  # definition type, e.g. URL
    sub_type: str | None  # the send-time sub_type addressing it
    url: str = ""
    has_variable: bool = False


@dataclass(frozen=True)
class TemplateSpec:
    """What a template expects at send time, derived from its definition."""

    parameter_format: str
    header_format: str | None  # None: no header
    header_text: str
    header_params: tuple[str, ...]  # placeholder names in the text header
    body_text: str
    body_params: tuple[str, ...]
    buttons: tuple[ButtonSpec, ...]


def _distinct(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def template_spec(
    components: list[dict], *, parameter_format: str = "POSITIONAL", category: str = ""
) -> TemplateSpec:
    by_type = {_upper(c.get("type")): c for c in components if isinstance(c, dict)}
    header = by_type.get("HEADER")
    header_format = _upper(header.get("format") or "TEXT") if header else None
    header_text = header.get("text", "") if header and header_format == "TEXT" else ""
    body = by_type.get("BODY", {})
    body_text = body.get("text", "") or ""
    body_params = _distinct(placeholders(body_text))
    if not body_text and _upper(category) == "AUTHENTICATION":
        body_params = ("1",)  # Meta-supplied body carries the one-time code as {{1}}
    buttons = []
    for index, button in enumerate((by_type.get("BUTTONS") or {}).get("buttons") or []):
        btype = _upper(button.get("type"))
        url = button.get("url", "") if btype == "URL" else ""
        buttons.append(
            ButtonSpec(
                index=index,
                type=btype,
                sub_type=SEND_SUB_TYPE.get(btype),
                url=url,
                has_variable=bool(placeholders(url)) or btype == "OTP",
            )
        )
    return TemplateSpec(
        parameter_format=_upper(parameter_format) or "POSITIONAL",
        header_format=header_format,
        header_text=header_text,
        header_params=_distinct(placeholders(header_text)),
        body_text=body_text,
        body_params=body_params,
        buttons=tuple(buttons),
    )


@dataclass
class SendCheck:
    violations: list[Violation] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)  # sanitized copy when policy allows
    sanitized: list[dict[str, Any]] = field(default_factory=list)  # each repair made

    @property
    def ok(self) -> bool:
        return not self.violations


def sanitize_text(text: str) -> str:
    """Newlines and tabs become spaces; runs of spaces collapse to one (the ``sanitize`` policy)."""
    return re.sub(r" {2,}", " ", _FORMATTING_WS.sub(" ", text))


def formatting_violations(text: str) -> list[str]:
    """The §5.3 formatting rules ``text`` breaks, as violation codes."""
    codes = []
    if _FORMATTING_WS.search(text):
        codes.append("param_newline")
    if _SPACE_RUN.search(text):
        codes.append("param_spaces")
    return codes


_FORMATTING_MESSAGES = {
    "param_newline": "Text parameters cannot contain newline or tab characters.",
    "param_spaces": (
        f"Text parameters cannot contain more than {MAX_CONSECUTIVE_SPACES} consecutive spaces."
    ),
}


def check_send(
    *,
    template_components: list[dict],
    send_components: Any,
    parameter_format: str = "POSITIONAL",
    category: str = "",
    policy: str = "reject",
) -> SendCheck:
    """Check one message's send-time ``components`` against the template they fill in.

    ``policy`` is the tenant's formatting policy: ``reject`` reports newline/tab/space-run
    violations; ``sanitize`` repairs them in the returned ``components`` and lists each repair
    in ``sanitized``. Every other violation is reported whatever the policy.
    """
    spec = template_spec(template_components, parameter_format=parameter_format, category=category)
    result = SendCheck(components=copy.deepcopy(send_components))
    components = result.components
    if components is None:
        components = result.components = []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        result.violations.append(
            Violation(
                "components_invalid",
                "components must be a list of objects.",
                "template",
                "components",
            )
        )
        return result

    headers, bodies, buttons = [], [], []
    for index, component in enumerate(components):
        ctype = component.get("type")
        if ctype == "header":
            headers.append(component)
        elif ctype == "body":
            bodies.append(component)
        elif ctype == "button":
            buttons.append(component)
        else:
            result.violations.append(
                Violation(
                    "component_type_invalid",
                    f"Component {index} has type {ctype!r}; expected header, body or button.",
                    f"component[{index}]",
                )
            )
    for name, found in (("header", headers), ("body", bodies)):
        if len(found) > 1:
            result.violations.append(
                Violation("component_duplicate", f"Send the {name} component once.", name)
            )

    header = headers[0] if headers else None
    if spec.header_format in MEDIA_FORMATS or spec.header_format == "LOCATION":
        _check_media_header(spec, header, result)
    else:
        _check_text_params(
            "header",
            spec.header_params,
            header,
            spec.parameter_format,
            result,
            policy,
            template_text=spec.header_text,
            limit=HEADER_TEXT_MAX,
        )
    _check_text_params(
        "body",
        spec.body_params,
        bodies[0] if bodies else None,
        spec.parameter_format,
        result,
        policy,
        template_text=spec.body_text,
        limit=BODY_TEXT_MAX,
    )
    _check_buttons_send(spec, buttons, result)
    return result


def _params_of(component: dict | None, name: str, result: SendCheck) -> list[dict]:
    if component is None:
        return []
    params = component.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        result.violations.append(
            Violation("param_value_invalid", "parameters must be a list of objects.", name)
        )
        return []
    return params


def _param_value(param: dict) -> str | None:
    """The text a parameter renders as, or None when its shape is invalid."""
    ptype = param.get("type")
    if ptype == "text":
        value = param.get("text")
        return value if isinstance(value, str) else None
    if ptype == "currency":
        cur = param.get("currency")
        if (
            isinstance(cur, dict)
            and isinstance(cur.get("fallback_value"), str)
            and isinstance(cur.get("code"), str)
            and _CURRENCY.match(cur["code"])
            and isinstance(cur.get("amount_1000"), int)
            and not isinstance(cur.get("amount_1000"), bool)
        ):
            return cur["fallback_value"]
        return None
    if ptype == "date_time":
        dt = param.get("date_time")
        if isinstance(dt, dict) and isinstance(dt.get("fallback_value"), str):
            return dt["fallback_value"]
        return None
    return None


_TEXT_PARAM_TYPES = {"header": ("text",), "body": ("text", "currency", "date_time")}


def _check_text_params(
    name: str,
    expected: tuple[str, ...],
    component: dict | None,
    parameter_format: str,
    result: SendCheck,
    policy: str,
    *,
    template_text: str,
    limit: int,
) -> None:
    params = _params_of(component, name, result)
    named = parameter_format == "NAMED"
    values: dict[str, str] = {}

    if named:
        given: Counter[str] = Counter()
        for position, param in enumerate(params, start=1):
            pname = param.get("parameter_name")
            if not isinstance(pname, str) or not pname:
                result.violations.append(
                    Violation(
                        "param_name_required",
                        "This template uses named parameters: every parameter needs "
                        "parameter_name.",
                        name,
                        str(position),
                    )
                )
                continue
            given[pname] += 1
            if given[pname] == 2:
                result.violations.append(
                    Violation(
                        "param_name_duplicate", f"Parameter {pname!r} is given twice.", name, pname
                    )
                )
            if pname not in expected:
                result.violations.append(
                    Violation(
                        "param_name_unknown",
                        f"The template's {name} has no parameter named {pname!r}.",
                        name,
                        pname,
                    )
                )
                continue
            _check_one_text_param(name, pname, param, values, result, policy)
        for pname in expected:
            if pname not in given:
                result.violations.append(
                    Violation("param_missing", f"Parameter {pname!r} is missing.", name, pname)
                )
    else:
        if len(params) != len(expected):
            result.violations.append(
                Violation(
                    "param_count",
                    f"The template's {name} takes {len(expected)} parameter(s); "
                    f"{len(params)} given.",
                    name,
                )
            )
        for position, param in enumerate(params[: len(expected)], start=1):
            _check_one_text_param(name, str(position), param, values, result, policy)

    if template_text and len(values) == len(expected):
        rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(1).strip(), ""), template_text)
        if len(rendered) > limit:
            result.violations.append(
                Violation(
                    f"{name}_too_long",
                    f"With these parameters the {name} is {len(rendered):,} characters; the "
                    f"limit is {limit:,} (Meta error 132005).",
                    name,
                )
            )


def _check_one_text_param(
    name: str, pname: str, param: dict, values: dict[str, str], result: SendCheck, policy: str
) -> None:
    ptype = param.get("type")
    if ptype not in _TEXT_PARAM_TYPES[name]:
        result.violations.append(
            Violation(
                "param_type_invalid",
                f"{name} parameters take type {' / '.join(_TEXT_PARAM_TYPES[name])}, not "
                f"{ptype!r}.",
                name,
                pname,
            )
        )
        return
    value = _param_value(param)
    if value is None:
        result.violations.append(
            Violation(
                "param_value_invalid",
                f"A {ptype} parameter needs "
                + {
                    "text": "a string 'text'.",
                    "currency": "currency {fallback_value, code (ISO 4217), amount_1000 (int)}.",
                    "date_time": "date_time {fallback_value}.",
                }[ptype],
                name,
                pname,
            )
        )
        return
    if not value.strip():
        result.violations.append(
            Violation("param_empty", "Parameter values cannot be empty.", name, pname)
        )
        return
    if ptype == "text":
        codes = formatting_violations(value)
        if codes and policy == "sanitize":
            fixed = sanitize_text(value)
            param["text"] = fixed
            result.sanitized.append(
                {
                    "component": name,
                    "parameter": pname,
                    "rules": codes,
                    "before": value,
                    "after": fixed,
                }
            )
            value = fixed
        else:
            for code in codes:
                result.violations.append(
                    Violation(code, _FORMATTING_MESSAGES[code], name, pname, formatting=True)
                )
    values[pname] = value


def _check_media_header(spec: TemplateSpec, header: dict | None, result: SendCheck) -> None:
    expected_type = (spec.header_format or "").lower()
    params = _params_of(header, "header", result)
    if len(params) != 1:
        result.violations.append(
            Violation(
                "param_count",
                f"The template's {expected_type} header takes 1 parameter; {len(params)} given.",
                "header",
            )
        )
        return
    param = params[0]
    if param.get("type") != expected_type:
        result.violations.append(
            Violation(
                "param_type_invalid",
                f"The header is {expected_type}; the parameter has type {param.get('type')!r}.",
                "header",
                "1",
            )
        )
        return
    obj = param.get(expected_type)
    if expected_type == "location":
        valid = isinstance(obj, dict) and all(
            _is_number(obj.get(k)) for k in ("latitude", "longitude")
        )
        hint = "location {latitude, longitude}"
    else:
        valid = isinstance(obj, dict) and (
            (isinstance(obj.get("id"), str) and obj["id"] and "link" not in obj)
            or (
                isinstance(obj.get("link"), str)
                and re.match(r"^https?://\S+$", obj["link"])
                and "id" not in obj
            )
        )
        hint = f"{expected_type} with exactly one of id or an http(s) link"
    if not valid:
        result.violations.append(
            Violation("param_value_invalid", f"The header parameter needs {hint}.", "header", "1")
        )


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_buttons_send(spec: TemplateSpec, buttons: list[dict], result: SendCheck) -> None:
    by_index: dict[int, dict] = {}
    for button in buttons:
        raw_index = button.get("index")
        try:
            index = int(raw_index)
        except (TypeError, ValueError):
            index = -1
        component = f"button[{raw_index}]"
        if not 0 <= index < min(BUTTONS_MAX, len(spec.buttons)):
            result.violations.append(
                Violation(
                    "button_index_invalid",
                    f"Button index {raw_index!r} does not name a button of this template "
                    f"(it has {len(spec.buttons)}).",
                    component,
                )
            )
            continue
        if index in by_index:
            result.violations.append(
                Violation("component_duplicate", f"Button {index} is given twice.", component)
            )
            continue
        by_index[index] = button
        target = spec.buttons[index]
        if button.get("sub_type") != target.sub_type:
            result.violations.append(
                Violation(
                    "button_sub_type_mismatch",
                    f"Button {index} is a {target.type} button: its sub_type is "
                    f"{target.sub_type!r}, not {button.get('sub_type')!r}.",
                    component,
                )
            )
            continue
        _check_button_params(target, button, component, result)

    for target in spec.buttons:
        if target.has_variable and target.index not in by_index:
            result.violations.append(
                Violation(
                    "param_missing",
                    f"Button {target.index} ({target.type}) has a variable: send its parameter.",
                    f"button[{target.index}]",
                )
            )


def _check_button_params(
    target: ButtonSpec, button: dict, component: str, result: SendCheck
) -> None:
    params = _params_of(button, component, result)
    if target.sub_type == "url":
        expected = 1 if target.has_variable else 0
        if len(params) != expected:
            result.violations.append(
                Violation(
                    "button_param_count",
                    f"This URL button takes {expected} parameter(s); {len(params)} given.",
                    component,
                )
            )
            return
        if expected:
            suffix = params[0].get("text") if params[0].get("type") == "text" else None
            if not isinstance(suffix, str) or not suffix or re.search(r"\s", suffix):
                result.violations.append(
                    Violation(
                        "button_url_suffix_invalid",
                        "A URL button takes one text parameter, the suffix appended to its URL: "
                        "non-empty, without whitespace.",
                        component,
                        "1",
                    )
                )
            elif len(_PLACEHOLDER.sub(lambda _m: suffix, target.url)) > URL_MAX:
                result.violations.append(
                    Violation(
                        "button_url_suffix_invalid",
                        f"With this suffix the URL exceeds {URL_MAX:,} characters.",
                        component,
                        "1",
                    )
                )
    elif target.sub_type == "quick_reply":
        if len(params) > 1 or any(
            p.get("type") != "payload" or not isinstance(p.get("payload"), str) or not p["payload"]
            for p in params
        ):
            result.violations.append(
                Violation(
                    "param_value_invalid",
                    "A quick-reply button takes at most one parameter of type payload with a "
                    "non-empty string payload.",
                    component,
                )
            )
    elif target.sub_type == "copy_code":
        if (
            len(params) != 1
            or params[0].get("type") != "coupon_code"
            or not isinstance(params[0].get("coupon_code"), str)
        ):
            result.violations.append(
                Violation(
                    "button_param_count",
                    "A copy-code button takes one parameter of type coupon_code.",
                    component,
                )
            )
        elif len(params[0]["coupon_code"]) > COPY_CODE_MAX:
            result.violations.append(
                Violation(
                    "coupon_code_too_long",
                    f"A copy code is at most {COPY_CODE_MAX} characters.",
                    component,
                    "1",
                )
            )
