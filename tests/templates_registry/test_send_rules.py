"""Send-time parameter rules, table-driven: one case per rule, each citing
docs/meta-api.md (and the Meta error the rule keeps us from meeting)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates_registry.rules import check_send, formatting_violations, sanitize_text

from .builders import (
    body,
    buttons,
    card,
    carousel,
    copy_code,
    footer,
    header,
    lto,
    media_header,
    otp,
    quick_reply,
    send_body,
    send_button,
    send_card,
    send_carousel,
    send_header,
    send_offer,
    text,
    url_button,
)

# Positional: header {{1}}; body {{1}}, {{2}}; buttons QR(0), URL with variable(1), COPY_CODE(2).
POSITIONAL = [
    header("Order {{1}}"),
    body("Hi {{1}}, your order {{2}} has shipped."),
    footer(),
    buttons(quick_reply(), url_button(), copy_code()),
]
NAMED = [body("Hi {{first_name}}, use {{code}} today.")]
IMAGE = [media_header("IMAGE"), body("Your receipt is attached, thanks.")]
DOCUMENT = [media_header("DOCUMENT"), body("Your invoice is attached, thanks.")]
OFFER = [lto(), body("Get {{1}} off today!"), buttons(copy_code(), url_button())]
CAROUSEL = [
    body("Hi {{1}}, these match your taste:"),
    carousel(*[card("IMAGE", "Only {{1}}", quick_reply()) for _ in range(3)]),
]
AUTH = [{"type": "BODY", "add_security_recommendation": True}, buttons(otp("COPY_CODE"))]


def offer(*extra):
    return [
        send_body(text("25 %")),
        send_button(0, "copy_code", {"type": "coupon_code", "coupon_code": "SAVE25"}),
        send_button(1, "url", text("spring")),
        *extra,
    ]


def cards(count=3, media=None):
    return [
        send_body(text("Ana")),
        send_carousel(*[send_card(i, "$9", media) for i in range(count)]),
    ]


def code(value="123456"):
    return [send_body(text(value)), send_button(0, "url", text(value))]


LOCATION = [media_header("LOCATION"), body("Find us here, thanks.")]


def pos(header_value="A-1", body_values=("Ana", "A-1"), suffix="A-1", extra=()):
    return [
        send_header(text(header_value)),
        send_body(*[text(v) for v in body_values]),
        send_button(1, "url", text(suffix)),
        send_button(2, "copy_code", {"type": "coupon_code", "coupon_code": "SAVE25"}),
        *extra,
    ]


def named(**values):
    values = values or {"first_name": "Ana", "code": "SAVE25"}
    return [send_body(*[text(v, name=k) for k, v in values.items()])]


def image(param):
    return [send_header(param)]


def body_param(param):
    return [p if p["type"] != "body" else send_body(param, text("A-1")) for p in pos()]


# (code, source, template components, parameter_format, good components, bad components)
CASES = [
    (
        "components_invalid",
        "§1.2 template.components: a list",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        "header",
    ),
    (
        "component_type_invalid",
        "§1.2 components[].type: header | body | button",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(extra=[{"type": "footer", "parameters": []}]),
    ),
    (
        "component_duplicate",
        "§1.2 one header/body component; one entry per button index",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(extra=[send_body(text("a"), text("b"))]),
    ),
    (
        "param_count",
        "§2 132000 template param count mismatch",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(body_values=("Ana",)),
    ),
    (
        "param_count",
        "§2 132000 (media header needs its one parameter)",
        IMAGE,
        "POSITIONAL",
        image({"type": "image", "image": {"id": "123"}}),
        [],
    ),
    (
        "param_missing",
        "§2 131008 required parameter missing (named)",
        NAMED,
        "NAMED",
        named(),
        named(first_name="Ana"),
    ),
    (
        "param_name_unknown",
        "§1.2 named parameters: parameter_name per value",
        NAMED,
        "NAMED",
        named(),
        named(first_name="Ana", code="X", city="Oslo"),
    ),
    (
        "param_name_required",
        "§1.2 named: {type, parameter_name, text}",
        NAMED,
        "NAMED",
        named(),
        [send_body(text("Ana"), text("X", name="code"))],
    ),
    (
        "param_name_duplicate",
        "§1.2 named: values in any order, each once",
        NAMED,
        "NAMED",
        named(),
        [
            send_body(
                text("Ana", name="first_name"),
                text("Bo", name="first_name"),
                text("X", name="code"),
            )
        ],
    ),
    (
        "param_type_invalid",
        "§2 132012 parameter format mismatch (body takes text/currency/date)",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        body_param({"type": "image", "image": {"id": "1"}}),
    ),
    (
        "param_type_invalid",
        "§2 132012 media header parameter type matches the header format",
        IMAGE,
        "POSITIONAL",
        image({"type": "image", "image": {"id": "123"}}),
        image({"type": "video", "video": {"id": "123"}}),
    ),
    (
        "param_value_invalid",
        "§1.2 currency {fallback_value, code, amount_1000}; §2 131009",
        POSITIONAL,
        "POSITIONAL",
        body_param(
            {
                "type": "currency",
                "currency": {"fallback_value": "$10", "code": "USD", "amount_1000": 10000},
            }
        ),
        body_param(
            {
                "type": "currency",
                "currency": {"fallback_value": "$10", "code": "usd", "amount_1000": 10000},
            }
        ),
    ),
    (
        "param_value_invalid",
        "§1.2 date_time {fallback_value}; §2 131009",
        POSITIONAL,
        "POSITIONAL",
        body_param({"type": "date_time", "date_time": {"fallback_value": "May 1, 2026"}}),
        body_param({"type": "date_time", "date_time": {}}),
    ),
    (
        "param_value_invalid",
        "§1.2 media parameters take {id} or {link}",
        IMAGE,
        "POSITIONAL",
        image({"type": "image", "image": {"link": "https://e.com/a.png"}}),
        image({"type": "image", "image": {"id": "1", "link": "https://e.com/a.png"}}),
    ),
    (
        "param_value_invalid",
        "Waypost: a media_id names a file uploaded with POST /api/v1/media, alone",
        IMAGE,
        "POSITIONAL",
        image({"type": "image", "image": {"media_id": "5b0c2f6e-8d7a-4c1e-9f3b-2a6d8e4c1b7a"}}),
        image({"type": "image", "image": {"media_id": "5b0c2f6e", "id": "123"}}),
    ),
    (
        "param_value_invalid",
        "§1.2 media link is http(s)",
        IMAGE,
        "POSITIONAL",
        image({"type": "image", "image": {"link": "http://e.com/a.png"}}),
        image({"type": "image", "image": {"link": "ftp://e.com/a.png"}}),
    ),
    (
        "param_value_invalid",
        "§1.2 location header {latitude, longitude, name, address}",
        LOCATION,
        "POSITIONAL",
        image({"type": "location", "location": {"latitude": "52.5", "longitude": 13.4}}),
        image({"type": "location", "location": {"latitude": "north"}}),
    ),
    (
        "param_value_invalid",
        "§1.2 quick_reply button parameter: payload",
        POSITIONAL,
        "POSITIONAL",
        pos(extra=[send_button(0, "quick_reply", {"type": "payload", "payload": "STOP"})]),
        pos(extra=[send_button(0, "quick_reply", {"type": "payload", "payload": ""})]),
    ),
    (
        "param_empty",
        "§5.3 empty params are rejected (#100)",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(body_values=("Ana", "  ")),
    ),
    (
        "param_newline",
        "§5.3 param text cannot have new-line/tab characters",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(body_values=("Ana", "line\nbreak")),
    ),
    (
        "param_newline",
        "§5.3 param text cannot have new-line/tab characters",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(body_values=("Ana", "tab\there")),
    ),
    (
        "param_spaces",
        "§5.3 no more than 4 consecutive spaces",
        POSITIONAL,
        "POSITIONAL",
        pos(body_values=("Ana", "a    b")),
        pos(body_values=("Ana", "a     b")),
    ),
    (
        "header_too_long",
        "§2 132005 hydrated text too long; §5.2 header ≤60",
        POSITIONAL,
        "POSITIONAL",
        pos(header_value="x" * 54),
        pos(header_value="x" * 55),
    ),
    (
        "body_too_long",
        "§2 132005 hydrated text too long; §5.2 body ≤1,024",
        POSITIONAL,
        "POSITIONAL",
        pos(body_values=("Ana", "x" * 990)),
        pos(body_values=("Ana", "x" * 1000)),
    ),
    (
        "button_index_invalid",
        "§1.2 index: up to 10 buttons, 0 to 9, naming a template button",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        pos(extra=[send_button(7, "quick_reply", {"type": "payload", "payload": "x"})]),
    ),
    (
        "button_sub_type_mismatch",
        "§1.2 sub_type required when type=button",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        [c if c.get("index") != "1" else send_button(1, "quick_reply", text("x")) for c in pos()],
    ),
    (
        "button_param_count",
        "§1.2 url button: one text suffix; copy_code: coupon_code",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        [c if c.get("index") != "2" else send_button(2, "copy_code") for c in pos()],
    ),
    (
        "param_missing",
        "§5.2 URL buttons: ≤1 variable, appended at the end (must be sent)",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        [c for c in pos() if c.get("index") != "1"],
    ),
    (
        "button_url_suffix_invalid",
        "§5.2 URL variable appended to the URL",
        POSITIONAL,
        "POSITIONAL",
        pos(suffix="ABC-1"),
        pos(suffix="ABC 1"),
    ),
    (
        "button_url_suffix_invalid",
        "§5.2 URL ≤2,000 chars after the suffix",
        POSITIONAL,
        "POSITIONAL",
        pos(suffix="x" * 1974),
        pos(suffix="x" * 1975),
    ),
    (
        "coupon_code_too_long",
        "§5.2 Copy-code button: code ≤15 chars",
        POSITIONAL,
        "POSITIONAL",
        pos(),
        [
            c
            if c.get("index") != "2"
            else send_button(2, "copy_code", {"type": "coupon_code", "coupon_code": "x" * 16})
            for c in pos()
        ],
    ),
    # Kinds of templates (Meta's template pages, 2025-2026).
    (
        "media_filename_invalid",
        "Meta: messages, media object: a document's filename",
        DOCUMENT,
        "POSITIONAL",
        image({"type": "document", "document": {"id": "1", "filename": "invoice.pdf"}}),
        image({"type": "document", "document": {"id": "1", "filename": ""}}),
    ),
    (
        "lto_expiration_invalid",
        "Meta: limited-time-offer-templates, sending: expiration_time_ms",
        OFFER,
        "POSITIONAL",
        offer(send_offer()),
        offer(send_offer(expiration_time_ms="tomorrow")),
    ),
    (
        "carousel_cards_count",
        "Meta: media-card-carousel-templates: as many cards as approved (132012)",
        CAROUSEL,
        "POSITIONAL",
        cards(3),
        cards(2),
    ),
    (
        "carousel_card_index_invalid",
        "Meta: media-card-carousel-templates: card_index 0 to n-1",
        CAROUSEL,
        "POSITIONAL",
        cards(3),
        [send_body(text("Ana")), send_carousel(send_card(0), send_card(0), send_card(2))],
    ),
    (
        "otp_code_too_long",
        "Meta: authentication-templates: the code is at most 15 characters",
        AUTH,
        "POSITIONAL/AUTHENTICATION",
        code("1" * 15),
        code("1" * 16),
    ),
]


def _check(components, fmt, sent, policy="reject"):
    fmt, _, category = fmt.partition("/")  # "POSITIONAL/AUTHENTICATION": with a category
    return check_send(
        template_components=components,
        send_components=sent,
        parameter_format=fmt,
        category=category,
        policy=policy,
    )


@pytest.mark.parametrize(
    ("code", "source", "components", "fmt", "good", "bad"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_passes_valid_and_flags_invalid(code, source, components, fmt, good, bad):
    assert _check(components, fmt, good).violations == [], source
    assert code in [v.code for v in _check(components, fmt, bad).violations], source


def test_every_documented_send_code_has_a_case():
    import templates_registry.rules as rules

    table = rules.__doc__.split("Rules (send time)")[1]
    documented = set(re.findall(r"^  ([a-z_]+) —", table, re.MULTILINE))
    assert len(documented) > 15
    assert documented <= {c[0] for c in CASES}, documented - {c[0] for c in CASES}


def test_violation_names_the_parameter():
    [violation] = _check(POSITIONAL, "POSITIONAL", pos(body_values=("Ana", "a\nb"))).violations
    assert (violation.code, violation.component, violation.parameter) == (
        "param_newline",
        "body",
        "2",
    )


def test_sanitize_policy_repairs_formatting_and_records_it():
    sent = pos(body_values=("Ana\t Maria", "A-1     B"))
    result = _check(POSITIONAL, "POSITIONAL", sent, policy="sanitize")
    assert result.violations == []
    assert result.components[1]["parameters"][0]["text"] == "Ana Maria"
    assert result.components[1]["parameters"][1]["text"] == "A-1 B"
    assert [(s["parameter"], s["rules"]) for s in result.sanitized] == [
        ("1", ["param_newline"]),
        ("2", ["param_spaces"]),
    ]
    assert sent[1]["parameters"][0]["text"] == "Ana\t Maria", "input left untouched"


def test_sanitize_policy_still_rejects_everything_else():
    sent = pos(body_values=("Ana\nMaria",))
    codes = [v.code for v in _check(POSITIONAL, "POSITIONAL", sent, policy="sanitize").violations]
    assert codes == ["param_count"]


def test_valid_parameters_are_not_touched_by_sanitize():
    sent = pos(body_values=("Ana", "a    b"))
    result = _check(POSITIONAL, "POSITIONAL", sent, policy="sanitize")
    assert result.sanitized == [] and result.components == sent


@given(st.text(alphabet=st.sampled_from(["a", " ", "\n", "\t", "\r", "é"]), max_size=40))
def test_sanitized_text_never_breaks_the_formatting_rules(value):
    fixed = sanitize_text(value)
    assert formatting_violations(fixed) == []
    assert sanitize_text(fixed) == fixed


def test_a_template_whose_text_is_not_text_is_checked_without_a_crash():
    """A stored or synced template is not trusted to hold strings (found by tests/security's
    fuzzing): its placeholders are none, and the send is checked against that."""
    result = check_send(
        template_components=[{"type": "BODY", "text": [None]}],
        send_components=[],
        parameter_format="POSITIONAL",
        policy="reject",
    )
    assert result.violations == []
