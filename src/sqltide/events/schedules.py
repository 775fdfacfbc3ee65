"""Schedule expressions in Amazon EventBridge's syntax: ``cron(...)``, ``rate(...)`` and ``at(...)``.

Users bring their EventBridge rules unchanged, so this module reads the same three forms and
computes when they fire. :func:`parse_schedule` turns an expression (and an IANA time zone, as
EventBridge Scheduler's ``ScheduleExpressionTimezone``) into a :class:`Schedule`; every invalid
input raises :class:`InvalidSchedule` whose reason names the bad field.

Rules, from "Cron expressions reference" / "Rate expressions reference" in the EventBridge user
guide and "Schedule types" in the EventBridge Scheduler user guide:

``cron(Minutes Hours Day-of-month Month Day-of-week Year)``
    Six required fields. Minutes 0-59, Hours 0-23, Day-of-month 1-31, Month 1-12 or JAN-DEC,
    Day-of-week 1-7 or SUN-SAT (**1 = Sunday**), Year 1970-2199. ``,`` lists, ``-`` ranges,
    ``*`` all, ``/`` steps (``0/15`` and ``*/15`` are minutes 0, 15, 30, 45; ``5/15`` starts at
    5). Exactly one of Day-of-month and Day-of-week is ``?``; ``*`` in both is refused, and so
    is ``?`` in both. Day-of-month also takes ``L`` (last day), ``nW`` (the weekday nearest day
    n, never crossing into another month; no firing in a month without day n) and ``LW`` (last
    weekday). Day-of-week also takes ``L`` (alone: the last day of the week, Saturday), ``nL``
    (``5L``: the last Thursday of the month) and ``n#k`` (``3#2``: the second Tuesday; ``#``
    allows only one expression in the field, so ``3#1,6#3`` is refused). Day-of-week takes no
    ``/`` (it is not in AWS's wildcard table). There is no seconds field, so nothing fires more
    often than once a minute.

    Beyond AWS's table, as in Quartz (whose syntax EventBridge's follows) and as third-party
    validators checked against the AWS console: ``LW`` and ``nL`` (above), ``L-n`` in
    Day-of-month (n days before the last day, 1-30), names in any case (``mon``), and ranges
    that wrap (``FRI-MON``, hours ``22-2``; a Year range must not run backwards).

``rate(value unit)``
    ``value`` a positive whole number, ``unit`` one of ``minute``/``minutes``/``hour``/``hours``/
    ``day``/``days``: singular exactly when value is 1 (``rate(1 hours)`` and ``rate(5 hour)``
    are refused). The minimum is therefore ``rate(1 minute)``. A rate schedule fires at
    ``start + k * interval`` for k = 0, 1, 2, ...: ``start`` is the rule's creation time (or
    Scheduler's ``StartDate``, "the first occurrence"; without one Scheduler "starts invoking
    immediately"). Without ``start`` the firings are aligned to the Unix epoch (``rate(5
    minutes)`` fires at :00, :05, ...), so every scheduler computes the same times. A day is 24
    hours of elapsed time, whatever the zone's clock does (as AWS re:Post documents for DST).

``at(yyyy-mm-ddThh:mm:ss)``
    One firing, at that wall-clock time in the schedule's zone.

Time zones and daylight saving time: a cron expression is matched against the wall clock of its
zone. When clocks spring forward, a wall time that does not exist is **skipped** (no firing that
day); when they fall back, a repeated wall time fires **once**, at its first occurrence (AWS:
"your schedule invocation gets skipped if the cron expression falls on a non-existent date and
time ... your schedule runs only once and doesn't repeat its invocation"). So
``cron(30 2 * * ? *)`` in America/New_York does not fire on the spring-forward day, and
``cron(*/15 * * * ? *)`` fires 01:00-01:45 EDT and then 02:00 EST on the fall-back day. An
``at()`` time in a gap fires when the wall clock would have shown it (02:30 on the
spring-forward day fires at 03:30 EDT) and an ambiguous one at its first occurrence.

Every time this module returns is an aware :class:`~datetime.datetime` in UTC; every time it
takes must be aware.
"""

from __future__ import annotations

import abc
import calendar
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidSchedule

__all__ = [
    "AtSchedule",
    "CronSchedule",
    "DaysOfMonth",
    "DaysOfWeek",
    "InvalidSchedule",
    "MissedFiringPolicy",
    "RateSchedule",
    "Schedule",
    "due_firings",
    "firing_id",
    "parse_schedule",
]

MissedFiringPolicy = Literal["skip", "latest", "all"]

#: A firing this close to ``now`` is on time, not missed (Quartz's default misfire threshold,
#: and EventBridge Scheduler's 60-second precision).
DEFAULT_GRACE = timedelta(minutes=1)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)


class _Reject(Exception):
    """An expression is invalid; :func:`parse_schedule` turns this into InvalidSchedule."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


# --------------------------------------------------------------------------- the schedules


class Schedule(abc.ABC):
    """When a rule fires: a parsed ``cron(...)``, ``rate(...)`` or ``at(...)`` expression."""

    __slots__ = ()

    kind: ClassVar[str]
    expression: str
    timezone: str

    @abc.abstractmethod
    def next_after(self, t: datetime) -> datetime | None:
        """The first firing strictly after ``t`` (UTC), or None when there is none left."""

    def firings_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every firing after ``start`` up to and including ``end``, lazily, oldest first."""
        start, end = _utc(start, "start"), _utc(end, "end")
        return self._firings(start, end)

    @abc.abstractmethod
    def describe(self) -> str:
        """A short text for people, e.g. ``"at 11:00 on MON-FRI (UTC)"``."""

    def _firings(self, start: datetime, end: datetime) -> Iterator[datetime]:
        t = start
        while (nxt := self.next_after(t)) is not None and nxt <= end:
            yield nxt
            t = nxt

    def _origin(self) -> datetime | None:
        """The earliest moment the schedule can fire, if it has one (see :func:`due_firings`)."""
        return None

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True, slots=True)
class DaysOfMonth:
    """A parsed Day-of-month field (other than ``?``)."""

    days: frozenset[int]  #: plain days 1-31
    last: bool = False  #: ``L``
    before_last: tuple[int, ...] = ()  #: ``L-n``
    last_weekday: bool = False  #: ``LW``
    nearest_weekday: tuple[int, ...] = ()  #: ``nW``

    def in_month(self, year: int, month: int) -> list[int]:
        """The days of that month that match, ascending."""
        first_weekday, length = calendar.monthrange(year, month)
        if len(self.days) == 31 and not self._special():
            return list(range(1, length + 1))
        out = {d for d in self.days if d <= length}
        if self.last:
            out.add(length)
        out.update(length - n for n in self.before_last if length - n >= 1)
        if self.last_weekday:
            out.add(_nearest_weekday(first_weekday, length, length))
        out.update(
            _nearest_weekday(first_weekday, length, d) for d in self.nearest_weekday if d <= length
        )
        return sorted(out)

    def _special(self) -> bool:
        return self.last or self.last_weekday or bool(self.before_last or self.nearest_weekday)


@dataclass(frozen=True, slots=True)
class DaysOfWeek:
    """A parsed Day-of-week field (other than ``?``); days are 1 = Sunday ... 7 = Saturday."""

    days: frozenset[int]  #: plain days of the week (``L`` alone is 7)
    last_of: tuple[int, ...] = ()  #: ``nL``: the last such day of the month
    nth: tuple[tuple[int, int], ...] = ()  #: ``n#k``: (day of week, k)

    def in_month(self, year: int, month: int) -> list[int]:
        """The days of that month that match, ascending."""
        first_weekday, length = calendar.monthrange(year, month)  # first_weekday: Monday = 0
        out: set[int] = set()
        if self.days:
            # Python counts Monday = 0; EventBridge counts Sunday = 1.
            wanted = {(d + 5) % 7 for d in self.days}
            out.update(d for d in range(1, length + 1) if (first_weekday + d - 1) % 7 in wanted)
        for dow in self.last_of:
            first = 1 + ((dow + 5) % 7 - first_weekday) % 7
            out.add(first + 7 * ((length - first) // 7))
        for dow, k in self.nth:
            day = 1 + ((dow + 5) % 7 - first_weekday) % 7 + 7 * (k - 1)
            if day <= length:
                out.add(day)
        return sorted(out)


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` in a time zone."""

    kind: ClassVar[str] = "cron"

    expression: str
    timezone: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: DaysOfMonth | None  #: None for ``?``
    months: tuple[int, ...]
    day_of_week: DaysOfWeek | None  #: None for ``?``
    years: tuple[int, ...]
    start: datetime | None = None  #: no firing before this (Scheduler's StartDate)
    end: datetime | None = None  #: no firing after this (Scheduler's EndDate)
    zone: tzinfo = field(default=UTC, repr=False, compare=False)

    def next_after(self, t: datetime) -> datetime | None:
        """The first firing strictly after ``t`` (UTC), or None once the years run out."""
        return next(self._firings_after(_utc(t, "t")), None)

    def _firings(self, start: datetime, end: datetime) -> Iterator[datetime]:
        for fire in self._firings_after(start):
            if fire > end:
                return
            yield fire

    def _origin(self) -> datetime | None:
        return self.start

    def _firings_after(self, t: datetime) -> Iterator[datetime]:
        if self.start is not None and t < self.start:
            t = self.start - _TICK
        zone = self.zone
        for local in self._wall_times_after(t.astimezone(zone).replace(tzinfo=None)):
            fire = _instant(local, zone)
            # None: the wall time was skipped by a forward jump. <= t: the first occurrence of a
            # repeated wall time that ``t`` (in the second occurrence) is already past.
            if fire is None or fire <= t:
                continue
            if self.end is not None and fire > self.end:
                return
            yield fire

    def _wall_times_after(self, after: datetime) -> Iterator[datetime]:
        """Matching naive wall-clock times strictly after ``after``, ascending."""
        first = after.replace(second=0, microsecond=0) + _MINUTE
        y0, mo0, d0, h0, mi0 = first.year, first.month, first.day, first.hour, first.minute
        days_in = (self.day_of_month or self.day_of_week or _ANY_WEEKDAY).in_month
        for year in self.years:
            if year < y0:
                continue
            first_year = year == y0
            for month in self.months:
                if first_year and month < mo0:
                    continue
                first_month = first_year and month == mo0
                for day in days_in(year, month):
                    if first_month and day < d0:
                        continue
                    first_day = first_month and day == d0
                    for hour in self.hours:
                        if first_day and hour < h0:
                            continue
                        first_hour = first_day and hour == h0
                        for minute in self.minutes:
                            if first_hour and minute < mi0:
                                continue
                            yield datetime(year, month, day, hour, minute)

    def describe(self) -> str:
        """A short text for people, e.g. ``"at 11:00 on MON-FRI (UTC)"``."""
        parts = [self._describe_time(), self._describe_days()]
        if len(self.months) < 12:
            parts.append("in " + _list_text(self.months, _MONTH))
        if len(self.years) < _YEAR.high - _YEAR.low + 1:
            parts.append("in " + _list_text(self.years, _YEAR))
        return " ".join(p for p in parts if p) + f" ({self.timezone})"

    def _describe_time(self) -> str:
        minutes, hours = self.minutes, self.hours
        every_hour = len(hours) == 24
        if len(minutes) == 60:
            return "every minute" + (
                "" if every_hour else f" during hours {_list_text(hours, _HOURS)}"
            )
        if len(minutes) * len(hours) <= 4:
            return "at " + ", ".join(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
        step = _even_step(minutes, 60)
        if step is not None:
            text = f"every {step} minutes" + (f" from minute {minutes[0]}" if minutes[0] else "")
            return text + ("" if every_hour else f" during hours {_list_text(hours, _HOURS)}")
        mins = (
            f"minute {minutes[0]}"
            if len(minutes) == 1
            else f"minutes {_list_text(minutes, _MINUTES)}"
        )
        return f"at {mins} past " + (
            "every hour" if every_hour else f"hours {_list_text(hours, _HOURS)}"
        )

    def _describe_days(self) -> str:
        pieces: list[str] = []
        if self.day_of_month is not None:
            dom = self.day_of_month
            if len(dom.days) == 31 and not dom._special():
                return ""
            if dom.days:
                pieces.append(f"day {_list_text(sorted(dom.days), _DAY_OF_MONTH)} of the month")
            if dom.last:
                pieces.append("the last day of the month")
            pieces.extend(f"{n} days before the last day of the month" for n in dom.before_last)
            if dom.last_weekday:
                pieces.append("the last weekday of the month")
            pieces.extend(f"the weekday nearest day {d} of the month" for d in dom.nearest_weekday)
        elif self.day_of_week is not None:
            dow = self.day_of_week
            if len(dow.days) == 7:
                return ""
            if dow.days:
                pieces.append(_list_text(sorted(dow.days), _DAY_OF_WEEK))
            pieces.extend(f"the last {_DAY_NAMES[d - 1]} of the month" for d in dow.last_of)
            pieces.extend(f"the {_ordinal(k)} {_DAY_NAMES[d - 1]} of the month" for d, k in dow.nth)
        return "on " + " or ".join(pieces)


@dataclass(frozen=True, slots=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: every ``interval``, from ``start`` (or the Unix epoch)."""

    kind: ClassVar[str] = "rate"

    expression: str
    timezone: str
    value: int
    unit: str  #: minute(s), hour(s) or day(s), as written
    interval: timedelta
    start: datetime | None = None  #: the first firing (the rule's creation time)
    end: datetime | None = None  #: no firing after this

    def next_after(self, t: datetime) -> datetime | None:
        """The first ``start + k * interval`` strictly after ``t``, or None past ``end``."""
        t = _utc(t, "t")
        anchor = self.start or _EPOCH
        try:
            fire = (
                anchor
                if t < anchor
                else anchor + ((t - anchor) // self.interval + 1) * self.interval
            )
        except OverflowError:  # beyond year 9999
            return None
        if self.end is not None and fire > self.end:
            return None
        return fire

    def _origin(self) -> datetime | None:
        return self.start

    def describe(self) -> str:
        """A short text for people, e.g. ``"every 5 minutes from 2026-01-05T09:00:00Z"``."""
        text = f"every {self.unit}" if self.value == 1 else f"every {self.value} {self.unit}"
        if self.start is not None:
            text += f" from {_iso(self.start)}"
        if self.end is not None:
            text += f" until {_iso(self.end)}"
        return text


@dataclass(frozen=True, slots=True)
class AtSchedule(Schedule):
    """``at(yyyy-mm-ddThh:mm:ss)``: one firing at a wall-clock time in a time zone."""

    kind: ClassVar[str] = "at"

    expression: str
    timezone: str
    local_time: datetime  #: naive, as written
    when: datetime  #: the firing, in UTC

    def next_after(self, t: datetime) -> datetime | None:
        """The one firing if it is after ``t``, otherwise None."""
        return self.when if self.when > _utc(t, "t") else None

    def _origin(self) -> datetime | None:
        return self.when

    def describe(self) -> str:
        """A short text for people, e.g. ``"once at 2026-06-01 09:00:00 (America/New_York)"``."""
        return f"once at {self.local_time.isoformat(sep=' ')} ({self.timezone})"


# --------------------------------------------------------------------------- parsing


def parse_schedule(
    expression: str,
    timezone: str = "UTC",
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Schedule:
    """Parse an EventBridge schedule expression evaluated in an IANA time zone.

    Args:
        expression: ``cron(...)``, ``rate(...)`` or ``at(...)``.
        timezone: an IANA zone name such as ``"America/New_York"``; cron and at() read their
            times on its wall clock. A rate's interval is elapsed time, whatever the zone.
        start: for rate, the first firing (the rule's creation time); for cron, no firing before
            it. Ignored by at(), as Scheduler ignores StartDate for one-time schedules.
        end: no firing after it (cron and rate).

    Raises:
        InvalidSchedule: with a reason naming the bad field.

    >>> parse_schedule("cron(0 11 ? * MON-FRI *)").describe()
    'at 11:00 on MON-FRI (UTC)'
    """
    try:
        if not isinstance(expression, str):
            raise _Reject("the expression must be a string")
        zone = _zone(timezone)
        start = _bound(start, "start")
        end = _bound(end, "end")
        if start is not None and end is not None and end <= start:
            raise _Reject("end must be after start", "end")
        text = expression.strip()
        if text.startswith("cron(") and text.endswith(")"):
            return _parse_cron(text, text[5:-1], timezone, zone, start, end)
        if text.startswith("rate(") and text.endswith(")"):
            return _parse_rate(text, text[5:-1], timezone, start, end)
        if text.startswith("at(") and text.endswith(")"):
            return _parse_at(text, text[3:-1], timezone, zone)
        raise _Reject("expected cron(...), rate(...) or at(...)")
    except _Reject as exc:
        details: dict[str, Any] = {"expression": expression, "reason": exc.reason}
        if exc.field:
            details["field"] = exc.field
        raise InvalidSchedule(
            f"Invalid schedule {expression!r}: {exc.reason}", details=details
        ) from None


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Reject(f"unknown time zone {name!r}", "timezone") from None


def _bound(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise _Reject(f"{name} must be an aware datetime", name)
    return value.astimezone(UTC)


_RATE = re.compile(r"(\S+) +(\S+)")
_UNITS = {"minute": _MINUTE, "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _parse_rate(
    expression: str, body: str, timezone: str, start: datetime | None, end: datetime | None
) -> RateSchedule:
    match = _RATE.fullmatch(body.strip())
    if match is None:
        raise _Reject("rate needs a value and a unit, e.g. rate(5 minutes)")
    value_text, unit = match.groups()
    if not re.fullmatch(r"[0-9]+", value_text) or int(value_text) < 1:
        raise _Reject(f"rate: value must be a positive whole number, got {value_text!r}", "value")
    value = int(value_text)
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise _Reject(f"rate: unit must be minute(s), hour(s) or day(s), got {unit!r}", "unit")
    if value == 1 and unit != singular:
        raise _Reject(f"rate: use the singular '{singular}' when the value is 1", "unit")
    if value > 1 and unit == singular:
        raise _Reject(f"rate: use the plural '{singular}s' when the value is more than 1", "unit")
    try:
        interval = _UNITS[singular] * value
    except OverflowError:
        raise _Reject(f"rate: {value} {unit} is too long", "value") from None
    return RateSchedule(expression, timezone, value, unit, interval, start, end)


_AT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})")


def _parse_at(expression: str, body: str, timezone: str, zone: tzinfo) -> AtSchedule:
    match = _AT.fullmatch(body)
    if match is None:
        raise _Reject(f"at: expected yyyy-mm-ddThh:mm:ss, got {body!r}", "at")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise _Reject(f"at: {body} is not a valid date and time", "at") from None
    # fold=0: an ambiguous time is its first occurrence; a skipped one lands after the jump.
    when = local.replace(tzinfo=zone).astimezone(UTC)
    return AtSchedule(expression, timezone, local, when)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i
    steps: bool = True  # whether '/' is allowed


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES, steps=False)
_YEAR = _Field("year", 1970, 2199)
_ANY_WEEKDAY = DaysOfWeek(frozenset(range(1, 8)))
_NUMBER = re.compile(r"[0-9]+")


def _parse_cron(
    expression: str,
    body: str,
    timezone: str,
    zone: tzinfo,
    start: datetime | None,
    end: datetime | None,
) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise _Reject(
            "cron needs 6 fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if dom == "?" and dow == "?":
        raise _Reject("cron cannot have ? in both day-of-month and day-of-week")
    if dom != "?" and dow != "?":
        raise _Reject("cron needs ? in day-of-month or day-of-week")
    return CronSchedule(
        expression=expression,
        timezone=timezone,
        minutes=_parse_plain(minutes, _MINUTES),
        hours=_parse_plain(hours, _HOURS),
        day_of_month=None if dom == "?" else _parse_day_of_month(dom),
        months=_parse_plain(month, _MONTH),
        day_of_week=None if dow == "?" else _parse_day_of_week(dow),
        years=_parse_plain(year, _YEAR),
        start=start,
        end=end,
        zone=zone,
    )


def _items(text: str, f: _Field) -> list[str]:
    items = text.split(",")
    if "" in items:
        raise _Reject(f"{f.name}: empty item in {text!r}", f.name)
    if "?" in items:
        where = (
            "must stand alone" if f.name in ("day-of-month", "day-of-week") else "is not allowed"
        )
        raise _Reject(f"{f.name}: ? {where}", f.name)
    return items


def _parse_plain(text: str, f: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for item in _items(text, f):
        values.update(_expand(item, f))
    return tuple(sorted(values))


def _parse_day_of_month(text: str) -> DaysOfMonth:
    f = _DAY_OF_MONTH
    days: set[int] = set()
    last = last_weekday = False
    before_last: list[int] = []
    nearest: list[int] = []
    for item in _items(text, f):
        upper = item.upper()  # letters are not case-sensitive
        if upper == "L":
            last = True
        elif upper == "LW":
            last_weekday = True
        elif upper.startswith("L-"):
            offset = item[2:]
            if not _NUMBER.fullmatch(offset) or not 1 <= int(offset) <= 30:
                raise _Reject(f"{f.name}: in {item!r} the offset must be 1-30", f.name)
            before_last.append(int(offset))
        elif upper.endswith("W"):
            nearest.append(_value(item[:-1], f))
        else:
            days.update(_expand(item, f))
    return DaysOfMonth(
        frozenset(days),
        last,
        tuple(sorted(set(before_last))),
        last_weekday,
        tuple(sorted(set(nearest))),
    )


def _parse_day_of_week(text: str) -> DaysOfWeek:
    f = _DAY_OF_WEEK
    items = _items(text, f)
    if len(items) > 1 and any("#" in item for item in items):
        raise _Reject(f"{f.name}: only one expression is allowed with #", f.name)
    days: set[int] = set()
    last_of: list[int] = []
    nth: list[tuple[int, int]] = []
    for item in items:
        upper = item.upper()
        if upper == "L":
            days.add(7)  # alone, L is the last day of the week: Saturday
        elif "#" in item:
            day, _, k = item.partition("#")
            if not _NUMBER.fullmatch(k) or not 1 <= int(k) <= 5:
                raise _Reject(f"{f.name}: in {item!r} the week must be 1-5", f.name)
            nth.append((_value(day, f), int(k)))
        elif upper.endswith("L"):
            last_of.append(_value(item[:-1], f))
        else:
            days.update(_expand(item, f))
    return DaysOfWeek(frozenset(days), tuple(sorted(set(last_of))), tuple(nth))


def _expand(item: str, f: _Field) -> list[int]:
    """``*``, ``*/n``, ``a``, ``a-b``, ``a/n`` or ``a-b/n`` as values in the field's order."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not f.steps:
            raise _Reject(f"{f.name}: / is not allowed", f.name)
        if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
            raise _Reject(
                f"{f.name}: the step in {item!r} must be a whole number of at least 1", f.name
            )
        step = int(step_text)
    if base == "*":
        values = list(range(f.low, f.high + 1))
    else:
        first_text, dash, last_text = base.partition("-")
        first = _value(first_text, f)
        if dash:
            last = _value(last_text, f)
            if first <= last:
                values = list(range(first, last + 1))
            elif f is _YEAR:
                raise _Reject(f"{f.name}: the range {first}-{last} runs backwards", f.name)
            else:  # wraps around, as in Quartz: FRI-MON, 22-2
                values = [*range(first, f.high + 1), *range(f.low, last + 1)]
        else:
            values = list(range(first, f.high + 1)) if slash else [first]
    return values[::step]


def _value(token: str, f: _Field) -> int:
    if _NUMBER.fullmatch(token):
        value = int(token)
    elif token.upper() in f.names:  # names are not case-sensitive: MON, mon, Mon
        value = f.low + f.names.index(token.upper())
    elif not token:
        raise _Reject(f"{f.name}: a value is missing", f.name)
    else:
        raise _Reject(f"{f.name}: cannot read {token!r}", f.name)
    if not f.low <= value <= f.high:
        raise _Reject(f"{f.name}: {value} is outside {f.low}-{f.high}", f.name)
    return value


# --------------------------------------------------------------------------- firing ids and catch-up


def firing_id(rule_name: str, fire_time: datetime) -> str:
    """A deterministic id for one firing: ``sched-<rule>-<UTC time>``.

    Two schedulers firing the same rule at the same time produce the same id, so the second
    insert is a no-op (as DBOS's ``sched-{name}-{fire_time}``). The time is in UTC with a ``Z``,
    to the second (microseconds only when there are any), whatever zone ``fire_time`` is in.

    >>> firing_id("nightly", datetime(2026, 3, 9, 11, 0, tzinfo=UTC))
    'sched-nightly-2026-03-09T11:00:00Z'
    """
    if not rule_name:
        raise ValueError("firing_id needs a rule name")
    return f"sched-{rule_name}-{_iso(_utc(fire_time, 'fire_time'))}"


def due_firings(
    schedule: Schedule,
    last_fired: datetime | None,
    now: datetime,
    policy: MissedFiringPolicy,
    window: timedelta | None = None,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> list[datetime]:
    """The firings to run now, oldest first, after the scheduler was away for a while.

    The due firings are those after ``last_fired`` up to and including ``now``. One is *on
    time* when it is no older than ``grace`` (default one minute) and *missed* when older.
    On-time firings are always returned; the policy says what happens to the missed ones:

    - ``"skip"``: none of them; the schedule simply goes on with its next firing.
    - ``"latest"``: only the newest due firing, once (a backlog collapses into one run).
    - ``"all"``: each missed firing no older than ``window`` (every one when ``window`` is
      None: bound it, or a ``rate(1 minute)`` rule down for a week returns 10,080 firings).

    Args:
        schedule: the rule's schedule.
        last_fired: the time up to which firings were handled (the ``now`` of the previous
            call, or the newest firing run). None means the rule has never fired: firings count
            from the schedule's beginning (a rate's or cron's ``start``, an at() time); a
            schedule without one has missed nothing, and only on-time firings are due.
        now: the scheduler's current time.
        policy: ``"skip"``, ``"latest"`` or ``"all"``.
        window: for ``"all"``, how old a missed firing may be (ignored by the other policies).
        grace: how late a firing may be and still count as on time.
    """
    now = _utc(now, "now")
    if policy not in ("skip", "latest", "all"):
        raise ValueError(f"policy must be 'skip', 'latest' or 'all', got {policy!r}")
    if grace < timedelta(0) or (window is not None and window < timedelta(0)):
        raise ValueError("grace and window must not be negative")
    on_time_from = now - grace - _TICK  # firings_between excludes its start
    if last_fired is not None:
        after = _utc(last_fired, "last_fired")
    elif (origin := schedule._origin()) is not None:
        after = origin - _TICK
    else:
        after = on_time_from
    if after >= now:
        return []
    if policy == "skip":
        return list(schedule.firings_between(max(after, on_time_from), now))
    if policy == "latest":
        latest = _latest_between(schedule, after, now)
        return [] if latest is None else [latest]
    if window is not None:
        after = max(after, now - max(window, grace) - _TICK)
    return list(schedule.firings_between(after, now))


def _latest_between(schedule: Schedule, after: datetime, until: datetime) -> datetime | None:
    """The newest firing in (after, until], found by looking back over widening spans."""
    span = timedelta(hours=1)
    while True:
        lower = after if span >= until - after else until - span  # no datetime underflow
        newest = deque(schedule.firings_between(lower, until), maxlen=1)
        if newest:
            return newest[0]
        if lower == after:
            return None
        span *= 16


# --------------------------------------------------------------------------- helpers


def _utc(t: datetime, name: str) -> datetime:
    if not isinstance(t, datetime) or t.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {t!r}")
    return t.astimezone(UTC)


def _instant(local: datetime, zone: tzinfo) -> datetime | None:
    """The UTC instant of a wall-clock time: None when skipped, the first when repeated."""
    if zone is UTC:
        return local.replace(tzinfo=UTC)
    fire = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if fire.astimezone(zone).replace(tzinfo=None) != local:
        return None  # the clocks jumped over this wall time
    return fire


def _nearest_weekday(first_weekday: int, length: int, day: int) -> int:
    """The weekday (Mon-Fri) nearest ``day``, staying within the month (Quartz's ``W``)."""
    weekday = (first_weekday + day - 1) % 7  # Monday = 0
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + 1 if day < length else day - 2
    return day


def _iso(t: datetime) -> str:
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text + "Z"


def _list_text(values: Sequence[int], f: _Field) -> str:
    """``[2, 3, 4, 5, 6]`` -> ``"MON-FRI"``; ``[1, 15]`` -> ``"1,15"``."""

    def label(v: int) -> str:
        return f.names[v - f.low] if f.names else str(v)

    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{label(values[i])}-{label(values[j])}")
        else:
            parts.extend(label(v) for v in values[i : j + 1])
        i = j + 1
    return ",".join(parts)


def _even_step(values: Sequence[int], size: int) -> int | None:
    """The step when ``values`` are ``first, first + step, ...`` to the end of the field."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if values[0] >= step or list(values) != list(range(values[0], size, step)):
        return None
    return step


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")
