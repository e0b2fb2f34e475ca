"""Send windows in the recipient's local time (pure: no database, no clock of its own).

A message — a single one with ``send_window``, or a campaign's — may say *when* it may leave,
in the recipient's local time: not before 09:00, not after 20:00, no Sundays. This module
answers three questions for the intake, the drain's claim and the campaign feeder — is the
window open now, when does it next open, when does it close — for a recipient who may live in
several time zones.

The recipient's time zones (``time_zones_for``)
-----------------------------------------------
* A phone number: the zones phonenumbers' geocoding data gives it (``time_zones_for_number``,
  sorted, without duplicates). A number it places by area code has one (``+1 212…`` →
  ``America/New_York``); a mobile number is often placed by country only and gets all of them
  (``+61 4…`` → eight Australian zones).
* A number it cannot place (``Etc/Unknown``: ``+800`` freephone, a satellite number) and a
  user known only by a BSUID: the tenant's default zone.
* A BSUID carries its user's country (``US.1349…``, docs/meta-api.md §11.1): it gets *every*
  zone of that country (the IANA ``zone.tab``), or the tenant's default when the table is not
  installed or the country's zones do not fit in the row's column (see ``zones_key``).

The window must be open in **every** zone of a recipient: the conservative reading, so that a
message to a number placed only by its country never arrives at night in part of it. Zones whose
window could never meet (``Pacific/Kiritimati`` and ``Pacific/Pago_Pago``, 25 hours apart, with a
one-hour window) leave the recipient unreachable: ``next_open`` says ``None``.

What "open" means across daylight-saving changes
------------------------------------------------
On each local date whose ISO weekday is in ``days`` (every date when ``days`` is empty) the
window is one interval of instants: from the first moment the local clock reads ``start`` or
later, to the first moment it reads ``end`` or later (the next midnight when ``end`` is None).

* Spring forward: a ``start`` or ``end`` in the skipped hour falls on the moment the clock jumps
  (Berlin, 29 March 2026, 02:30 → 03:00 CEST).
* Fall back: the window stays one interval. An ``end`` in the repeated hour closes it the first
  time the clock reads it, and it does not reopen when the clock reads that hour again.
* Everywhere else it is simply "the local clock reads between ``start`` and ``end``".

``start`` is inclusive, ``end`` exclusive; ``start`` must come before ``end``: a window that
crosses midnight (22:00 to 06:00) is refused, with a message saying so.

Everything takes and returns aware datetimes; results are in UTC.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import timezone as phone_timezone

# ``CampaignRow.time_zones`` holds the key: at most this many characters.
KEY_MAX = 200
# How far ``next_open`` looks: a window open on at least one weekday opens within a week.
HORIZON = timedelta(days=8)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(1, 8))
_DAY_NUMBERS = {
    **{name: number for number, name in enumerate(DAY_NAMES, start=1)},
    **{
        name: number
        for number, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), start=1
        )
    },
    **{str(number): number for number in range(1, 8)},
}

_UNKNOWN_ZONE = "Etc/Unknown"  # phonenumbers' answer for a number it cannot place
_BSUID_COUNTRY = re.compile(r"^([A-Z]{2})\.")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")
_MIDNIGHT = time(0)


class InvalidWindow(ValueError):
    """A send window that cannot be used; ``field`` is the JSON field at fault (``start``,
    ``end``, ``days``, or ``window`` for the whole object) — the API's ``field``."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- time zones --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _loadable(name: str) -> bool:
    try:
        _zone(name)
    except ValueError:
        return False
    return True


def time_zones_for(*, recipient: str, user_id: str, default: str) -> tuple[str, ...]:
    """The time zones a recipient may be in: its number's, else its BSUID country's, else
    ``(default,)`` (the tenant's zone). ``recipient`` is an E.164 number ("" when the row has
    none), ``user_id`` a BSUID ("" when none). Always a key ``zones_key`` accepts.

    Raises ValueError when ``default`` is not a time zone: a tenant setting that is wrong
    should fail loudly, not send at 03:00.
    """
    _zone(default)
    if recipient:
        zones = _number_zones(recipient)
        if zones:
            return zones
    if user_id:
        match = _BSUID_COUNTRY.match(user_id)
        zones = _country_zones(match.group(1)) if match else ()
        if zones:
            return zones
    return (default,)


def _number_zones(recipient: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(recipient, None)
    except phonenumbers.NumberParseException:
        return ()
    return _fitting(tuple(sorted(set(phone_timezone.time_zones_for_number(number)))))


@functools.lru_cache(maxsize=512)
def _fitting(zones: tuple[str, ...]) -> tuple[str, ...]:
    """``zones`` as a usable key, reduced if too long (``zones_key``); () when they cannot be
    used: unknown, not installed, or too many even reduced."""
    zones = tuple(z for z in zones if z != _UNKNOWN_ZONE)
    if not zones or not all(_loadable(z) for z in zones):
        return ()
    if len(",".join(zones)) <= KEY_MAX:
        return zones
    reduced = _reduce(zones)
    return reduced if len(",".join(reduced)) <= KEY_MAX else ()


@functools.lru_cache(maxsize=256)
def _country_zones(country: str) -> tuple[str, ...]:
    return _fitting(_zone_table().get(country, ()))


@functools.cache
def _zone_table() -> dict[str, tuple[str, ...]]:
    """ISO country → its IANA zones, from ``zone.tab``: where ``zoneinfo`` looks first (the
    system's ``TZPATH``), then the ``tzdata`` package. Empty when neither has it."""
    text = None
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    if text is None:
        try:
            text = (
                importlib.resources.files("tzdata")
                .joinpath("zoneinfo", "zone.tab")
                .read_text(encoding="utf-8")
            )
        except (ModuleNotFoundError, OSError):
            return {}
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) < 3:
            continue
        table.setdefault(fields[0], set()).add(fields[2])
    return {country: tuple(sorted(zones)) for country, zones in table.items()}


def zones_key(zones: Iterable[str]) -> str:
    """The zones as ``CampaignRow.time_zones`` stores them: sorted, comma-joined, at most
    ``KEY_MAX`` (200) characters.

    A longer list is reduced without changing any answer: zones that keep the same UTC offset
    at every instant from the start of this year to three years on (``Europe/London`` and
    ``Europe/Jersey``; the many Indiana zones and ``America/New_York``) are one for a window, so
    only the first of each such group is kept. If even that is too long, ValueError (never a
    guess: ``time_zones_for`` falls back to the tenant's zone before it gets here).
    """
    names = tuple(sorted(set(zones)))
    if not names or any(not z or "," in z for z in names):
        raise ValueError(f"not a list of time zones: {names!r}")
    key = ",".join(names)
    if len(key) <= KEY_MAX:
        return key
    key = ",".join(_reduce(names))
    if len(key) > KEY_MAX:
        raise ValueError(
            f"{len(names)} time zones do not fit in {KEY_MAX} characters, even without "
            "the ones that always share another's offset"
        )
    return key


def zones_from_key(key: str) -> tuple[str, ...]:
    """The zones ``zones_key`` stored (``()`` for an empty key)."""
    return tuple(key.split(",")) if key else ()


def _reduce(zones: Sequence[str]) -> tuple[str, ...]:
    """``zones`` without those that always share the offset of one kept (the first by name)."""
    year = datetime.now(UTC).year
    kept: dict[tuple, str] = {}
    for name in sorted(zones):
        kept.setdefault(_offsets(name, year), name)
    return tuple(sorted(kept.values()))


@functools.lru_cache(maxsize=1024)
def _offsets(name: str, year: int) -> tuple:
    """The UTC offsets of ``name`` from the start of ``year`` to three years on: the first one,
    then each change and its instant, to the second (sampled every 6 hours, then bisected)."""
    zone = _zone(name)
    step = 6 * 3600
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 3, 1, 1, tzinfo=UTC).timestamp())

    def offset(ts: int) -> timedelta | None:
        return datetime.fromtimestamp(ts, zone).utcoffset()

    current = offset(start)
    changes = []
    for ts in range(start, end, step):
        following = offset(ts + step)
        if following != current:
            low, high = ts, ts + step  # offset(low) == current, offset(high) == following
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == current:
                    low = middle
                else:
                    high = middle
            changes.append((high, following))
            current = following
    return (offset(start), tuple(changes))


# --- the window --------------------------------------------------------------------------------


def _first_instant(zone: zoneinfo.ZoneInfo, day: date, clock: time) -> datetime:
    """The first instant (UTC) at which the clock in ``zone`` reads ``day`` ``clock`` or later.

    An existing wall time gives its earlier instant (fold 0 in a repeated hour); one skipped by
    a spring-forward change gives the moment of the jump, found by bisection between the two
    readings PEP 495 offers for it (the clock reads earlier at one, later at the other).
    """
    wall = datetime.combine(day, clock)
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == wall:
        return early
    late = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # Zone transitions fall on whole seconds: bisect over them.
    low, high = math.floor(min(early, late).timestamp()), math.ceil(max(early, late).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _parse_clock(value: Any, name: str) -> time | None:
    """ "09:00" (also "9:00", "09:00:30") → a time; None or "" → None; "24:00" (``end`` only)
    → None, the end of the day."""
    if value is None or value == "":
        return None
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidWindow(
            f"send window: '{name}' must be a local time such as \"09:00\" (HH:MM), got {value!r}.",
            field=name,
        )
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    micro = int((match.group(4) or "0").ljust(6, "0"))
    if name == "end" and (hour, minute, second, micro) == (24, 0, 0, 0):
        return None
    if hour > 23 or minute > 59 or second > 59:
        upper = '"24:00"' if name == "end" else '"23:59"'
        raise InvalidWindow(
            f"send window: '{name}' must be a time of day from \"00:00\" to {upper}, "
            f"got {value!r}.",
            field=name,
        )
    return time(hour, minute, second, micro)


def _parse_days(value: Any) -> frozenset[int]:
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        raise InvalidWindow(
            'send window: \'days\' must be a list of weekdays, e.g. ["mon", "tue"] or [1, 2] '
            f"(1 = Monday … 7 = Sunday), got {value!r}.",
            field="days",
        )
    days = set()
    for item in value:
        day = None
        if isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 7:
            day = item
        elif isinstance(item, str):
            day = _DAY_NUMBERS.get(item.strip().lower())
        if day is None:
            raise InvalidWindow(
                f"send window: 'days' holds {item!r}, which is not a weekday "
                "(mon, tue, wed, thu, fri, sat, sun, or 1 = Monday … 7 = Sunday).",
                field="days",
            )
        days.add(day)
    return frozenset(days)


def _clock_text(value: time) -> str:
    return value.isoformat(
        timespec="minutes" if not (value.second or value.microsecond) else "auto"
    )


Interval = tuple[datetime, datetime]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, got the naive {at!r}")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class SendWindow:
    """Local hours and weekdays a message may leave in, in the recipient's time zones.

    ``start`` None is 00:00; ``end`` None is 24:00 (the end of the day); ``days`` are ISO
    weekdays (1 = Monday … 7 = Sunday), empty for every day. ``start`` must come before
    ``end`` (InvalidWindow otherwise). Equal windows compare equal: 00:00 is stored as None and
    all seven days as the empty set.
    """

    start: time | None = None
    end: time | None = None
    days: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
                raise InvalidWindow(
                    f"send window: '{name}' must be a local time of day (no time zone), "
                    f"got {value!r}.",
                    field=name,
                )
        raw_days = self.days
        if isinstance(raw_days, str | bytes) or not isinstance(raw_days, Iterable):
            raise InvalidWindow(
                f"send window: 'days' must be ISO weekdays 1 … 7, got {raw_days!r}.", field="days"
            )
        days = frozenset(raw_days)
        if any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in days):
            raise InvalidWindow(
                f"send window: 'days' must be ISO weekdays 1 … 7, got {sorted(days, key=str)}.",
                field="days",
            )
        object.__setattr__(self, "days", frozenset() if days == EVERY_DAY else days)
        if self.start == _MIDNIGHT:
            object.__setattr__(self, "start", None)
        if self.end is not None and (
            self.end == _MIDNIGHT or self.end <= (self.start or _MIDNIGHT)
        ):
            start = _clock_text(self.start or _MIDNIGHT)
            raise InvalidWindow(
                f"send window: 'end' ({_clock_text(self.end)}) must come after 'start' "
                f"({start}). A window crossing midnight is not supported: it must start and "
                'end on the same day (an end of "24:00", or none, is the end of the day).',
                field="end",
            )

    # --- construction and the API's JSON ---------------------------------------------------

    @classmethod
    def always(cls) -> SendWindow:
        """Every hour of every day: no restriction."""
        return cls()

    @property
    def is_always(self) -> bool:
        return self.start is None and self.end is None and not self.days

    @classmethod
    def parse(cls, data: dict | None) -> SendWindow | None:
        """The API's JSON ``{"start": "09:00", "end": "20:00", "days": ["mon", …]}`` → a
        window; None → None (no window). Every key is optional; ``days`` takes names
        (``"mon"`` or ``"monday"``, any case) or ISO numbers (1 = Monday … 7 = Sunday); an
        ``end`` of ``"24:00"`` is the end of the day. InvalidWindow (a ValueError) names the
        field at fault, unknown keys included."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise InvalidWindow(
                'send window: expected an object such as {"start": "09:00", "end": "20:00", '
                f'"days": ["mon", "tue"]}}, got {data!r}.',
                field="window",
            )
        unknown = sorted(str(k) for k in data if k not in ("start", "end", "days"))
        if unknown:
            raise InvalidWindow(
                f"send window: unknown field '{unknown[0]}' (a window has start, end and days).",
                field=unknown[0],
            )
        return cls(
            start=_parse_clock(data.get("start"), "start"),
            end=_parse_clock(data.get("end"), "end"),
            days=_parse_days(data.get("days")),
        )

    def as_dict(self) -> dict[str, Any]:
        """The API's JSON: ``{"start": "09:00" | None, "end": "20:00" | None, "days": ["mon",
        …]}`` (``days`` empty: every day). ``parse(as_dict())`` gives the same window."""
        return {
            "start": _clock_text(self.start) if self.start else None,
            "end": _clock_text(self.end) if self.end else None,
            "days": [DAY_NAMES[d - 1] for d in sorted(self.days)],
        }

    @classmethod
    def from_fields(cls, *, start: time | None, end: time | None, days: str) -> SendWindow:
        """From the model's columns: ``days`` as ISO weekday digits (``"12345"``, "" = every
        day)."""
        return cls(start=start, end=end, days=frozenset(int(d) for d in days if d.isdigit()))

    @property
    def days_digits(self) -> str:
        """``days`` as the model stores them: ISO weekday digits, ``"12345"`` ("" = every day)."""
        return "".join(str(d) for d in sorted(self.days))

    # --- questions ----------------------------------------------------------------------------

    def is_open(self, at: datetime, zones: Sequence[str]) -> bool:
        """Whether a message may leave at ``at``: the window is open in every zone."""
        at = _utc(at)
        return any(s <= at < e for s, e in self._open(at - timedelta(days=1), at, zones))

    def next_open(self, at: datetime, zones: Sequence[str]) -> datetime | None:
        """The earliest instant at or after ``at`` when the window is open in every zone (``at``
        itself when it is open); None when it does not open within ``HORIZON`` (8 days):
        zones that never share an open hour."""
        at = _utc(at)
        for start, end in self._open(at, at + HORIZON, zones):
            if end > at:
                opens = max(start, at)
                return opens if opens <= at + HORIZON else None
        return None

    def closes_at(self, at: datetime, zones: Sequence[str]) -> datetime | None:
        """When the window, open at ``at``, next stops being open in at least one zone;
        ``at`` itself when it is not open then; None when it never closes (``is_always``)."""
        at = _utc(at)
        if self.is_always:
            return None
        for start, end in self._open(at, at + HORIZON, zones):
            if start <= at < end:
                return end
        return at

    def _open(self, since: datetime, until: datetime, zones: Sequence[str]) -> list[Interval]:
        """The instants between about ``since`` and ``until`` (with a margin of two days on
        either side) when the window is open in every zone, as sorted disjoint intervals."""
        if not zones:
            raise ValueError("a send window needs at least one time zone")
        first, last = since.date() - timedelta(days=2), until.date() + timedelta(days=2)
        result: list[Interval] | None = None
        for name in dict.fromkeys(zones):
            intervals = self._intervals(_zone(name), first, last)
            result = intervals if result is None else _intersect(result, intervals)
        return result or []

    def _intervals(self, zone: zoneinfo.ZoneInfo, first: date, last: date) -> list[Interval]:
        """One zone's open intervals for the local dates ``first`` … ``last``, those that touch
        merged (a window to 24:00 on Monday and from 00:00 on Tuesday is one)."""
        out: list[Interval] = []
        day = first
        while day <= last:
            if not self.days or day.isoweekday() in self.days:
                opens = _first_instant(zone, day, self.start or _MIDNIGHT)
                if self.end is None:
                    closes = _first_instant(zone, day + timedelta(days=1), _MIDNIGHT)
                else:
                    closes = _first_instant(zone, day, self.end)
                if closes > opens:
                    if out and out[-1][1] >= opens:
                        out[-1] = (out[-1][0], max(out[-1][1], closes))
                    else:
                        out.append((opens, closes))
            day += timedelta(days=1)
        return out


# --- a message's window, as stored on it -------------------------------------------------------


def window_stored(window: SendWindow, zones: Sequence[str]) -> dict[str, Any]:
    """What ``Message.send_window`` holds: the window's JSON and the recipient's zones, decided
    once at intake (the drain's claim reads them, never the phone number again)."""
    return window.as_dict() | {"zones": list(zones)}


def window_of(stored: dict[str, Any]) -> tuple[SendWindow, tuple[str, ...]]:
    """``window_stored``'s reverse."""
    window = SendWindow.parse({k: v for k, v in stored.items() if k != "zones"})
    return window or SendWindow.always(), tuple(stored.get("zones") or ())
