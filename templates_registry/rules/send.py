"""Send-time rules: the parameters of *one message*, in Meta's send-time ``components`` JSON,
against the approved template's components. With the tenant policy ``sanitize``, formatting
violations (newline/tab, > 4 spaces) are repaired instead, and every repair is returned so the
caller can record it — never silently."""

from __future__ import annotations

import copy
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from templates_registry.rules.limits import (
    BODY_TEXT_MAX,
    BUTTONS_MAX,
    COPY_CODE_MAX,
    CURRENCY_CODE,
    FORMATTING_WHITESPACE,
    HEADER_TEXT_MAX,
    MEDIA_FORMATS,
    OTP_CODE_MAX,
    PLACEHOLDER,
    SEND_SUB_TYPE,
    SPACE_RUN,
    URL_MAX,
    TemplateCategory,
    upper,
)
from templates_registry.rules.placeholders import placeholders
from templates_registry.rules.violations import Violation, violation


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
    category: str = ""
    # A limited-time offer: None without one, else whether it shows a countdown.
    offer_expires: bool | None = None
    # A media card carousel: each card's components, as approved.
    cards: tuple[tuple[dict, ...], ...] = ()


def _distinct(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _text(value: Any) -> str:
    """A template's text as a string: a stored or synced template is not trusted to hold one."""
    return value if isinstance(value, str) else ""


def template_spec(
    components: list[dict], *, parameter_format: str = "POSITIONAL", category: str = ""
) -> TemplateSpec:
    by_type = {upper(c.get("type")): c for c in components if isinstance(c, dict)}
    header = by_type.get("HEADER")
    header_format = upper(header.get("format") or "TEXT") if header else None
    header_text = _text(header.get("text")) if header and header_format == "TEXT" else ""
    body = by_type.get("BODY", {})
    body_text = _text(body.get("text"))
    body_params = _distinct(placeholders(body_text))
    if not body_text and upper(category) == TemplateCategory.AUTHENTICATION:
        body_params = ("1",)  # Meta-supplied body carries the one-time code as {{1}}
    buttons = []
    for index, button in enumerate((by_type.get("BUTTONS") or {}).get("buttons") or []):
        btype = upper(button.get("type"))
        url = _text(button.get("url")) if btype == "URL" else ""
        buttons.append(
            ButtonSpec(
                index=index,
                type=btype,
                sub_type=SEND_SUB_TYPE.get(btype),
                url=url,
                has_variable=bool(placeholders(url)) or btype == "OTP",
            )
        )
    offer = by_type.get("LIMITED_TIME_OFFER")
    offer_expires = None
    if offer is not None:
        details = offer.get("limited_time_offer")
        offer_expires = bool(isinstance(details, dict) and details.get("has_expiration"))
    carousel = by_type.get("CAROUSEL") or {}
    cards = tuple(
        tuple(c for c in card.get("components") or [] if isinstance(c, dict))
        for card in carousel.get("cards") or []
        if isinstance(card, dict)
    )
    return TemplateSpec(
        parameter_format=upper(parameter_format) or "POSITIONAL",
        header_format=header_format,
        header_text=header_text,
        header_params=_distinct(placeholders(header_text)),
        body_text=body_text,
        body_params=body_params,
        buttons=tuple(buttons),
        category=upper(category),
        offer_expires=offer_expires,
        cards=cards,
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
    return re.sub(r" {2,}", " ", FORMATTING_WHITESPACE.sub(" ", text))


def formatting_violations(text: str) -> list[str]:
    """The §5.3 formatting rules ``text`` breaks, as violation codes."""
    codes = []
    if FORMATTING_WHITESPACE.search(text):
        codes.append("param_newline")
    if SPACE_RUN.search(text):
        codes.append("param_spaces")
    return codes


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
        result.violations.append(violation("components_invalid", "template", "components"))
        return result

    headers, bodies, buttons, offers, carousels = [], [], [], [], []
    for index, component in enumerate(components):
        ctype = component.get("type")
        if ctype == "header":
            headers.append(component)
        elif ctype == "body":
            bodies.append(component)
        elif ctype == "button":
            buttons.append(component)
        elif ctype == "limited_time_offer" and spec.offer_expires is not None:
            offers.append(component)
        elif ctype == "carousel" and spec.cards:
            carousels.append(component)
        else:
            result.violations.append(
                violation(
                    "component_type_invalid",
                    f"component[{index}]",
                    variant="send",
                    index=index,
                    type=ctype,
                )
            )
    for name, found in (("header", headers), ("body", bodies)):
        if len(found) > 1:
            result.violations.append(
                violation("component_duplicate", name, variant="send", name=name)
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
    if spec.offer_expires:
        _check_offer(offers[0] if offers else None, result)
    if spec.cards:
        _check_carousel(spec, carousels[0] if carousels else None, result, policy)
    if spec.category == TemplateCategory.AUTHENTICATION:
        _check_code_length(bodies[0] if bodies else None, result)
    return result


def _check_offer(component: dict | None, result: SendCheck) -> None:
    """A limited-time offer with a countdown needs its end: ``expiration_time_ms``."""
    params = _params_of(component, "limited_time_offer", result) if component else []
    offer = params[0].get("limited_time_offer") if len(params) == 1 else None
    expires = offer.get("expiration_time_ms") if isinstance(offer, dict) else None
    if not isinstance(expires, int) or isinstance(expires, bool) or expires <= 0:
        result.violations.append(violation("lto_expiration_invalid", "limited_time_offer"))


def _check_carousel(
    spec: TemplateSpec, component: dict | None, result: SendCheck, policy: str
) -> None:
    """As many cards as approved, each addressed once by ``card_index`` and checked like a
    template of its own (its header, body and buttons)."""
    cards = component.get("cards") if component else None
    cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    if len(cards) != len(spec.cards):
        result.violations.append(
            violation(
                "carousel_cards_count",
                "carousel",
                variant="send",
                expected=len(spec.cards),
                given=len(cards),
            )
        )
        return
    seen: set[int] = set()
    for card in cards:
        raw = card.get("card_index")
        index = raw if isinstance(raw, int) and not isinstance(raw, bool) else -1
        if not 0 <= index < len(spec.cards) or index in seen:
            result.violations.append(
                violation(
                    "carousel_card_index_invalid",
                    "carousel",
                    index=raw,
                    last=len(spec.cards) - 1,
                )
            )
            continue
        seen.add(index)
        checked = check_send(
            template_components=list(spec.cards[index]),
            send_components=card.get("components"),
            parameter_format=spec.parameter_format,
            policy=policy,
        )
        card["components"] = checked.components  # with any repairs the policy made
        result.violations += [
            Violation(
                v.code,
                v.message,
                f"card[{index}].{v.component}" if v.component else f"card[{index}]",
                v.parameter,
                v.formatting,
            )
            for v in checked.violations
        ]
        result.sanitized += [
            {**repair, "component": f"card[{index}].{repair['component']}"}
            for repair in checked.sanitized
        ]


def _check_code_length(body: dict | None, result: SendCheck) -> None:
    """An authentication template's code (its one body parameter) is at most 15 characters."""
    params = body.get("parameters") if body else None
    if isinstance(params, list) and params and isinstance(params[0], dict):
        code = params[0].get("text")
        if isinstance(code, str) and len(code) > OTP_CODE_MAX:
            result.violations.append(violation("otp_code_too_long", "body", "1"))


def _params_of(component: dict | None, name: str, result: SendCheck) -> list[dict]:
    if component is None:
        return []
    params = component.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        result.violations.append(violation("param_value_invalid", name, variant="list"))
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
            and CURRENCY_CODE.match(cur["code"])
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
    found = result.violations
    values: dict[str, str] = {}

    if parameter_format == "NAMED":
        given: Counter[str] = Counter()
        for position, param in enumerate(params, start=1):
            pname = param.get("parameter_name")
            if not isinstance(pname, str) or not pname:
                found.append(violation("param_name_required", name, str(position)))
                continue
            given[pname] += 1
            if given[pname] == 2:
                found.append(violation("param_name_duplicate", name, pname, name=pname))
            if pname not in expected:
                found.append(violation("param_name_unknown", name, pname, name=name, given=pname))
                continue
            _check_one_text_param(name, pname, param, values, result, policy)
        found += [
            violation("param_missing", name, pname, variant="named", name=pname)
            for pname in expected
            if pname not in given
        ]
    else:
        if len(params) != len(expected):
            found.append(
                violation(
                    "param_count",
                    name,
                    variant="text",
                    name=name,
                    expected=len(expected),
                    given=len(params),
                )
            )
        for position, param in enumerate(params[: len(expected)], start=1):
            _check_one_text_param(name, str(position), param, values, result, policy)

    if template_text and len(values) == len(expected):
        rendered = PLACEHOLDER.sub(lambda m: values.get(m.group(1).strip(), ""), template_text)
        if len(rendered) > limit:
            found.append(violation(f"{name}_too_long", name, length=len(rendered)))


def _check_one_text_param(
    name: str, pname: str, param: dict, values: dict[str, str], result: SendCheck, policy: str
) -> None:
    ptype = param.get("type")
    if ptype not in _TEXT_PARAM_TYPES[name]:
        allowed = " / ".join(_TEXT_PARAM_TYPES[name])
        result.violations.append(
            violation(
                "param_type_invalid",
                name,
                pname,
                variant="text",
                name=name,
                allowed=allowed,
                type=ptype,
            )
        )
        return
    value = _param_value(param)
    if value is None:
        result.violations.append(violation("param_value_invalid", name, pname, variant=ptype))
        return
    if not value.strip():
        result.violations.append(violation("param_empty", name, pname))
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
            result.violations += [violation(code, name, pname) for code in codes]
    values[pname] = value


def _check_media_header(spec: TemplateSpec, header: dict | None, result: SendCheck) -> None:
    expected_type = (spec.header_format or "").lower()
    params = _params_of(header, "header", result)
    if len(params) != 1:
        result.violations.append(
            violation(
                "param_count", "header", variant="media", type=expected_type, given=len(params)
            )
        )
        return
    param = params[0]
    if param.get("type") != expected_type:
        result.violations.append(
            violation(
                "param_type_invalid",
                "header",
                "1",
                variant="media",
                expected=expected_type,
                type=param.get("type"),
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
        # Meta's id or link, or Waypost's media_id (a file uploaded with POST /api/v1/media:
        # the media app checks it is the tenant's, and puts the provider's id in its place).
        named = [key for key in ("id", "link", "media_id") if isinstance(obj, dict) and key in obj]
        valid = named == ["id"] and isinstance(obj["id"], str) and bool(obj["id"])
        valid = valid or (
            named == ["link"]
            and isinstance(obj["link"], str)
            and bool(re.match(r"^https?://\S+$", obj["link"]))
        )
        valid = valid or (
            named == ["media_id"] and isinstance(obj["media_id"], str) and bool(obj["media_id"])
        )
        hint = f"{expected_type} with exactly one of id, an http(s) link or a Waypost media_id"
    if not valid:
        result.violations.append(
            violation("param_value_invalid", "header", "1", variant="media", hint=hint)
        )
    elif expected_type == "document" and "filename" in obj:
        name = obj["filename"]
        if not isinstance(name, str) or not name.strip() or "/" in name:
            result.violations.append(violation("media_filename_invalid", "header", "1"))


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
                violation(
                    "button_index_invalid", component, index=raw_index, count=len(spec.buttons)
                )
            )
            continue
        if index in by_index:
            result.violations.append(
                violation("component_duplicate", component, variant="button", index=index)
            )
            continue
        by_index[index] = button
        target = spec.buttons[index]
        if button.get("sub_type") != target.sub_type:
            result.violations.append(
                violation(
                    "button_sub_type_mismatch",
                    component,
                    index=index,
                    type=target.type,
                    expected=target.sub_type,
                    given=button.get("sub_type"),
                )
            )
            continue
        _check_button_params(target, button, component, result)

    result.violations += [
        violation(
            "param_missing",
            f"button[{target.index}]",
            variant="button",
            index=target.index,
            type=target.type,
        )
        for target in spec.buttons
        if target.has_variable and target.index not in by_index
    ]


def _check_button_params(
    target: ButtonSpec, button: dict, component: str, result: SendCheck
) -> None:
    params = _params_of(button, component, result)
    found = result.violations
    if target.sub_type == "url":
        expected = 1 if target.has_variable else 0
        if len(params) != expected:
            found.append(
                violation(
                    "button_param_count",
                    component,
                    variant="url",
                    expected=expected,
                    given=len(params),
                )
            )
            return
        if expected:
            suffix = params[0].get("text") if params[0].get("type") == "text" else None
            if not isinstance(suffix, str) or not suffix or re.search(r"\s", suffix):
                found.append(
                    violation("button_url_suffix_invalid", component, "1", variant="shape")
                )
            elif len(PLACEHOLDER.sub(lambda _m: suffix, target.url)) > URL_MAX:
                found.append(
                    violation("button_url_suffix_invalid", component, "1", variant="length")
                )
    elif target.sub_type == "quick_reply":
        if len(params) > 1 or any(
            p.get("type") != "payload" or not isinstance(p.get("payload"), str) or not p["payload"]
            for p in params
        ):
            found.append(violation("param_value_invalid", component, variant="quick_reply"))
    elif target.sub_type == "copy_code":
        if (
            len(params) != 1
            or params[0].get("type") != "coupon_code"
            or not isinstance(params[0].get("coupon_code"), str)
        ):
            found.append(violation("button_param_count", component, variant="copy_code"))
        elif len(params[0]["coupon_code"]) > COPY_CODE_MAX:
            found.append(violation("coupon_code_too_long", component, "1"))
