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
