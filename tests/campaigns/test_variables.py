"""A row's columns → the template's send-time components: what each column convention builds,
and that it passes the same send rules a single message does (``check_send``)."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.variables import (
    ColumnError,
    InvalidColumn,
    MissingVariable,
    Row,
    columns_for,
    components_from_variables,
    split_row,
)
from templates_registry.rules import check_components, check_send

from ..templates_registry.builders import (
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
    url_button,
)

POSITIONAL = [
    header("Order {{1}}"),
    body("Hi {{1}}, your order {{2}} has shipped."),
    footer(),
    buttons(quick_reply(), url_button(), copy_code()),
]
NAMED = [body("Hi {{first_name}}, use {{code}} today.")]
NAMED_HEADER = [header("For {{first_name}}"), body("Hi {{first_name}}, use {{code}} today.")]
IMAGE = [media_header("IMAGE"), body("Your receipt is attached, {{1}}.")]
DOCUMENT = [media_header("DOCUMENT"), body("Your invoice is attached, thanks.")]
LOCATION = [media_header("LOCATION"), body("Find us here, thanks.")]
AUTH = [{"type": "BODY", "add_security_recommendation": True}, buttons(otp("COPY_CODE"))]
OFFER = [lto(), body("Get {{1}} off today!"), buttons(copy_code(), url_button())]
CAROUSEL = [
    body("Hi {{1}}, these match your taste:"),
    carousel(*[card("IMAGE", "Only {{1}}", quick_reply()) for _ in range(2)]),
]


def build(components, variables, *, fmt="POSITIONAL", category="MARKETING"):
    """The components a row builds, checked by the send rules as a single message's are."""
    assert check_components(components, category=category, parameter_format=fmt) == []
    sent = components_from_variables(
        template_components=components,
        parameter_format=fmt,
        category=category,
        variables=variables,
    )
    check = check_send(
        template_components=components,
        send_components=sent,
        parameter_format=fmt,
        category=category,
    )
    assert check.violations == [], check.violations
    return sent


def columns(components, *, fmt="POSITIONAL", category="MARKETING", optional=False):
    return columns_for(
        template_components=components,
        parameter_format=fmt,
        category=category,
        include_optional=optional,
    )


# --- what each convention builds ---------------------------------------------------------------


def test_positional_template_header_body_and_buttons():
    sent = build(
        POSITIONAL,
        {"header.1": "A-1", "1": "Ana", "2": "A-1", "button.1": "A-1", "button.2": "SAVE25"},
    )
    assert sent == [
        {"type": "header", "parameters": [{"type": "text", "text": "A-1"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-1"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "A-1"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE25"}],
        },
    ]
    assert columns(POSITIONAL) == ["header.1", "1", "2", "button.1", "button.2"]
    assert columns(POSITIONAL, optional=True) == [
        "header.1",
        "1",
        "2",
        "button.0",
        "button.1",
        "button.2",
    ]


def test_a_quick_reply_payload_is_sent_when_given():
    sent = build(
        POSITIONAL,
        {
            "header.1": "A-1",
            "1": "Ana",
            "2": "A-1",
            "button.0": "stop-promos",
            "button.1": "A-1",
            "button.2": "SAVE25",
        },
    )
    assert {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": "stop-promos"}],
    } in sent


def test_positional_values_go_in_number_order_whatever_order_the_text_uses():
    reversed_order = [body("Order {{2}} is ready for {{1}}.")]
    sent = build(reversed_order, {"2": "A-1", "1": "Ana"}, category="UTILITY")
    assert sent[0]["parameters"] == [
        {"type": "text", "text": "Ana"},
        {"type": "text", "text": "A-1"},
    ]


def test_named_template_body_and_header():
    sent = build(NAMED, {"first_name": "Ana", "code": "SAVE25"}, fmt="NAMED")
    assert sent == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ana", "parameter_name": "first_name"},
                {"type": "text", "text": "SAVE25", "parameter_name": "code"},
            ],
        }
    ]
    sent = build(
        NAMED_HEADER,
        {"header.first_name": "Ana", "first_name": "Ana", "code": "X"},
        fmt="NAMED",
    )
    assert sent[0] == {
        "type": "header",
        "parameters": [{"type": "text", "text": "Ana", "parameter_name": "first_name"}],
    }
    assert columns(NAMED_HEADER, fmt="NAMED") == ["header.first_name", "first_name", "code"]


def test_body_dot_name_spells_a_placeholder_out_and_wins_over_the_short_name():
    sent = build(
        NAMED, {"body.first_name": "Ana", "first_name": "ignored", "code": "X"}, fmt="NAMED"
    )
    assert sent[0]["parameters"][0]["text"] == "Ana"
    sent = build(POSITIONAL[1:2], {"body.1": "Ana", "body.2": "A-1"})
    assert [p["text"] for p in sent[0]["parameters"]] == ["Ana", "A-1"]


def test_image_header_from_a_link():
    sent = build(IMAGE, {"header.image": "https://cdn.example.com/r.png", "1": "Ana"})
    assert sent[0] == {
        "type": "header",
        "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/r.png"}}],
    }
    assert columns(IMAGE) == ["header.image", "1"]


def test_image_header_from_a_waypost_media_id():
    """``media:<id>`` names a file uploaded to Waypost: sent as ``media_id`` for the send path
    to replace with the provider's id — which the send rules then accept like any id."""
    media = uuid.uuid4()
    sent = components_from_variables(
        template_components=IMAGE,
        parameter_format="POSITIONAL",
        category="MARKETING",
        variables={"header.image": f"media:{str(media).upper()}", "1": "Ana"},
    )
    assert sent[0] == {
        "type": "header",
        "parameters": [{"type": "image", "image": {"media_id": str(media)}}],
    }
    sent[0]["parameters"][0]["image"] = {"id": "1339522734477770"}
    assert check_send(template_components=IMAGE, send_components=sent).violations == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("cdn.example.com/r.png", "http\\(s\\) URL or media:<Waypost media id>"),
        ("media:42", "must be followed by a Waypost media id"),
        ("ftp://example.com/r.png", "http\\(s\\) URL"),
    ],
)
def test_a_media_header_that_is_neither_a_link_nor_a_media_id_names_its_column(value, words):
    with pytest.raises(InvalidColumn, match=words) as raised:
        components_from_variables(
            template_components=IMAGE,
            parameter_format="POSITIONAL",
            category="MARKETING",
            variables={"header.image": value, "1": "Ana"},
        )
    assert raised.value.column == "header.image"
    assert raised.value.code == "column_invalid"


def test_document_header_with_its_file_name():
    sent = build(
        DOCUMENT,
        {"header.document": "https://example.com/i.pdf", "header.filename": "Invoice A-1.pdf"},
        category="UTILITY",
    )
    assert sent[0]["parameters"][0]["document"] == {
        "link": "https://example.com/i.pdf",
        "filename": "Invoice A-1.pdf",
    }
    assert columns(DOCUMENT, category="UTILITY", optional=True) == [
        "header.document",
        "header.filename",
    ]


def test_location_header():
    sent = build(
        LOCATION,
        {"header.latitude": "52.52", "header.longitude": "13.405", "header.name": "Shop"},
        category="UTILITY",
    )
    assert sent[0]["parameters"][0]["location"] == {
        "latitude": 52.52,
        "longitude": 13.405,
        "name": "Shop",
    }
    with pytest.raises(InvalidColumn) as raised:
        components_from_variables(
            template_components=LOCATION,
            parameter_format="POSITIONAL",
            category="UTILITY",
            variables={"header.latitude": "95", "header.longitude": "13.4"},
        )
    assert raised.value.column == "header.latitude"


def test_authentication_code_fills_the_body_and_its_button():
    expected = [
        {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "482913"}],
        },
    ]
    for given_as in (
        {"1": "482913"},
        {"button.0": "482913"},
        {"1": "482913", "button.0": "482913"},
    ):
        assert build(AUTH, given_as, category="AUTHENTICATION") == expected
    assert columns(AUTH, category="AUTHENTICATION") == ["1"]


def test_authentication_code_given_twice_differently_is_refused():
    with pytest.raises(InvalidColumn, match="one-time code is given twice"):
        components_from_variables(
            template_components=AUTH,
            parameter_format="POSITIONAL",
            category="AUTHENTICATION",
            variables={"1": "482913", "button.0": "111111"},
        )


def test_limited_time_offer_end_as_a_date_or_milliseconds():
    row = {"1": "25 %", "button.0": "SAVE25", "button.1": "spring"}
    for value, ms in (
        ("2026-12-24T18:00:00+01:00", 1_798_131_600_000),
        ("1798131600000", 1_798_131_600_000),
    ):
        sent = build(OFFER, {**row, "offer.expiration": value})
        assert {
            "type": "limited_time_offer",
            "parameters": [
                {"type": "limited_time_offer", "limited_time_offer": {"expiration_time_ms": ms}}
            ],
        } in sent
    with pytest.raises(InvalidColumn, match="time zone") as raised:
        components_from_variables(
            template_components=OFFER,
            parameter_format="POSITIONAL",
            category="MARKETING",
            variables={**row, "offer.expiration": "2026-12-24T18:00:00"},
        )
    assert raised.value.column == "offer.expiration"
    assert columns(OFFER) == ["1", "offer.expiration", "button.0", "button.1"]


def test_carousel_cards_take_their_columns_by_card():
    row = {"1": "Ana"}
    for index in range(2):
        row |= {f"card.{index}.header.image": f"https://example.com/{index}.png"}
        row |= {f"card.{index}.1": f"${index + 9}"}
    row["card.1.button.0"] = "more-like-this"
    sent = build(CAROUSEL, row)
    cards = sent[1]["cards"]
    assert [c["card_index"] for c in cards] == [0, 1]
    assert cards[1]["components"] == [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://example.com/1.png"}}],
        },
        {"type": "body", "parameters": [{"type": "text", "text": "$10"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "more-like-this"}],
        },
    ]
    assert columns(CAROUSEL) == [
        "1",
        "card.0.header.image",
        "card.0.1",
        "card.1.header.image",
        "card.1.1",
    ]


def test_a_template_without_placeholders_needs_no_column():
    static = [body("Your parcel is on its way."), footer()]
    assert build(static, {"1": "ignored", "city": "Oslo"}, category="UTILITY") == []
    assert columns(static, category="UTILITY") == []


# --- missing and unknown -----------------------------------------------------------------------


def test_every_missing_column_is_named_at_once():
    with pytest.raises(MissingVariable) as raised:
        components_from_variables(
            template_components=POSITIONAL,
            parameter_format="POSITIONAL",
            category="MARKETING",
            variables={"1": "Ana", "2": "   ", "button.0": "x"},
        )
    error = raised.value
    assert isinstance(error, ValueError) and isinstance(error, ColumnError)
    assert error.code == "variable_missing"
    assert error.column == "header.1"
    assert error.columns == ["header.1", "2", "button.1", "button.2"]
    assert "'2' (the body's {{2}})" in str(error)
    assert "'button.2' (copy-code button 2's code)" in str(error)


def test_a_missing_named_placeholder_names_its_column():
    with pytest.raises(MissingVariable) as raised:
        components_from_variables(
            template_components=NAMED,
            parameter_format="NAMED",
            category="MARKETING",
            variables={"First_Name ": "Ana", "coupon": "not a placeholder"},
        )
    assert raised.value.columns == ["code"]


def test_unknown_columns_are_ignored():
    sent = build(NAMED, {"first_name": "Ana", "code": "X", "city": "Oslo"}, fmt="NAMED")
    assert len(sent[0]["parameters"]) == 2


def test_values_keep_what_the_send_rules_judge():
    """An inner newline is not repaired here: the send rules refuse it (or the tenant's
    sanitize policy repairs it), as for a single message."""
    sent = components_from_variables(
        template_components=NAMED,
        parameter_format="NAMED",
        category="MARKETING",
        variables={"first_name": "Ana\nMaria", "code": "X"},
    )
    check = check_send(template_components=NAMED, send_components=sent, parameter_format="NAMED")
    assert [v.code for v in check.violations] == ["param_newline"]


# --- splitting a row ---------------------------------------------------------------------------


def test_split_a_csv_row():
    row = {
        "\ufeffTo ": " +49 151 1234 5678 ",
        "1": " Ana ",
        "Body.2": "A-1",
        "header.image": "",
        "metadata.OrderId": " A-1042 ",
        "metadata.empty": "",
        None: ["an extra cell"],
    }
    assert split_row(row) == Row(
        to="+49 151 1234 5678",
        recipient="",
        variables={"1": "Ana", "body.2": "A-1"},
        metadata={"OrderId": "A-1042"},
    )


def test_split_a_json_row_with_nested_variables_and_metadata():
    row = {
        "recipient": "US.13491208655302741918",
        "variables": {"first_name": "Ana", "count": 3, "price": 9.5},
        "metadata": {"order": {"id": "A-1"}},
        "metadata.channel": "spring",
    }
    assert split_row(row) == Row(
        to="",
        recipient="US.13491208655302741918",
        variables={"first_name": "Ana", "count": "3", "price": "9.5"},
        metadata={"order": {"id": "A-1"}, "channel": "spring"},
    )


def test_split_row_reads_the_aliases():
    assert split_row({"phone": "+4915112345678", "user_id": "DE.1"})[:2] == (
        "+4915112345678",
        "DE.1",
    )
    assert split_row({"to": "+4915112345678", "phone": "+4915112345678"}).to == "+4915112345678"
    assert split_row({"metadata": '{"order": "A-1"}'}).metadata == {"order": "A-1"}


def test_split_row_keeps_inner_whitespace_for_the_send_rules():
    assert split_row({"1": "  Ana\nMaria  "}).variables == {"1": "Ana\nMaria"}


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"to": "+4915112345678", "phone": "+4915112345679"}, "phone"),
        ({"recipient": "US.1", "user_id": "US.2"}, "user_id"),
        ({"1": "Ana", "variables": {"1": "Bo"}}, "1"),
        ({"metadata.order": "A-1", "metadata": {"order": "A-2"}}, "metadata.order"),
        ({"1": ["Ana"]}, "1"),
        ({"variables": {"first_name": True}}, "variables.first_name"),
        ({"metadata": "not json"}, "metadata"),
        ({"variables": ["Ana"]}, "variables"),
        ({"metadata.": "x"}, "metadata."),
    ],
)
def test_split_row_refuses_contradictions_and_non_text(row, column):
    with pytest.raises(InvalidColumn) as raised:
        split_row(row)
    assert raised.value.column == column


# --- the pipeline as the importer runs it ------------------------------------------------------

words = st.from_regex(r"[A-Za-z0-9À-ÿ€$%#-]{1,12}( [A-Za-z0-9,.!]{1,12}){0,3}", fullmatch=True)


@given(st.lists(words, min_size=1, max_size=6), st.data())
def test_any_positional_row_that_fills_every_column_passes_the_send_rules(values, data):
    text = "Hello " + ", ".join(f"{{{{{n}}}}}" for n in range(1, len(values) + 1)) + " thanks."
    template = [body(text)]
    row = {"to": "+4915112345678"}
    for number, value in enumerate(values, start=1):
        key = data.draw(st.sampled_from([str(number), f"body.{number}", f"BODY.{number} "]))
        row[key] = data.draw(st.sampled_from(["", " ", "\t"])) + value + " "
    to, _, variables, _ = split_row(row)
    assert to == "+4915112345678"
    sent = build(template, variables, category="UTILITY")
    assert [p["text"] for p in sent[0]["parameters"]] == values


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), words, min_size=1, max_size=8
    )
)
def test_any_named_row_that_fills_every_column_passes_the_send_rules(values):
    reserved = {"to", "phone", "recipient", "user_id", "metadata", "variables"}
    text = "Hi " + " and ".join(f"{{{{{name}}}}}" for name in values) + " ok."
    row = {(f"body.{k}" if k in reserved else k): v for k, v in values.items()}
    sent = build([body(text)], split_row(row).variables, fmt="NAMED", category="UTILITY")
    assert {p["parameter_name"]: p["text"] for p in sent[0]["parameters"]} == values
