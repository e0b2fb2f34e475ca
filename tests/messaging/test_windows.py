"""Send windows in the recipient's local time: the zones a recipient gets, the window's JSON,
and open / next open / closes across daylight-saving changes (Berlin and New York, 2026)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.send.windows import (
    KEY_MAX,
    InvalidWindow,
    SendWindow,
    _zone_table,
    time_zones_for,
    zones_from_key,
    zones_key,
)

BERLIN = ("Europe/Berlin",)
NEW_YORK = ("America/New_York",)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def window(start=None, end=None, days=()):
    return SendWindow.parse({"start": start, "end": end, "days": list(days)})


def offsets(zones, at):
    return {at.astimezone(ZoneInfo(z)).utcoffset() for z in zones}


def the_next_year():
    """Every 7 hours for a year from now: the reduction of a long key holds from this year on."""
    moment = datetime.now(UTC)
    for _ in range(365 * 24 // 7):
        yield moment
        moment += timedelta(hours=7)


# --- the recipient's zones ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        ("+4930123456", BERLIN),
        ("+12125550123", NEW_YORK),
        ("+16505551234", ("America/Los_Angeles",)),
        # A mobile number placed by its country only: every zone phonenumbers gives, sorted.
        (
            "+61412345678",
            (
                "Australia/Adelaide",
                "Australia/Brisbane",
                "Australia/Eucla",
                "Australia/Lord_Howe",
                "Australia/Perth",
                "Australia/Sydney",
                "Indian/Christmas",
                "Indian/Cocos",
            ),
        ),
    ],
)
def test_a_number_gets_the_zones_phonenumbers_places_it_in(number, zones):
    assert time_zones_for(recipient=number, user_id="", default="UTC") == zones


@pytest.mark.parametrize(
    "number",
    ["+80012345678", "+881612345678", "+15555550123", "not a number", "4930123456"],
)
def test_a_number_that_cannot_be_placed_gets_the_default(number):
    assert time_zones_for(recipient=number, user_id="", default="Europe/Lisbon") == (
        "Europe/Lisbon",
    )


def test_a_bsuid_without_a_known_country_gets_the_default():
    for user_id in ("ZZ.13491208655302741918", "13491208655302741918", "us.1349"):
        assert time_zones_for(recipient="", user_id=user_id, default="Asia/Tokyo") == (
            "Asia/Tokyo",
        )


def test_a_bsuid_gets_every_zone_of_its_country():
    """US: 29 zones in zone.tab, from Adak to New York; those that always share an offset are
    one, the rest are all kept — no US offset is ever lost, and the key fits its column."""
    zones = time_zones_for(recipient="", user_id="US.13491208655302741918", default="UTC")
    every_us_zone = _zone_table()["US"]
    assert len(every_us_zone) > len(zones) > 1
    assert set(zones) <= set(every_us_zone)
    assert {"America/Los_Angeles", "Pacific/Honolulu", "America/Adak"} <= set(zones)
    for moment in the_next_year():
        assert offsets(zones, moment) == offsets(every_us_zone, moment), moment
    assert len(zones_key(zones)) <= KEY_MAX
    assert time_zones_for(recipient="", user_id="DE.ENT.1181", default="UTC") == (
        "Europe/Berlin",
        "Europe/Busingen",
    )


def test_the_number_wins_over_the_bsuid_and_a_bsuid_helps_an_unplaceable_number():
    assert time_zones_for(recipient="+4930123456", user_id="US.1", default="UTC") == BERLIN
    assert time_zones_for(recipient="+80012345678", user_id="DE.1", default="UTC") == (
        "Europe/Berlin",
        "Europe/Busingen",
    )


def test_a_default_that_is_not_a_time_zone_fails_loudly():
    with pytest.raises(ValueError, match="unknown time zone"):
        time_zones_for(recipient="+4930123456", user_id="", default="Mars/Olympus")


# --- the key -----------------------------------------------------------------------------------

SHORT_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]


@given(st.sets(st.sampled_from(SHORT_ZONES), min_size=1))
def test_the_key_round_trips(zones):
    key = zones_key(zones)
    assert zones_from_key(key) == tuple(sorted(zones))
    assert len(key) <= KEY_MAX


def test_a_long_key_keeps_one_zone_of_those_that_always_agree():
    every_us_zone = _zone_table()["US"]
    assert len(",".join(every_us_zone)) > KEY_MAX
    kept = zones_from_key(zones_key(every_us_zone))
    assert len(",".join(kept)) <= KEY_MAX
    for moment in the_next_year():
        assert offsets(kept, moment) == offsets(every_us_zone, moment), moment


def test_a_key_too_long_even_reduced_is_refused():
    distinct = [f"Etc/GMT{sign}{h}" for sign in "+-" for h in range(1, 13)]  # 24 offsets
    with pytest.raises(ValueError, match="do not fit"):
        zones_key(distinct)
    with pytest.raises(ValueError):
        zones_key(["Europe/Berlin,UTC"])
    assert zones_from_key("") == ()


# --- the window's JSON -------------------------------------------------------------------------


def test_parse_reads_the_api_json_and_as_dict_writes_it_back():
    parsed = SendWindow.parse({"start": "09:00", "end": "20:00", "days": ["mon", "Tuesday", 7]})
    assert parsed == SendWindow(time(9), time(20), frozenset({1, 2, 7}))
    assert parsed.as_dict() == {"start": "09:00", "end": "20:00", "days": ["mon", "tue", "sun"]}
    assert SendWindow.parse(None) is None
    assert SendWindow.parse({}) == SendWindow.always()
    assert SendWindow.parse({"end": "24:00"}) == SendWindow.always()
    assert SendWindow.parse({"days": [1, 2, 3, 4, 5, 6, 7]}).is_always
    assert SendWindow.parse({"start": "00:00"}) == SendWindow.always()
    assert SendWindow.parse({"start": "9:05:30"}).start == time(9, 5, 30)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"start": "22:00", "end": "06:00"}, "end", "crossing midnight is not supported"),
        ({"start": "09:00", "end": "09:00"}, "end", "must come after 'start'"),
        ({"end": "00:00"}, "end", "must come after 'start'"),
        ({"start": "24:00"}, "start", 'from "00:00" to "23:59"'),
        ({"start": "9am"}, "start", 'such as "09:00"'),
        ({"end": 20}, "end", 'such as "09:00"'),
        ({"end": "20:61"}, "end", 'to "24:00"'),
        ({"days": ["funday"]}, "days", "'funday', which is not a weekday"),
        ({"days": [0]}, "days", "not a weekday"),
        ({"days": [True]}, "days", "not a weekday"),
        ({"days": "mon"}, "days", "must be a list"),
        ({"start": "09:00", "timezone": "UTC"}, "timezone", "unknown field 'timezone'"),
        (["09:00", "20:00"], "window", "expected an object"),
    ],
)
def test_parse_names_the_field_at_fault(data, field, words):
    with pytest.raises(InvalidWindow, match=words) as raised:
        SendWindow.parse(data)
    assert raised.value.field == field
    assert isinstance(raised.value, ValueError)


def test_the_constructor_refuses_what_parse_would():
    with pytest.raises(InvalidWindow, match="crossing midnight"):
        SendWindow(time(22), time(6))
    with pytest.raises(InvalidWindow, match="weekdays"):
        SendWindow(days=frozenset({8}))
    with pytest.raises(InvalidWindow, match="no time zone"):
        SendWindow(start=time(9, tzinfo=UTC))


clocks = st.times().map(lambda t: t.replace(microsecond=0))


@given(clocks, clocks, st.sets(st.integers(1, 7)))
def test_as_dict_and_the_model_fields_round_trip(a, b, days):
    start, end = sorted((a, b))
    if start == end:
        end = None
    built = SendWindow(start, end, frozenset(days))
    assert SendWindow.parse(built.as_dict()) == built
    assert SendWindow.from_fields(start=built.start, end=built.end, days=built.days_digits) == built


# --- open, next open, closes: daylight-saving changes ------------------------------------------


def test_berlin_spring_forward_a_start_in_the_skipped_hour_opens_at_the_jump():
    """29 March 2026: 02:00 CET becomes 03:00 CEST at 01:00 UTC."""
    early = window("02:30", "04:00")
    assert early.next_open(utc(2026, 3, 28, 22), BERLIN) == utc(2026, 3, 29, 1)
    assert not early.is_open(utc(2026, 3, 29, 0, 59, 59), BERLIN)
    assert early.is_open(utc(2026, 3, 29, 1), BERLIN)
    assert early.closes_at(utc(2026, 3, 29, 1), BERLIN) == utc(2026, 3, 29, 2)  # 04:00 CEST
    # The day before, 02:30 CET is 01:30 UTC; the day after, 02:30 CEST is 00:30 UTC.
    assert early.next_open(utc(2026, 3, 27, 22), BERLIN) == utc(2026, 3, 28, 1, 30)
    assert early.next_open(utc(2026, 3, 29, 3), BERLIN) == utc(2026, 3, 30, 0, 30)


def test_berlin_fall_back_office_hours_move_by_an_hour_in_utc():
    """25 October 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC."""
    hours = window("09:00", "20:00")
    assert hours.next_open(utc(2026, 10, 24, 0), BERLIN) == utc(2026, 10, 24, 7)
    assert hours.closes_at(utc(2026, 10, 24, 7), BERLIN) == utc(2026, 10, 24, 18)
    assert hours.next_open(utc(2026, 10, 24, 18), BERLIN) == utc(2026, 10, 25, 8)
    assert hours.closes_at(utc(2026, 10, 25, 8), BERLIN) == utc(2026, 10, 25, 19)


def test_new_york_spring_forward_an_end_in_the_skipped_hour_closes_at_the_jump():
    """8 March 2026: 02:00 EST becomes 03:00 EDT at 07:00 UTC."""
    night = window("01:00", "02:30")
    opens = night.next_open(utc(2026, 3, 8, 0), NEW_YORK)
    assert opens == utc(2026, 3, 8, 6)  # 01:00 EST
    assert night.closes_at(opens, NEW_YORK) == utc(2026, 3, 8, 7)  # the jump, 03:00 EDT
    assert not night.is_open(utc(2026, 3, 8, 7), NEW_YORK)


def test_new_york_fall_back_the_window_does_not_reopen_in_the_repeated_hour():
    """1 November 2026: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:00-02:00 happens twice."""
    night = window("00:30", "01:30")
    opens = night.next_open(utc(2026, 11, 1, 0), NEW_YORK)
    assert opens == utc(2026, 11, 1, 4, 30)  # 00:30 EDT
    assert night.closes_at(opens, NEW_YORK) == utc(2026, 11, 1, 5, 30)  # the first 01:30
    assert not night.is_open(utc(2026, 11, 1, 6, 10), NEW_YORK)  # 01:10 EST, again
    assert night.next_open(utc(2026, 11, 1, 5, 30), NEW_YORK) == utc(2026, 11, 2, 5, 30)
    # A start in the repeated hour opens the first time the clock reads it, and stays open.
    late = window("01:30", "03:00")
    assert late.next_open(utc(2026, 11, 1, 0), NEW_YORK) == utc(2026, 11, 1, 5, 30)
    assert late.is_open(utc(2026, 11, 1, 6, 10), NEW_YORK)
    assert late.closes_at(utc(2026, 11, 1, 6, 10), NEW_YORK) == utc(2026, 11, 1, 8)


def test_in_several_zones_it_is_open_only_where_all_are():
    """Berlin and New York, 09:00-20:00: 14:00-19:00 UTC in winter, 13:00-19:00 UTC in the
    three weeks of March when New York has moved its clocks and Berlin has not."""
    hours = window("09:00", "20:00")
    both = BERLIN + NEW_YORK
    assert hours.next_open(utc(2026, 2, 2, 0), both) == utc(2026, 2, 2, 14)
    assert hours.closes_at(utc(2026, 2, 2, 14), both) == utc(2026, 2, 2, 19)
    assert hours.next_open(utc(2026, 3, 16, 0), both) == utc(2026, 3, 16, 13)
    assert hours.closes_at(utc(2026, 3, 16, 13), both) == utc(2026, 3, 16, 19)
    assert hours.next_open(utc(2026, 4, 6, 0), both) == utc(2026, 4, 6, 13)
    assert hours.closes_at(utc(2026, 4, 6, 13), both) == utc(2026, 4, 6, 18)
    assert hours.is_open(utc(2026, 2, 2, 9), BERLIN)
    assert not hours.is_open(utc(2026, 2, 2, 9), both)


def test_zones_that_never_share_an_open_hour_never_open():
    """Kiritimati (UTC+14) and Pago Pago (UTC-11) read the same hour a day apart: a one-hour
    window is open in one while it is closed in the other."""
    hour = window("09:00", "10:00")
    apart = ("Pacific/Kiritimati", "Pacific/Pago_Pago")
    assert hour.next_open(utc(2026, 5, 1), apart) is None
    assert not hour.is_open(utc(2026, 5, 1, 20, 30), apart)
    assert hour.is_open(utc(2026, 5, 1, 20, 30), ("Pacific/Pago_Pago",))


def test_days_are_the_recipient_s_local_weekdays():
    """Monday 07:00 in Auckland is Sunday 19:00 UTC."""
    weekdays = window("07:00", "18:00", ["mon", "tue", "wed", "thu", "fri"])
    auckland = ("Pacific/Auckland",)
    assert weekdays.next_open(utc(2026, 7, 4, 0), auckland) == utc(2026, 7, 5, 19)
    no_sundays = window(days=[1, 2, 3, 4, 5, 6])
    assert no_sundays.next_open(utc(2026, 7, 5, 12), BERLIN) == utc(2026, 7, 5, 22)


def test_whole_days_are_one_opening_and_always_never_closes():
    monday_tuesday = window(days=["mon", "tue"])
    assert monday_tuesday.closes_at(utc(2026, 7, 6, 12), ("UTC",)) == utc(2026, 7, 8)
    assert SendWindow.always().closes_at(utc(2026, 7, 6, 12), BERLIN) is None
    assert SendWindow.always().next_open(utc(2026, 7, 6, 12), BERLIN) == utc(2026, 7, 6, 12)
    closed = utc(2026, 7, 9, 12)
    assert monday_tuesday.closes_at(closed, ("UTC",)) == closed


def test_questions_need_an_aware_time_and_a_zone():
    with pytest.raises(ValueError, match="aware"):
        SendWindow.always().is_open(datetime(2026, 1, 1), BERLIN)
    with pytest.raises(ValueError, match="at least one time zone"):
        window("09:00", "20:00").next_open(utc(2026, 1, 1), ())


# --- properties --------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a half-hour daylight-saving change
    "Pacific/Chatham",  # UTC+12:45 / +13:45
    "America/Santiago",  # changes at midnight
    "Pacific/Kiritimati",
]
windows = st.builds(
    lambda a, b, days: SendWindow(*sorted((a, b)), frozenset(days)) if a != b else SendWindow(),
    st.times(),
    st.times(),
    st.sets(st.integers(1, 7)),
)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
zone_sets = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True)
second = timedelta(seconds=1)


def between(start, end, fraction):
    """An instant in [start, end): the fraction of the way, rounded down to the microsecond."""
    length = (end - start) // timedelta(microseconds=1)
    return start + timedelta(microseconds=min(int(length * fraction), length - 1))


@settings(max_examples=150, deadline=None)
@given(windows, instants, zone_sets, st.floats(0, 1, exclude_max=True))
def test_next_open_is_the_first_open_instant(win, at, zones, fraction):
    opens = win.next_open(at, zones)
    if opens is None:
        assert not win.is_open(at, zones)
        return
    assert at <= opens <= at + timedelta(days=8)
    assert win.is_open(opens, zones)
    if opens > at:
        assert not win.is_open(opens - second, zones) or opens - second < at
        assert not win.is_open(between(at, opens, fraction), zones)


@settings(max_examples=150, deadline=None)
@given(windows, instants, zone_sets, st.floats(0, 1, exclude_max=True))
def test_closes_at_is_the_first_closed_instant(win, at, zones, fraction):
    opens = win.next_open(at, zones)
    if opens is None or win.is_always:
        return
    closes = win.closes_at(opens, zones)
    assert closes > opens
    assert win.is_open(closes - second, zones) or closes - second < opens
    assert not win.is_open(closes, zones)
    assert win.is_open(between(opens, closes, fraction), zones)


@settings(max_examples=200, deadline=None)
@given(windows, instants, st.sampled_from(ZONES))
def test_away_from_clock_changes_open_is_the_local_clock_between_start_and_end(win, at, zone):
    tz = ZoneInfo(zone)
    if {at.astimezone(tz).utcoffset(), (at + timedelta(hours=3)).astimezone(tz).utcoffset()} != {
        (at - timedelta(hours=3)).astimezone(tz).utcoffset()
    }:
        return  # a change within three hours: the DST tests above say what happens
    local = at.astimezone(tz)
    expected = (not win.days or local.isoweekday() in win.days) and (
        (win.start or time(0)) <= local.time().replace(tzinfo=None)
        and (win.end is None or local.time() < win.end)
    )
    assert win.is_open(at, (zone,)) == expected
