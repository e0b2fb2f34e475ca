import logging

import pytest

from core.logging import MaskPhoneNumbersFilter, mask_phone


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +4915112345678 now", "to +491*******678 now"),
        ("wa_id 16505551234", "wa_id 165*****234"),
        ("order 1234", "order 1234"),  # too short to be a phone number
        ("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"),
    ],
)
def test_mask_phone(text, masked):
    assert mask_phone(text) == masked


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
