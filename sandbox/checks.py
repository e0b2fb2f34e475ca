"""What Meta checks on a send request, answering with Meta's codes (docs/meta-api.md §1.2, §2).

Deliberately independent of Waypost's ``templates_registry.rules``: the sandbox plays Meta,
so a bug in Waypost's rules shows up as a disagreement instead of being mirrored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.wire import MetaError

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_NOT_DIGIT = re.compile(r"\D")
_TO_CHARS = re.compile(r"^[+\d\s().-]+$")
_BSUID = re.compile(r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")
_FORMATTING = re.compile(r"[\n\r\t]| {5,}")
MEDIA = ("image", "video", "document")


@dataclass(frozen=True)
class SendRequest:
    to: str
    wa_id: str
    type: str
    user_id: str = ""  # the BSUID, for a send addressed with ``recipient`` (§11.1)
    template_name: str = ""
    language: str = ""
    components: tuple = ()
    text: str = ""
    biz_opaque_callback_data: str = ""


def _required(obj: dict, key: str, where: str = "") -> Any:
    value = obj.get(key)
    if value in (None, "", [], {}):
        raise MetaError(131008, f"The parameter {where}{key} is required.")
    return value


def check_envelope(body: Any) -> SendRequest:
    """§1.2 envelope: messaging_product, recipient_type, to, type, template/text."""
    if not isinstance(body, dict):
        raise MetaError(100, "The request body must be a JSON object.")
    if _required(body, "messaging_product") != "whatsapp":
        raise MetaError(131009, "messaging_product must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise MetaError(131009, "recipient_type must be 'individual'.")
    if body.get("to") in (None, "") and body.get("recipient") not in (None, ""):
        # Since May 2026 a business-scoped user id may be addressed instead (§11.1).
        user_id = body["recipient"]
        if not isinstance(user_id, str) or not _BSUID.match(user_id):
            raise MetaError(131009, "The parameter recipient is not a valid business-scoped ID.")
        to, wa_id = "", ""
    else:
        to, user_id = _required(body, "to"), ""  # `to` wins when both are given
        if not isinstance(to, str) or not _TO_CHARS.match(to):
            raise MetaError(131009, "The parameter to is not a valid phone number.")
        wa_id = _NOT_DIGIT.sub("", to)
        if not 7 <= len(wa_id) <= 15:
            raise MetaError(131009, "The parameter to is not a valid phone number.")
    opaque = body.get("biz_opaque_callback_data", "")
    if not isinstance(opaque, str) or len(opaque) > 512:
        raise MetaError(
            131009, "biz_opaque_callback_data must be a string of at most 512 characters."
        )
    mtype = _required(body, "type")
    if mtype == "text":
        text = _required(body, "text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
            raise MetaError(131008, "The parameter text.body is required.")
        return SendRequest(
            to=to,
            wa_id=wa_id,
            user_id=user_id,
            type="text",
            text=text["body"],
            biz_opaque_callback_data=opaque,
        )
    if mtype != "template":
        raise MetaError(131051, f"Message type {mtype!r} is not supported by this sandbox.")
    template = _required(body, "template")
    if not isinstance(template, dict):
        raise MetaError(131009, "The parameter template must be an object.")
    name = _required(template, "name", "template.")
    language = _required(template, "language", "template.")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        raise MetaError(131008, "The parameter template.language.code is required.")
    components = template.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise MetaError(131009, "template.components must be a list of objects.")
    return SendRequest(
        to=to,
        wa_id=wa_id,
        user_id=user_id,
        type="template",
        template_name=str(name),
        language=code,
        components=tuple(components),
        biz_opaque_callback_data=opaque,
    )


# --- template parameters ----------------------------------------------------------------------


def _spec(template: dict) -> dict[str, Any]:
    """What the approved template expects: header kind/placeholders, body placeholders, buttons."""
    by_type = {str(c.get("type", "")).upper(): c for c in template.get("components", [])}
    header = by_type.get("HEADER")
    header_format = str(header.get("format", "TEXT")).lower() if header else None
    header_text = (header or {}).get("text", "") if header_format == "text" else ""
    body_text = by_type.get("BODY", {}).get("text", "")
    if not body_text and str(template.get("category", "")).upper() == "AUTHENTICATION":
        # Meta writes an authentication template's body itself ("{{1}} is your verification
        # code.", add_security_recommendation and code_expiration_minutes aside): the code is
        # its one parameter, sent as the body's and the button's.
        body_text = "{{1}} is your verification code."
    buttons = []
    for button in (by_type.get("BUTTONS") or {}).get("buttons", []):
        btype = str(button.get("type", "")).upper()
        has_var = bool(_PLACEHOLDER.search(button.get("url", ""))) or btype == "OTP"
        buttons.append((btype, has_var))
    offer = by_type.get("LIMITED_TIME_OFFER")
    return {
        # A limited-time offer with a countdown needs its end at send time.
        "offer_expires": bool(
            offer and (offer.get("limited_time_offer") or {}).get("has_expiration")
        ),
        "cards": len((by_type.get("CAROUSEL") or {}).get("cards") or []),
        "header_format": header_format,
        "header_text": header_text,
        "header_vars": list(dict.fromkeys(_PLACEHOLDER.findall(header_text))),
        "body_text": body_text,
        "body_vars": list(dict.fromkeys(_PLACEHOLDER.findall(body_text))),
        "buttons": buttons,
        "named": str(template.get("parameter_format", "POSITIONAL")).upper() == "NAMED",
    }


def _value(param: dict, allowed: tuple[str, ...]) -> str:
    ptype = param.get("type")
    if ptype not in allowed:
        raise MetaError(132012, f"Parameter type {ptype!r} does not match the template.")
    if ptype == "text":
        text = param.get("text")
        if not isinstance(text, str) or text == "":
            raise MetaError(131008, "The parameter text is required.")
        if _FORMATTING.search(text):
            raise MetaError(132018)
        return text
    holder = param.get(ptype)
    if not isinstance(holder, dict) or not isinstance(holder.get("fallback_value"), str):
        raise MetaError(131009, f"{ptype}.fallback_value is required.")
    if ptype == "currency" and (
        not re.fullmatch(r"[A-Z]{3}", str(holder.get("code", "")))
        or not isinstance(holder.get("amount_1000"), int)
    ):
        raise MetaError(131009, "currency needs an ISO 4217 code and an integer amount_1000.")
    return holder["fallback_value"]


def _fill(
    name: str,
    expected: list[str],
    params: list,
    named: bool,
    allowed: tuple[str, ...],
    text: str,
    limit: int,
) -> None:
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise MetaError(131009, f"{name} parameters must be a list of objects.")
    values: dict[str, str] = {}
    if named:
        for param in params:
            pname = param.get("parameter_name")
            if not pname:
                raise MetaError(131008, "The parameter parameter_name is required.")
            values[pname] = _value(param, allowed)
        if set(values) != set(expected) or len(values) != len(params):
            raise MetaError(
                132000, f"{name}: expected parameters {sorted(expected)}, got {sorted(values)}."
            )
    else:
        if len(params) != len(expected):
            raise MetaError(
                132000, f"{name}: expected {len(expected)} parameter(s), got {len(params)}."
            )
        values = {var: _value(p, allowed) for var, p in zip(expected, params, strict=True)}
    rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)
    if len(rendered) > limit:
        raise MetaError(132005, f"{name} is {len(rendered)} characters after substitution.")


def check_template_parameters(template: dict, components: tuple) -> None:
    """Raise the MetaError Meta would answer for these send-time components, if any."""
    spec = _spec(template)
    by_type: dict[str, dict] = {}
    button_params: dict[int, dict] = {}
    for component in components:
        ctype = component.get("type")
        if ctype == "button":
            try:
                index = int(component.get("index"))
            except (TypeError, ValueError):
                raise MetaError(131009, "button index must be 0-9.") from None
            button_params[index] = component
        elif ctype in ("header", "body", "limited_time_offer", "carousel"):
            by_type[ctype] = component
        else:
            raise MetaError(131009, f"Unknown component type {ctype!r}.")
    if spec["offer_expires"]:
        offer = (by_type.get("limited_time_offer", {}).get("parameters") or [{}])[0]
        expires = (offer.get("limited_time_offer") or {}).get("expiration_time_ms")
        if not isinstance(expires, int):
            raise MetaError(
                131008, "The parameter limited_time_offer.expiration_time_ms is required."
            )
    if spec["cards"] and len(by_type.get("carousel", {}).get("cards") or []) != spec["cards"]:
        # Meta's answer when the number of cards differs from the approved one.
        raise MetaError(132012, "header component parameter should not be empty")

    header_params = by_type.get("header", {}).get("parameters", [])
    if spec["header_format"] in MEDIA or spec["header_format"] == "location":
        fmt = spec["header_format"]
        if len(header_params) != 1:
            raise MetaError(132000, f"The {fmt} header needs 1 parameter.")
        param = header_params[0]
        if param.get("type") != fmt:
            raise MetaError(132012, f"The header parameter must be of type {fmt}.")
        media = param.get(fmt)
        if fmt != "location" and not (
            isinstance(media, dict) and (media.get("id") or media.get("link"))
        ):
            raise MetaError(131009, f"{fmt} needs an id or a link.")
    else:
        _fill(
            "header",
            spec["header_vars"],
            header_params,
            spec["named"],
            ("text",),
            spec["header_text"],
            60,
        )
    _fill(
        "body",
        spec["body_vars"],
        by_type.get("body", {}).get("parameters", []),
        spec["named"],
        ("text", "currency", "date_time"),
        spec["body_text"],
        1024,
    )

    for index in button_params:
        if not 0 <= index < len(spec["buttons"]):
            raise MetaError(131009, f"The template has no button {index}.")
    for index, (btype, has_var) in enumerate(spec["buttons"]):
        params = button_params.get(index, {}).get("parameters", [])
        url_param_ok = (
            len(params) == 1 and isinstance(params[0].get("text"), str) and bool(params[0]["text"])
        )
        if has_var and btype in ("URL", "OTP") and not url_param_ok:
            raise MetaError(131008, f"Button {index} needs its URL parameter.")
        if (
            btype == "COPY_CODE"
            and index in button_params
            and not (params and isinstance(params[0].get("coupon_code"), str))
        ):
            raise MetaError(131008, f"Button {index} needs its coupon_code.")
