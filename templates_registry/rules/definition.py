"""Definition rules: a template *being created*, in Meta's creation JSON (``name, language,
category, parameter_format, components``)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
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
    CAROUSEL_HEADER_FORMATS,
    CATEGORIES,
    COPY_CODE_BUTTONS_MAX,
    COPY_CODE_MAX,
    FOOTER_TEXT_MAX,
    HEADER_FORMATS,
    HEADER_TEXT_MAX,
    HEADER_VARIABLES_MAX,
    LANGUAGE_CODE,
    LTO_TEXT_MAX,
    NAME_MAX,
    NAMED_NAME,
    OTP_TYPES,
    PARAMETER_FORMATS,
    PHONE_BUTTONS_MAX,
    PHONE_NUMBER_MAX,
    PLACEHOLDER,
    POSITIONAL_NAME,
    TEMPLATE_NAME,
    URL_BUTTONS_MAX,
    URL_MAX,
    URL_VARIABLES_MAX,
    TemplateCategory,
    upper,
)
from templates_registry.rules.placeholders import check_placeholders, placeholders
from templates_registry.rules.violations import Violation, violation


def check_definition(template: dict[str, Any]) -> list[Violation]:
    """Check a template in Meta's creation JSON against Meta's documented rules."""
    out: list[Violation] = []
    name = template.get("name")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > NAME_MAX
        or not TEMPLATE_NAME.match(name)
    ):
        out.append(violation("template_name_invalid", "template", "name"))
    language = template.get("language")
    if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
        out.append(violation("template_language_invalid", "template", "language"))
    category = upper(template.get("category"))
    if category not in CATEGORIES:
        out.append(violation("template_category_invalid", "template", "category"))
    parameter_format = upper(template.get("parameter_format") or "POSITIONAL")
    if parameter_format not in PARAMETER_FORMATS:
        out.append(violation("template_parameter_format_invalid", "template", "parameter_format"))
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
        return [violation("components_invalid", "template", "components")]
    out: list[Violation] = []
    seen: Counter[str] = Counter()
    checkers = {
        "HEADER": _check_header,
        "BODY": _check_body,
        "FOOTER": _check_footer,
        "BUTTONS": _check_buttons,
        "LIMITED_TIME_OFFER": _check_limited_time_offer,
        "CAROUSEL": _check_carousel,
    }
    for index, component in enumerate(components):
        ctype = upper(component.get("type"))
        if ctype not in checkers:
            out.append(
                violation(
                    "component_type_invalid",
                    f"component[{index}]",
                    variant="definition",
                    index=index,
                    type=component.get("type"),
                )
            )
            continue
        seen[ctype] += 1
        if seen[ctype] == 2:
            out.append(
                violation("component_duplicate", ctype.lower(), variant="definition", type=ctype)
            )
        if seen[ctype] == 1:
            out.extend(
                checkers[ctype](component, category=category, parameter_format=parameter_format)
            )
    if not seen["BODY"]:
        out.append(violation("body_missing", "body"))
    if seen["LIMITED_TIME_OFFER"]:
        if category != TemplateCategory.MARKETING:
            out.append(violation("lto_not_marketing", "limited_time_offer"))
        if seen["FOOTER"]:
            out.append(violation("lto_with_footer", "footer"))
    if seen["CAROUSEL"] and category != TemplateCategory.MARKETING:
        out.append(violation("carousel_not_marketing", "carousel"))
    return out


def _check_limited_time_offer(
    component: dict, *, category: str, parameter_format: str
) -> list[Violation]:
    """A limited-time offer: a short offer text, optionally a countdown (``has_expiration``)."""
    offer = component.get("limited_time_offer")
    offer = offer if isinstance(offer, dict) else {}
    text = offer.get("text")
    if isinstance(text, str) and len(text) > LTO_TEXT_MAX:
        return [violation("lto_text_too_long", "limited_time_offer", "text", length=len(text))]
    return []


def _check_carousel(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    """A media card carousel: 2-10 cards, each with an image or video header, an optional
    body and up to two buttons — the same on every card."""
    cards = component.get("cards")
    cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    if not CAROUSEL_CARDS_MIN <= len(cards) <= CAROUSEL_CARDS_MAX:
        return [
            violation("carousel_cards_count", "carousel", variant="definition", count=len(cards))
        ]
    out: list[Violation] = []
    shapes = []
    for index, card in enumerate(cards):
        where = f"card[{index}]"
        parts = {
            upper(c.get("type")): c for c in card.get("components") or [] if isinstance(c, dict)
        }
        header = parts.get("HEADER") or {}
        if upper(header.get("format")) not in CAROUSEL_HEADER_FORMATS:
            out.append(violation("carousel_card_header_invalid", where, index=index))
        text = (parts.get("BODY") or {}).get("text") or ""
        if isinstance(text, str) and len(text) > CAROUSEL_CARD_BODY_MAX:
            out.append(
                violation("carousel_card_body_too_long", where, index=index, length=len(text))
            )
        card_buttons = (parts.get("BUTTONS") or {}).get("buttons") or []
        if len(card_buttons) > CAROUSEL_CARD_BUTTONS_MAX:
            out.append(
                violation(
                    "carousel_card_buttons_too_many", where, index=index, count=len(card_buttons)
                )
            )
        out.extend(check_placeholders(text, component=where, parameter_format=parameter_format))
        button_types = tuple(upper(b.get("type")) for b in card_buttons if isinstance(b, dict))
        shapes.append((tuple(sorted(parts)), upper(header.get("format")), button_types))
    out += [
        violation("carousel_cards_differ", f"card[{index}]", index=index)
        for index, shape in enumerate(shapes)
        if shape != shapes[0]
    ]
    return out


def _check_text(
    component: dict, *, name: str, limit: int, required: bool = True
) -> tuple[str, list[Violation]]:
    text = component.get("text")
    if not isinstance(text, str) or not text.strip():
        return "", [violation(f"{name}_text_missing", name, "text")] if required else []
    if len(text) > limit:
        too_long = violation(
            f"{name}_text_too_long", name, "text", name=name, length=len(text), limit=limit
        )
        return text, [too_long]
    return text, []


# Location headers and "request contact info" buttons: not in authentication templates.
_UTILITY_OR_MARKETING = (TemplateCategory.UTILITY, TemplateCategory.MARKETING)


def _check_header(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    fmt = upper(component.get("format") or "TEXT")
    if fmt not in HEADER_FORMATS:
        return [violation("header_format_invalid", "header", "format")]
    if fmt == "LOCATION" and category not in _UTILITY_OR_MARKETING:
        return [violation("header_location_not_allowed", "header", "format")]
    if fmt != "TEXT":
        return []
    text, out = _check_text(component, name="header", limit=HEADER_TEXT_MAX)
    variables = placeholders(text)
    if len(variables) > HEADER_VARIABLES_MAX:
        out.append(violation("header_too_many_variables", "header", "text", count=len(variables)))
    out.extend(check_placeholders(text, component="header", parameter_format=parameter_format))
    return out


def _check_body(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    # Authentication templates have Meta-supplied body text (add_security_recommendation...).
    text, out = _check_text(
        component,
        name="body",
        limit=BODY_TEXT_MAX,
        required=category != TemplateCategory.AUTHENTICATION,
    )
    stripped = text.strip()
    if stripped and (PLACEHOLDER.match(stripped) or re.search(r"\{\{[^{}]*\}\}$", stripped)):
        out.append(violation("variable_at_edge", "body", "text"))
    out.extend(check_placeholders(text, component="body", parameter_format=parameter_format))
    return out


def _check_footer(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    text, out = _check_text(component, name="footer", limit=FOOTER_TEXT_MAX)
    if placeholders(text):
        out.append(violation("footer_variables_not_allowed", "footer", "text"))
    return out


def _check_buttons(component: dict, *, category: str, parameter_format: str) -> list[Violation]:
    buttons = component.get("buttons")
    out: list[Violation] = []
    if isinstance(buttons, list) and category not in _UTILITY_OR_MARKETING:
        out += [
            violation("request_contact_info_not_allowed", f"button[{index}]", "type")
            for index, button in enumerate(buttons)
            if isinstance(button, dict) and upper(button.get("type")) == "REQUEST_CONTACT_INFO"
        ]
    if (
        not isinstance(buttons, list)
        or not buttons
        or not all(isinstance(b, dict) for b in buttons)
    ):
        return [violation("buttons_missing", "buttons")]
    if len(buttons) > BUTTONS_MAX:
        out.append(violation("buttons_too_many", "buttons", count=len(buttons)))
    types = [upper(b.get("type")) for b in buttons]
    for kind, limit, code in (
        ("URL", URL_BUTTONS_MAX, "url_buttons_too_many"),
        ("PHONE_NUMBER", PHONE_BUTTONS_MAX, "phone_buttons_too_many"),
        ("COPY_CODE", COPY_CODE_BUTTONS_MAX, "copy_code_buttons_too_many"),
    ):
        if types.count(kind) > limit:
            out.append(violation(code, "buttons", limit=limit, kind=kind, count=types.count(kind)))
    # Quick replies must form one contiguous group (QR,QR,URL ok; QR,URL,QR not) — §5.2.
    is_qr = [t == "QUICK_REPLY" for t in types]
    if sum(1 for a, b in itertools.pairwise(is_qr) if a != b) > 1:
        out.append(violation("quick_replies_not_grouped", "buttons"))
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
        return [violation("button_type_invalid", component, "type")]
    out: list[Violation] = []
    if btype == "OTP" and upper(button.get("otp_type")) not in OTP_TYPES:
        out.append(violation("otp_type_invalid", component, "otp_type"))
    if btype in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
        text = button.get("text")
        if not isinstance(text, str) or not text.strip():
            out.append(violation("button_text_missing", component, "text"))
        elif len(text) > BUTTON_TEXT_MAX:
            out.append(violation("button_text_too_long", component, "text", length=len(text)))
    if btype == "URL":
        out.extend(
            _check_url_button(button, component=component, parameter_format=parameter_format)
        )
    elif btype == "PHONE_NUMBER":
        number = button.get("phone_number")
        if not isinstance(number, str) or not number.strip():
            out.append(violation("button_phone_number_missing", component, "phone_number"))
        elif len(number) > PHONE_NUMBER_MAX:
            out.append(
                violation(
                    "button_phone_number_too_long", component, "phone_number", length=len(number)
                )
            )
    elif btype == "COPY_CODE":
        example = button.get("example")
        if isinstance(example, list):
            example = example[0] if example else ""
        if isinstance(example, str) and len(example) > COPY_CODE_MAX:
            out.append(
                violation("copy_code_example_too_long", component, "example", length=len(example))
            )
    return out


def _check_url_button(button: dict, *, component: str, parameter_format: str) -> list[Violation]:
    url = button.get("url")
    if not isinstance(url, str) or not url.strip():
        return [violation("button_url_missing", component, "url")]
    out: list[Violation] = []
    if len(url) > URL_MAX:
        out.append(violation("button_url_too_long", component, "url", length=len(url)))
    variables = placeholders(url)
    if len(variables) > URL_VARIABLES_MAX:
        out.append(
            violation("button_url_too_many_variables", component, "url", count=len(variables))
        )
    elif variables and not url.rstrip().endswith("}}"):
        out.append(violation("button_url_variable_not_at_end", component, "url"))
    elif (
        variables and not POSITIONAL_NAME.match(variables[0]) and not NAMED_NAME.match(variables[0])
    ):
        out.append(violation("placeholder_malformed", component, "url", variant="url"))
    return out
