"""Definition rules, table-driven: one case per rule, each citing docs/meta-api.md.

Each case gives a template that passes (no violation at all) and one that breaks exactly the
rule named, which must report that rule's code.
"""

import re

import pytest

from templates_registry.rules import check_definition

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
    phone_button,
    quick_reply,
    request_contact_info,
    template,
    url_button,
)

OK_BODY = body("Hi {{1}}, your order is ready.")

# (code, source in docs/meta-api.md, passing template, failing template)
CASES = [
    (
        "template_name_invalid",
        "§5.2 Template name: lowercase alphanumerics + underscores",
        template(OK_BODY, name="order_update_2"),
        template(OK_BODY, name="Order Update"),
    ),
    (
        "template_name_invalid",
        "§5.2 Template name: ≤512 chars",
        template(OK_BODY, name="a" * 512),
        template(OK_BODY, name="a" * 513),
    ),
    (
        "template_language_invalid",
        "§5.4 Language codes: en, en_US, pt_BR …",
        template(OK_BODY, language="pt_BR"),
        template(OK_BODY, language="english"),
    ),
    (
        "template_category_invalid",
        "§5.1 Categories: MARKETING, UTILITY, AUTHENTICATION",
        template(OK_BODY, category="MARKETING"),
        template(OK_BODY, category="PROMOTION"),
    ),
    (
        "template_parameter_format_invalid",
        "§1.2 Named parameters / Positional",
        template(body("Hi {{first_name}}, welcome."), parameter_format="NAMED"),
        template(OK_BODY, parameter_format="CURLY"),
    ),
    (
        "components_invalid",
        "§1.2 template components: a list",
        template(OK_BODY),
        {**template(), "components": "BODY"},
    ),
    (
        "component_type_invalid",
        "§1.2 components[].type: header | body | button(s)",
        template(OK_BODY, footer()),
        template(OK_BODY, {"type": "SIDEBAR", "text": "x"}),
    ),
    (
        "component_duplicate",
        "§5.2 Body: exactly one body",
        template(OK_BODY),
        template(OK_BODY, body("Second body here.")),
    ),
    (
        "body_missing",
        "§5.2 Body: exactly one body (only required component)",
        template(OK_BODY, footer()),
        template(footer()),
    ),
    (
        "header_format_invalid",
        "§5.2 Header: IMAGE/VIDEO/GIF (MM Lite only)/DOCUMENT/LOCATION",
        template(media_header("IMAGE"), OK_BODY),
        template(media_header("GIF"), OK_BODY),
    ),
    (
        "header_location_not_allowed",
        "§5.2 Header: LOCATION (utility/marketing only)",
        template(media_header("LOCATION"), OK_BODY, category="UTILITY"),
        template(media_header("LOCATION"), OK_BODY, category="AUTHENTICATION"),
    ),
    (
        "header_text_missing",
        "§5.2 Header (text)",
        template(header("Your order"), OK_BODY),
        template(header(""), OK_BODY),
    ),
    (
        "header_text_too_long",
        "§5.2 Header (text): ≤60 chars",
        template(header("x" * 60), OK_BODY),
        template(header("x" * 61), OK_BODY),
    ),
    (
        "header_too_many_variables",
        "§5.2 Header (text): 1 parameter max",
        template(header("Order {{1}}"), OK_BODY),
        template(header("Order {{1}} for {{2}}"), OK_BODY),
    ),
    (
        "body_text_missing",
        "§5.2 Body: the only required component",
        template(OK_BODY),
        template(body("   ")),
    ),
    (
        "body_text_too_long",
        "§5.2 Body: ≤1,024 chars",
        template(body("x" * 1024)),
        template(body("x" * 1025)),
    ),
    (
        "variable_at_edge",
        "§5.2 creation errors: 2388299 variables at start/end not allowed",
        template(body("Hi {{1}}, thanks.")),
        template(body("{{1}}, your order is ready.")),
    ),
    (
        "variable_at_edge",
        "§5.2 creation errors: 2388299 variables at start/end not allowed",
        template(body("Your order is {{1}} now.")),
        template(body("Your order is {{1}}")),
    ),
    (
        "footer_text_missing",
        "§5.2 Footer",
        template(OK_BODY, footer("Thanks")),
        template(OK_BODY, footer("")),
    ),
    (
        "footer_text_too_long",
        "§5.2 Footer: ≤60 chars",
        template(OK_BODY, footer("x" * 60)),
        template(OK_BODY, footer("x" * 61)),
    ),
    (
        "footer_variables_not_allowed",
        "§5.2 Footer: text only",
        template(OK_BODY, footer("Ref 42")),
        template(OK_BODY, footer("Ref {{1}}")),
    ),
    (
        "placeholder_malformed",
        "§1.2 Positional ({{1}}, {{2}} …) vs named",
        template(body("Hi {{1}}, ok.")),
        template(body("Hi {{first}}, ok.")),
    ),
    (
        "placeholder_malformed",
        "§5.3 Named param names: lowercase + underscores",
        template(body("Hi {{first_name}}, ok."), parameter_format="NAMED"),
        template(body("Hi {{FirstName}}, ok."), parameter_format="NAMED"),
    ),
    (
        "placeholder_sequence",
        "§1.2 Positional: values in placeholder order {{1}}, {{2}} …",
        template(body("Hi {{1}} and {{2}}, ok.")),
        template(body("Hi {{1}} and {{3}}, ok.")),
    ),
    (
        "placeholder_adjacent",
        "§4.9 rejected example: adjacent params {{1}}{{2}} → INVALID_FORMAT",
        template(body("Hi {{1}}, {{2}} ok.")),
        template(body("Hi {{1}}{{2}} ok.")),
    ),
    (
        "placeholder_name_duplicate",
        "§5.3 Named param names: unique",
        template(body("Hi {{name}}, {{city}} ok."), parameter_format="NAMED"),
        template(body("Hi {{name}}, {{name}} ok."), parameter_format="NAMED"),
    ),
    (
        "buttons_missing",
        "§5.2 Buttons: up to 10 buttons",
        template(OK_BODY, buttons(quick_reply())),
        template(OK_BODY, buttons()),
    ),
    (
        "buttons_too_many",
        "§5.2 Buttons: up to 10 buttons total; §1.2 index 0 to 9",
        template(OK_BODY, buttons(*[quick_reply(f"Q{i}") for i in range(10)])),
        template(OK_BODY, buttons(*[quick_reply(f"Q{i}") for i in range(11)])),
    ),
    (
        "button_type_invalid",
        "§1.2 sub_type: quick_reply, url, catalog, copy_code …",
        template(OK_BODY, buttons(quick_reply())),
        template(OK_BODY, buttons({"type": "CALL_ME", "text": "x"})),
    ),
    (
        "button_text_missing",
        "§5.2 Quick-reply buttons: label ≤25",
        template(OK_BODY, buttons(quick_reply("Yes"))),
        template(OK_BODY, buttons(quick_reply(""))),
    ),
    (
        "button_text_too_long",
        "§5.2 Quick-reply / URL / phone: label ≤25",
        template(OK_BODY, buttons(quick_reply("x" * 25))),
        template(OK_BODY, buttons(quick_reply("x" * 26))),
    ),
    (
        "url_buttons_too_many",
        "§5.2 URL buttons: ≤2",
        template(OK_BODY, buttons(url_button(), url_button("https://example.com/b", "Other"))),
        template(
            OK_BODY,
            buttons(
                url_button(),
                url_button("https://example.com/b", "B"),
                url_button("https://example.com/c", "C"),
            ),
        ),
    ),
    (
        "button_url_missing",
        "§5.2 URL buttons: URL",
        template(OK_BODY, buttons(url_button())),
        template(OK_BODY, buttons({"type": "URL", "text": "Go"})),
    ),
    (
        "button_url_too_long",
        "§5.2 URL buttons: URL ≤2,000 chars",
        template(OK_BODY, buttons(url_button("https://e.com/" + "x" * 1986))),
        template(OK_BODY, buttons(url_button("https://e.com/" + "x" * 1987))),
    ),
    (
        "button_url_too_many_variables",
        "§5.2 URL buttons: ≤1 variable",
        template(OK_BODY, buttons(url_button("https://e.com/{{1}}"))),
        template(OK_BODY, buttons(url_button("https://e.com/{{1}}/{{2}}"))),
    ),
    (
        "button_url_variable_not_at_end",
        "§5.2 URL buttons: variable appended at the end",
        template(OK_BODY, buttons(url_button("https://e.com/track/{{1}}"))),
        template(OK_BODY, buttons(url_button("https://e.com/{{1}}/track"))),
    ),
    (
        "phone_buttons_too_many",
        "§5.2 Phone-number button: ≤1",
        template(OK_BODY, buttons(phone_button())),
        template(OK_BODY, buttons(phone_button(), phone_button("+15550002222", "Other"))),
    ),
    (
        "button_phone_number_missing",
        "§5.2 Phone-number button: number",
        template(OK_BODY, buttons(phone_button())),
        template(OK_BODY, buttons({"type": "PHONE_NUMBER", "text": "Call"})),
    ),
    (
        "button_phone_number_too_long",
        "§5.2 Phone-number button: number ≤20 chars",
        template(OK_BODY, buttons(phone_button("+" + "1" * 19))),
        template(OK_BODY, buttons(phone_button("+" + "1" * 20))),
    ),
    (
        "copy_code_buttons_too_many",
        "§5.2 Copy-code button: ≤1",
        template(OK_BODY, buttons(copy_code())),
        template(OK_BODY, buttons(copy_code(), copy_code())),
    ),
    (
        "copy_code_example_too_long",
        "§5.2 Copy-code button: example/code ≤15 chars",
        template(OK_BODY, buttons(copy_code("x" * 15))),
        template(OK_BODY, buttons(copy_code("x" * 16))),
    ),
    (
        "quick_replies_not_grouped",
        "§5.2 Grouping: valid QR,QR,URL,PHONE; invalid QR,URL,QR",
        template(
            OK_BODY, buttons(quick_reply("A"), quick_reply("B"), url_button(), phone_button())
        ),
        template(OK_BODY, buttons(quick_reply("A"), url_button(), quick_reply("B"))),
    ),
    (
        "quick_replies_not_grouped",
        "§5.2 Grouping: valid URL,PHONE,QR,QR; invalid URL,QR,URL",
        template(
            OK_BODY, buttons(url_button(), phone_button(), quick_reply("A"), quick_reply("B"))
        ),
        template(
            OK_BODY, buttons(url_button(), quick_reply("A"), url_button("https://e.com/x", "X"))
        ),
    ),
    # Kinds of templates (Meta's template pages, 2025-2026).
    (
        "lto_not_marketing",
        "Meta: limited-time-offer-templates, Limitations: MARKETING only",
        template(lto(), OK_BODY, buttons(copy_code()), category="MARKETING"),
        template(lto(), OK_BODY, buttons(copy_code()), category="UTILITY"),
    ),
    (
        "lto_text_too_long",
        "Meta: limited-time-offer-templates, offer text (16 characters)",
        template(lto("a" * 16), OK_BODY, category="MARKETING"),
        template(lto("a" * 17), OK_BODY, category="MARKETING"),
    ),
    (
        "lto_with_footer",
        "Meta: limited-time-offer-templates, Limitations: no footer",
        template(lto(), OK_BODY, category="MARKETING"),
        template(lto(), OK_BODY, footer(), category="MARKETING"),
    ),
    (
        "carousel_not_marketing",
        "Meta: media-card-carousel-templates: marketing templates only",
        template(OK_BODY, carousel(card(), card()), category="MARKETING"),
        template(OK_BODY, carousel(card(), card()), category="UTILITY"),
    ),
    (
        "carousel_cards_count",
        "Meta: media-card-carousel-templates: up to 10 cards (at least 2)",
        template(OK_BODY, carousel(*[card() for _ in range(10)]), category="MARKETING"),
        template(OK_BODY, carousel(card()), category="MARKETING"),
    ),
    (
        "carousel_card_header_invalid",
        "Meta: media-card-carousel-templates: each card has an image or video header",
        template(OK_BODY, carousel(card("VIDEO"), card("VIDEO")), category="MARKETING"),
        template(OK_BODY, carousel(card("DOCUMENT"), card("DOCUMENT")), category="MARKETING"),
    ),
    (
        "carousel_card_body_too_long",
        "Meta: media-card-carousel-templates: card body text (160 characters)",
        template(OK_BODY, carousel(card(body_text="a" * 160), card()), category="MARKETING"),
        template(OK_BODY, carousel(card(body_text="a" * 161), card()), category="MARKETING"),
    ),
    (
        "carousel_card_buttons_too_many",
        "Meta: media-card-carousel-templates: up to two buttons per card",
        template(
            OK_BODY,
            carousel(*[card("IMAGE", "Hi", quick_reply(), url_button()) for _ in range(2)]),
            category="MARKETING",
        ),
        template(
            OK_BODY,
            carousel(*[card("IMAGE", "Hi", quick_reply(), quick_reply("Go"), url_button())] * 2),
            category="MARKETING",
        ),
    ),
    (
        "carousel_cards_differ",
        "Meta: media-card-carousel-templates: all cards have the same components",
        template(
            OK_BODY,
            carousel(card("IMAGE", "Hi", quick_reply()), card("IMAGE", "Ho", quick_reply())),
            category="MARKETING",
        ),
        template(
            OK_BODY,
            carousel(card("IMAGE", "Hi", quick_reply()), card("IMAGE", "Ho", url_button())),
            category="MARKETING",
        ),
    ),
    (
        "request_contact_info_not_allowed",
        "Meta: business-scoped-user-ids, REQUEST_CONTACT_INFO button (utility and marketing)",
        template(OK_BODY, buttons(request_contact_info()), category="UTILITY"),
        template(
            {"type": "BODY", "add_security_recommendation": True},
            buttons(request_contact_info()),
            category="AUTHENTICATION",
        ),
    ),
    (
        "otp_type_invalid",
        "Meta: authentication-templates: copy code, one-tap or zero-tap",
        template(
            {"type": "BODY", "add_security_recommendation": True},
            buttons(otp("ONE_TAP")),
            category="AUTHENTICATION",
        ),
        template(
            {"type": "BODY", "add_security_recommendation": True},
            buttons(otp("TWO_TAP")),
            category="AUTHENTICATION",
        ),
    ),
]


def _codes(definition):
    return [v.code for v in check_definition(definition)]


@pytest.mark.parametrize(
    ("code", "source", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_passes_valid_and_flags_invalid(code, source, good, bad):
    assert check_definition(good) == [], source
    assert code in _codes(bad), source


def test_every_documented_definition_code_has_a_case():
    import templates_registry.rules as rules

    table = rules.__doc__.split("Rules (send time)")[0]
    documented = set(re.findall(r"^  ([a-z_]+) —", table, re.MULTILINE))
    assert len(documented) > 15
    assert documented <= {c[0] for c in CASES}, documented - {c[0] for c in CASES}


def test_violation_names_component_and_parameter():
    [violation] = check_definition(template(body("x" * 1025)))
    assert violation.as_dict() == {
        "code": "body_text_too_long",
        "message": "The body text is 1,025 characters; the limit is 1,024.",
        "component": "body",
        "parameter": "text",
    }


def test_authentication_body_may_be_meta_supplied():
    auth = template(
        {"type": "BODY", "add_security_recommendation": True}, category="AUTHENTICATION"
    )
    assert check_definition(auth) == []


def test_lowercase_component_types_are_accepted():
    assert check_definition(template({"type": "body", "text": "Hi {{1}}, ok."})) == []
