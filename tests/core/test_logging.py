import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.logging import MaskPhoneNumbersFilter, mask_phone


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +4915112345678 now", "to +491*******678 now"),
        ("wa_id 16505551234", "wa_id 165*****234"),
        ("order 1234", "order 1234"),  # too short to be a phone number
        ("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"),
        # a UUID whose groups are all digits stays whole; a number beside it is still masked
        (
            "tenant f2d0fef4-c921-443b-bd80-859547262323 to 4915112345678",
            "tenant f2d0fef4-c921-443b-bd80-859547262323 to 491*******678",
        ),
        ("12345678-1234-1234-1234-123456789012", "12345678-1234-1234-1234-123456789012"),
        (
            "id=12345678-1234-1234-1234-123456789012-4915112345678",
            "id=12345678-1234-1234-1234-123456789012-491*******678",
        ),
    ],
)
def test_mask_phone(text, masked):
    assert mask_phone(text) == masked


@given(st.uuids(), st.sampled_from(["", "tenant ", "id="]), st.sampled_from(["", " ", ".", ","]))
def test_no_uuid_loses_a_digit(uuid, before, after):
    text = f"{before}{uuid}{after}"
    assert mask_phone(text) == text


def test_filter_masks_the_formatted_record():
    record = logging.getLogger("waypost").makeRecord(
        "waypost", logging.INFO, __file__, 1, "sending to %s", ("+4915112345678",), None
    )
    MaskPhoneNumbersFilter().filter(record)
    assert record.getMessage() == "sending to +491*******678"


def test_json_lines_carry_the_state_change_fields_masked():
    import json
    import logging

    from core.logging import JsonFormatter, MaskPhoneNumbersFilter

    record = logging.LogRecord(
        "waypost.state", logging.INFO, "", 0, "to %s", ("+4915112345678",), None
    )
    record.message_id, record.tenant, record.state = "m-1", "acme", "delivered"
    record.note = "reply from +4915112345678"
    MaskPhoneNumbersFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["message_id"], line["tenant"], line["state"]) == ("m-1", "acme", "delivered")
    assert "5112345" not in json.dumps(line) and line["level"] == "INFO"


def test_sentry_events_lose_secrets_and_phone_numbers():
    from core.sentry import before_send

    event = {
        "message": "send to +4915112345678 failed",
        "extra": {"api_key": "wp_x", "parameters": [{"text": "Ana"}], "count": 3},
        "request": {"headers": {"Authorization": "Bearer t"}, "data": {"to": "+4915112345678"}},
    }
    scrubbed = before_send(event, {})
    assert "5112345" not in str(scrubbed)
    assert scrubbed["extra"] == {"api_key": "[Filtered]", "parameters": "[Filtered]", "count": 3}
    assert scrubbed["request"]["headers"]["Authorization"] == "[Filtered]"


def test_django_logging_a_refused_route_never_shows_its_token(rf):
    """Django logs the path of every 4xx (``Forbidden: /webhooks/360dialog/<token>``): the
    token is a route's secret, cut to 4 characters by the filter every handler has."""
    from django.http import HttpResponseForbidden
    from django.utils.log import log_response

    token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_"
    request = rf.post(f"/webhooks/360dialog/{token}")
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(self.format(record))

    handler = Keep()
    handler.addFilter(MaskPhoneNumbersFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        log_response(
            "Forbidden: %s", request.path, response=HttpResponseForbidden(), request=request
        )
    finally:
        logger.removeHandler(handler)
    assert seen == ["Forbidden: /webhooks/360dialog/AbCd…"]
    assert not [line for line in seen if token in line]


def test_sentry_events_never_carry_a_route_token():
    from core.sentry import scrub

    event = {"request": {"url": "https://w.example/webhooks/360dialog/AbCdEfGhIjKlMnOp/"}}
    assert scrub(event)["request"]["url"] == "https://w.example/webhooks/360dialog/AbCd…/"
