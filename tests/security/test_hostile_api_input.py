"""The message API under hostile and odd input: every answer is a 2xx or a 4xx in the one error
shape with a machine-readable code — never a 500 — and what is taken is stored as sent.

(Nesting, NUL bytes, lone surrogates in JSON and the metadata size limit: tests/core/
test_api_input.py. The schema-driven fuzzing: test_schemathesis.py.)"""

import json

import pytest

from messaging.models import Message

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body, components

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def send(api, data, key):
    raw = json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return api.generic(
        "POST", "/api/v1/messages", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )


def assert_refused(response, *codes):
    assert 400 <= response.status_code < 500, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if codes:
        assert error["code"] in codes or {d.get("code") for d in error["details"]} & set(codes)


# Text parameters Meta takes as they are: right-to-left text and marks, zero-width joiners in
# emoji sequences, combining marks, scripts beyond the BMP.
ACCEPTED_TEXT = [
    "مرحبا بك",  # Arabic, right to left
    "\u200f\u05e9\u05dc\u05d5\u05dd\u200e",  # RLM/LRM marks around Hebrew
    "👩\u200d👩\u200d👧\u200d👦",  # a ZWJ emoji sequence
    "🇩🇪 ✅",  # regional indicators
    "e\u0301\u0301\u0301",  # combining accents
    "\U0001d518\U0001d52b\U0001d526",  # mathematical letters (outside the BMP)
    "x" * 900,  # long, within the body limit
]


@pytest.mark.parametrize("text", ACCEPTED_TEXT, ids=range(len(ACCEPTED_TEXT)))
def test_unicode_parameters_are_taken_and_stored_exactly(api, template, text):
    response = send(api, body(template, components=components(name=text)), f"u-{hash(text)}")
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert text in json.dumps(message.parameters, ensure_ascii=False)


REFUSED_TEXT = [
    "a\nb",  # newline: Meta rejects the whole send (132018)
    "a\tb",
    "a     b",  # more than four spaces
    "",
    "   ",
    "x" * 40_000,  # far over any template's limit
    "\ud800",  # a lone surrogate (not UTF-8 at all)
    "a\u0000b",
]


@pytest.mark.parametrize("text", REFUSED_TEXT, ids=range(len(REFUSED_TEXT)))
def test_parameters_meta_would_refuse_are_4xx_with_a_code(api, template, text):
    assert_refused(send(api, body(template, components=components(name=text)), "bad"))
    assert not Message.objects.exists()


PHONES_TAKEN = [
    "+4915112345678",
    "+49 151 12345678",
    "+1 (415) 555-0100",
    " +49-151-1234.5678 ",
    "+4915112345678\n",  # surrounding whitespace: DRF trims it, the number is unambiguous
]
PHONES_REFUSED = [
    "",
    "4915112345678",  # no "+": Meta would prepend the business's own country code
    "+",
    "12",
    "+999123456789",  # no such country code
    "+49151123456789012345",
    "+4915112345678; DROP TABLE",
    "٤٩١٥١١٢٣٤٥٦٧٨",  # Arabic-Indic digits
    "+49\u200b15112345678",  # zero-width space inside
    "mailto:+4915112345678",
]


@pytest.mark.parametrize("to", PHONES_TAKEN)
def test_phone_numbers_in_the_shapes_meta_accepts(api, template, to):
    response = send(api, body(template, to=to), f"p-{to}")
    assert response.status_code == 202, response.content
    assert Message.objects.get(pk=response.json()["id"]).recipient.startswith("+")


@pytest.mark.parametrize("to", PHONES_REFUSED)
def test_phone_numbers_meta_would_not_take_are_refused(api, template, to):
    assert_refused(send(api, body(template, to=to), "p"), "recipient_invalid", "invalid", "blank")


BSUIDS_TAKEN = ["US.13491208655302741918", "DE.ENT.abc123", "BR." + "a" * 128]
BSUIDS_REFUSED = [
    "us.134912",  # lower-case country
    "USA.1349",
    "US.",
    "US." + "a" * 129,
    "US.13491208655302741918.extra",
    "US.1349 1208",
    "US.ENT.",
    "13491208655302741918",
]


@pytest.mark.parametrize("user_id", BSUIDS_TAKEN)
def test_bsuids_in_meta_shapes_are_taken(api, template, user_id):
    data = body(template)
    del data["to"]
    response = send(api, {**data, "recipient": user_id}, f"b-{user_id}")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize("user_id", BSUIDS_REFUSED)
def test_malformed_bsuids_are_refused(api, template, user_id):
    data = body(template)
    del data["to"]
    assert_refused(send(api, {**data, "recipient": user_id}, "b"), "recipient_invalid")


def test_to_and_recipient_together_are_refused(api, template):
    assert_refused(
        send(api, {**body(template), "recipient": "US.1349"}, "both"), "recipient_ambiguous"
    )


@pytest.mark.parametrize(
    "field",
    [
        {"to": 4915112345678},
        {"to": ["+4915112345678"]},
        {"template": "order_update"},
        {"template": {"name": None}},
        {"metadata": [1, 2, 3]},
        {"unknown_field": {"a": 1}},
    ],
    ids=["to int", "to list", "template str", "template name null", "metadata list", "unknown"],
)
def test_wrong_types_are_4xx(api, template, field):
    response = send(api, {**body(template), **field}, "t")
    if "unknown_field" in field:  # refused by name, not ignored: a misspelling is never silent
        assert_refused(response, "unknown_field")
    else:
        assert_refused(response)


def test_a_batch_of_1001_is_refused_whole_and_1000_is_taken(api, template):
    items = [{"idempotency_key": f"k{i}", **body(template)} for i in range(1001)]
    response = api.post("/api/v1/messages/batch", {"messages": items}, format="json")
    assert_refused(response)
    assert not Message.objects.exists()
    response = api.post("/api/v1/messages/batch", {"messages": items[:1000]}, format="json")
    assert response.status_code == 200, response.content[:500]
    assert Message.objects.count() == 1000


def test_huge_metadata_and_huge_bodies_are_refused_without_storing(api, template):
    assert_refused(
        send(api, body(template, metadata={"blob": "x" * 5_000_000}), "huge"),
        "metadata_too_large",
        "payload_too_large",
        "request_too_large",
    )
    assert not Message.objects.exists()
