"""``tenants.limits.parse_limit``: Meta's messaging limit in both of its forms — tier names
and numbers — and anything else as unknown, logged, never raised."""

import logging

import pytest

from tenants.limits import UNLIMITED, limit_label, parse_limit


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        ("TIER_50", 50),
        ("TIER_250", 250),
        ("TIER_1K", 1_000),  # the old per-number ladder
        ("TIER_2K", 2_000),
        ("TIER_10K", 10_000),
        ("TIER_100K", 100_000),
        ("TIER_UNLIMITED", UNLIMITED),
        ("tier_2k", 2_000),  # case does not matter
        (" TIER_10K ", 10_000),
        (2000, 2_000),  # business_capability_update's example payload
        ("2000", 2_000),
        (250.0, 250),
        (-1, UNLIMITED),
        ("-1", UNLIMITED),
        ("unlimited", UNLIMITED),
    ],
)
def test_both_of_metas_forms(value, limit):
    assert parse_limit(value) == limit


@pytest.mark.parametrize("value", ["TIER_NOT_SET", "", None])
def test_not_set_is_unknown(value, caplog):
    with caplog.at_level(logging.WARNING, logger="tenants.limits"):
        assert parse_limit(value) is None
    assert caplog.records == []  # nothing wrong: Meta has nothing to say yet


@pytest.mark.parametrize(
    "value", ["TIER_2X", "TIER_", "2,000", "lots", 0, -5, "0", 2.5, True, {"limit": 2000}, [250]]
)
def test_anything_else_is_unknown_and_logged_never_raised(value, caplog):
    with caplog.at_level(logging.WARNING, logger="tenants.limits"):
        assert parse_limit(value) is None
    assert "not understood" in caplog.text


def test_labels():
    assert [limit_label(v) for v in (2_000, UNLIMITED, None)] == ["2,000", "unlimited", "unknown"]
