"""EventBridge schedule expressions: parsing, next firings, time zones, firing ids, catch-up."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from sqltide.errors import UnprocessableEntity
from sqltide.events.schedules import (
    AtSchedule,
    CronSchedule,
    InvalidSchedule,
    RateSchedule,
    Schedule,
    due_firings,
    firing_id,
    parse_schedule,
)

NY = ZoneInfo("America/New_York")


def U(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A UTC time."""
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def NYT(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    """A New York wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=NY, fold=fold)


def next_n(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    """Up to ``n`` firings after ``after``, by repeated next_after (fewer when they run out)."""
    out: list[datetime] = []
    t: datetime | None = after
    while len(out) < n and t is not None:
        t = schedule.next_after(t)
        if t is not None:
            out.append(t)
    return out


# January 2026 starts on a Thursday. (id, expression, after, the next firings; fewer than 3
# means the schedule runs out.)
NEXT_CASES = [
    # minutes and hours
    (
        "single time",
        "cron(30 9 * * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 1, 9, 30), U(2026, 1, 2, 9, 30), U(2026, 1, 3, 9, 30)],
    ),
    (
        "every minute",
        "cron(* * * * ? *)",
        U(2026, 1, 1, 0, 0, 30),
        [U(2026, 1, 1, 0, 1), U(2026, 1, 1, 0, 2), U(2026, 1, 1, 0, 3)],
    ),
    (
        "strictly after",
        "cron(0,20,40 10 * * ? *)",
        U(2026, 1, 1, 10, 20),
        [U(2026, 1, 1, 10, 40), U(2026, 1, 2, 10), U(2026, 1, 2, 10, 20)],
    ),
    (
        "hour range",
        "cron(0 9-11 * * ? *)",
        U(2026, 1, 1, 10),
        [U(2026, 1, 1, 11), U(2026, 1, 2, 9), U(2026, 1, 2, 10)],
    ),
    (
        "step 0/15",
        "cron(0/15 * * * ? *)",
        U(2026, 1, 1, 0, 50),
        [U(2026, 1, 1, 1), U(2026, 1, 1, 1, 15), U(2026, 1, 1, 1, 30)],
    ),
    (
        "step */5",
        "cron(*/5 * * * ? *)",
        U(2026, 1, 1, 0, 3, 20),
        [U(2026, 1, 1, 0, 5), U(2026, 1, 1, 0, 10), U(2026, 1, 1, 0, 15)],
    ),
    (
        "step 5/15 starts at 5",
        "cron(5/15 * * * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 1, 0, 5), U(2026, 1, 1, 0, 20), U(2026, 1, 1, 0, 35)],
    ),
    (
        "step 1/10 (AWS's example)",
        "cron(1/10 * * * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 1, 0, 1), U(2026, 1, 1, 0, 11), U(2026, 1, 1, 0, 21)],
    ),
    (
        "range with step",
        "cron(10-30/10 8 * * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 1, 8, 10), U(2026, 1, 1, 8, 20), U(2026, 1, 1, 8, 30)],
    ),
    (
        "hour step",
        "cron(0 */6 * * ? *)",
        U(2026, 1, 1, 1),
        [U(2026, 1, 1, 6), U(2026, 1, 1, 12), U(2026, 1, 1, 18)],
    ),
    (
        "hour range wraps",
        "cron(0 22-1 * * ? *)",
        U(2026, 1, 1, 12),
        [U(2026, 1, 1, 22), U(2026, 1, 1, 23), U(2026, 1, 2, 0)],
    ),
    (
        "leading zeros",
        "cron(05 09 * * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 1, 9, 5), U(2026, 1, 2, 9, 5), U(2026, 1, 3, 9, 5)],
    ),
    # day-of-month
    (
        "day list",
        "cron(0 0 1,15 * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 15), U(2026, 2, 1), U(2026, 2, 15)],
    ),
    (
        "day range",
        "cron(0 0 10-11 * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 10), U(2026, 1, 11), U(2026, 2, 10)],
    ),
    (
        "day step",
        "cron(0 0 1/10 * ? *)",
        U(2026, 1, 21, 12),
        [U(2026, 1, 31), U(2026, 2, 1), U(2026, 2, 11)],
    ),
    (
        "day 31 skips short months",
        "cron(0 0 31 * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 31), U(2026, 3, 31), U(2026, 5, 31)],
    ),
    (
        "? in day-of-week, * in day-of-month",
        "cron(15 10 * * ? *)",
        U(2026, 1, 1, 11),
        [U(2026, 1, 2, 10, 15), U(2026, 1, 3, 10, 15), U(2026, 1, 4, 10, 15)],
    ),
    (
        "? in day-of-month, * in day-of-week",
        "cron(15 10 ? * * *)",
        U(2026, 1, 1, 11),
        [U(2026, 1, 2, 10, 15), U(2026, 1, 3, 10, 15), U(2026, 1, 4, 10, 15)],
    ),
    (
        "L: last day",
        "cron(0 12 L * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 31, 12), U(2026, 2, 28, 12), U(2026, 3, 31, 12)],
    ),
    (
        "L in February of leap years",
        "cron(0 12 L 2 ? *)",
        U(2027, 1, 1),
        [U(2027, 2, 28, 12), U(2028, 2, 29, 12), U(2029, 2, 28, 12)],
    ),
    (
        "L-2: two days before the last",
        "cron(0 12 L-2 * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 29, 12), U(2026, 2, 26, 12), U(2026, 3, 29, 12)],
    ),
    (
        "LW: last weekday",
        "cron(0 12 LW * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 30, 12), U(2026, 2, 27, 12), U(2026, 3, 31, 12)],
    ),
    (
        "15W: Sunday 15th moves to Monday",
        "cron(0 12 15W * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 15, 12), U(2026, 2, 16, 12), U(2026, 3, 16, 12)],
    ),
    (
        "1W: Saturday 1st moves to Monday 3rd",
        "cron(0 12 1W * ? *)",
        U(2026, 7, 31),
        [U(2026, 8, 3, 12), U(2026, 9, 1, 12), U(2026, 10, 1, 12)],
    ),
    (
        "31W: Sunday 31st moves back to Friday",
        "cron(0 12 31W * ? *)",
        U(2026, 12, 31, 13),
        [U(2027, 1, 29, 12), U(2027, 3, 31, 12), U(2027, 5, 31, 12)],
    ),
    (
        "lower-case letters",
        "cron(0 12 lw * ? *)",
        U(2026, 1, 1),
        [U(2026, 1, 30, 12), U(2026, 2, 27, 12), U(2026, 3, 31, 12)],
    ),
    # month
    (
        "month names",
        "cron(0 0 1 JAN,JUL ? *)",
        U(2026, 1, 1),
        [U(2026, 7, 1), U(2027, 1, 1), U(2027, 7, 1)],
    ),
    (
        "month name range",
        "cron(0 0 1 MAR-MAY ? *)",
        U(2026, 1, 1),
        [U(2026, 3, 1), U(2026, 4, 1), U(2026, 5, 1)],
    ),
    (
        "month step",
        "cron(0 0 1 1/3 ? *)",
        U(2026, 1, 1),
        [U(2026, 4, 1), U(2026, 7, 1), U(2026, 10, 1)],
    ),
    (
        "month range wraps",
        "cron(0 0 1 NOV-FEB ? *)",
        U(2026, 1, 1),
        [U(2026, 2, 1), U(2026, 11, 1), U(2026, 12, 1)],
    ),
    (
        "month names in any case",
        "cron(0 0 1 jan,Jul ? *)",
        U(2026, 1, 1),
        [U(2026, 7, 1), U(2027, 1, 1), U(2027, 7, 1)],
    ),
    # day-of-week (1 = Sunday)
    (
        "seed: MON-FRI",
        "cron(0 11 ? * MON-FRI *)",
        U(2026, 1, 1, 12),
        [U(2026, 1, 2, 11), U(2026, 1, 5, 11), U(2026, 1, 6, 11)],
    ),
    (
        "numbers: 1 = SUN, 7 = SAT",
        "cron(0 8 ? * 1,7 *)",
        U(2026, 1, 1),
        [U(2026, 1, 3, 8), U(2026, 1, 4, 8), U(2026, 1, 10, 8)],
    ),
    (
        "numeric range 2-6 is MON-FRI",
        "cron(0 8 ? * 2-6 *)",
        U(2026, 1, 2, 9),
        [U(2026, 1, 5, 8), U(2026, 1, 6, 8), U(2026, 1, 7, 8)],
    ),
    (
        "day range wraps",
        "cron(0 8 ? * FRI-MON *)",
        U(2026, 1, 1),
        [U(2026, 1, 2, 8), U(2026, 1, 3, 8), U(2026, 1, 4, 8)],
    ),
    (
        "day names in any case",
        "cron(0 8 ? * mon,Wed *)",
        U(2026, 1, 1),
        [U(2026, 1, 5, 8), U(2026, 1, 7, 8), U(2026, 1, 12, 8)],
    ),
    (
        "L alone: Saturday",
        "cron(0 9 ? * L *)",
        U(2026, 1, 1),
        [U(2026, 1, 3, 9), U(2026, 1, 10, 9), U(2026, 1, 17, 9)],
    ),
    (
        "5L: last Thursday",
        "cron(0 9 ? * 5L *)",
        U(2026, 1, 1),
        [U(2026, 1, 29, 9), U(2026, 2, 26, 9), U(2026, 3, 26, 9)],
    ),
    (
        "FRIL: last Friday",
        "cron(0 9 ? * FRIL *)",
        U(2026, 1, 1),
        [U(2026, 1, 30, 9), U(2026, 2, 27, 9), U(2026, 3, 27, 9)],
    ),
    (
        "3#2: second Tuesday",
        "cron(0 9 ? * 3#2 *)",
        U(2026, 1, 1),
        [U(2026, 1, 13, 9), U(2026, 2, 10, 9), U(2026, 3, 10, 9)],
    ),
    (
        "FRI#5 skips months without one",
        "cron(0 9 ? * FRI#5 *)",
        U(2026, 1, 1),
        [U(2026, 1, 30, 9), U(2026, 5, 29, 9), U(2026, 7, 31, 9)],
    ),
    # year
    (
        "year range runs out",
        "cron(0 0 1 1 ? 2027-2029)",
        U(2026, 1, 1),
        [U(2027, 1, 1), U(2028, 1, 1), U(2029, 1, 1)],
    ),
    (
        "year step",
        "cron(0 0 1 1 ? 2026/2)",
        U(2026, 1, 1),
        [U(2028, 1, 1), U(2030, 1, 1), U(2032, 1, 1)],
    ),
    ("year list", "cron(0 0 1 6 ? 2030,2040)", U(2026, 1, 1), [U(2030, 6, 1), U(2040, 6, 1)]),
    ("single year, then none", "cron(0 0 1 1 ? 2028)", U(2026, 1, 1), [U(2028, 1, 1)]),
    ("years in the past", "cron(0 0 * * ? 1999)", U(2026, 1, 1), []),
    ("after the last year", "cron(0 0 31 12 ? *)", U(2199, 12, 31), []),
    ("a day that never comes", "cron(0 0 30 2 ? *)", U(2026, 1, 1), []),
]


@pytest.mark.parametrize(
    ("expression", "after", "expected"), [c[1:] for c in NEXT_CASES], ids=[c[0] for c in NEXT_CASES]
)
def test_next_firings(expression: str, after: datetime, expected: list[datetime]) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    assert next_n(schedule, after, 3) == expected
    # firings_between agrees with repeated next_after
    assert list(islice(schedule.firings_between(after, U(2199, 12, 31, 23, 59)), 3)) == expected
    for fire in expected:
        assert fire.tzinfo is UTC


def test_the_seed_rule_skips_the_weekend() -> None:
    seed = parse_schedule("cron(0 11 ? * MON-FRI *)")
    friday_evening = U(2026, 1, 9, 18)
    assert seed.next_after(friday_evening) == U(2026, 1, 12, 11)  # Monday
    assert list(seed.firings_between(U(2026, 1, 9, 11), U(2026, 1, 13, 11))) == [
        U(2026, 1, 12, 11),
        U(2026, 1, 13, 11),
    ]
    assert seed.describe() == "at 11:00 on MON-FRI (UTC)"


def _last_day(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _nearest_weekday(d: date, n: int) -> bool:
    """Is ``d`` the weekday of its month closest to day ``n``? (a brute-force reading of W)"""
    if n > _last_day(d):
        return False
    weekdays = [
        day for day in range(1, _last_day(d) + 1) if date(d.year, d.month, day).weekday() < 5
    ]
    return d.day == min(weekdays, key=lambda day: abs(day - n))


# Each day-field form against a day-by-day predicate written independently of the module.
ORACLE_CASES = [
    ("L * ?", lambda d: d.day == _last_day(d)),
    ("L-3 * ?", lambda d: d.day == _last_day(d) - 3),
    (
        "LW * ?",
        lambda d: (
            d.weekday() < 5
            and all(
                date(d.year, d.month, x).weekday() >= 5 for x in range(d.day + 1, _last_day(d) + 1)
            )
        ),
    ),
    ("15W * ?", lambda d: _nearest_weekday(d, 15)),
    ("1W * ?", lambda d: _nearest_weekday(d, 1)),
    ("31W * ?", lambda d: _nearest_weekday(d, 31)),
    ("1,10-12,L * ?", lambda d: d.day in (1, 10, 11, 12) or d.day == _last_day(d)),
    ("? * 3#2", lambda d: d.weekday() == 1 and (d.day - 1) // 7 == 1),
    ("? * 1#5", lambda d: d.weekday() == 6 and (d.day - 1) // 7 == 4),
    ("? * 5L", lambda d: d.weekday() == 3 and d.day + 7 > _last_day(d)),
    ("? * SAT-MON", lambda d: d.weekday() in (5, 6, 0)),
    ("? * L", lambda d: d.weekday() == 5),
    ("1 2/3 ?", lambda d: d.day == 1 and d.month in (2, 5, 8, 11)),
]


@pytest.mark.parametrize(("days", "predicate"), ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_day_fields_against_a_brute_force_oracle(days: str, predicate) -> None:
    dom, month, dow = days.split()
    schedule = parse_schedule(f"cron(0 12 {dom} {month} {dow} 2026-2028)")
    got = [f.date() for f in schedule.firings_between(U(2025, 12, 31), U(2029, 1, 1))]
    first = date(2026, 1, 1)
    expected = [
        first + timedelta(days=n)
        for n in range(366 * 3 + 1)
        if predicate(first + timedelta(days=n))
    ]
    assert got == [d for d in expected if d.year <= 2028]
    assert got  # every case fires at least once in three years


# --------------------------------------------------------------------------- time zones and DST


def test_cron_reads_the_wall_clock_of_its_zone() -> None:
    kolkata = parse_schedule("cron(0 9 * * ? *)", "Asia/Kolkata")  # UTC+05:30, no DST
    assert kolkata.next_after(U(2026, 1, 1)) == U(2026, 1, 1, 3, 30)
    seed_ny = parse_schedule("cron(0 11 ? * MON-FRI *)", "America/New_York")
    # 11:00 in New York is 16:00 UTC before the spring change and 15:00 UTC after it.
    assert next_n(seed_ny, NYT(2026, 3, 6, 12), 2) == [U(2026, 3, 9, 15), U(2026, 3, 10, 15)]
    assert seed_ny.next_after(NYT(2026, 3, 5, 12)) == U(2026, 3, 6, 16)
    assert seed_ny.describe() == "at 11:00 on MON-FRI (America/New_York)"


def test_spring_forward_skips_the_missing_wall_time() -> None:
    # On 2026-03-08 New York's clocks jump from 02:00 EST to 03:00 EDT: 02:30 does not exist.
    daily = parse_schedule("cron(30 2 * * ? *)", "America/New_York")
    fires = list(daily.firings_between(NYT(2026, 3, 7), NYT(2026, 3, 10, 12)))
    assert fires == [U(2026, 3, 7, 7, 30), U(2026, 3, 9, 6, 30), U(2026, 3, 10, 6, 30)]
    assert [f.astimezone(NY).hour for f in fires] == [2, 2, 2]


def test_spring_forward_keeps_an_hourly_rule_hourly() -> None:
    hourly = parse_schedule("cron(0 * * * ? *)", "America/New_York")
    fires = next_n(hourly, NYT(2026, 3, 8, 0, 30), 3)
    # 01:00 EST, (02:00 skipped), 03:00 EDT, 04:00 EDT: still one firing per real hour.
    assert fires == [U(2026, 3, 8, 6), U(2026, 3, 8, 7), U(2026, 3, 8, 8)]


def test_fall_back_fires_a_repeated_wall_time_once() -> None:
    # On 2026-11-01 New York's clocks go from 02:00 EDT back to 01:00 EST: 01:xx happens twice.
    daily = parse_schedule("cron(30 1 * * ? *)", "America/New_York")
    assert list(daily.firings_between(NYT(2026, 10, 31, 12), NYT(2026, 11, 2, 12))) == [
        U(2026, 11, 1, 5, 30),  # 01:30 EDT, the first occurrence
        U(2026, 11, 2, 6, 30),  # 01:30 EST the next day
    ]
    half_hourly = parse_schedule("cron(0/30 * * * ? *)", "America/New_York")
    assert list(half_hourly.firings_between(U(2026, 11, 1, 4), U(2026, 11, 1, 7, 30))) == [
        U(2026, 11, 1, 4, 30),  # 00:30 EDT
        U(2026, 11, 1, 5),  # 01:00 EDT
        U(2026, 11, 1, 5, 30),  # 01:30 EDT; the EST repetitions of 01:00 and 01:30 do not fire
        U(2026, 11, 1, 7),  # 02:00 EST
        U(2026, 11, 1, 7, 30),  # 02:30 EST
    ]


def test_next_after_from_inside_the_repeated_hour() -> None:
    half_hourly = parse_schedule("cron(0/30 * * * ? *)", "America/New_York")
    second_pass = NYT(2026, 11, 1, 1, 10, fold=1)  # 01:10 EST = 06:10 UTC
    # (an aware comparison across zones never equates a repeated wall time, so convert first)
    assert second_pass.astimezone(UTC) == U(2026, 11, 1, 6, 10)
    assert half_hourly.next_after(second_pass) == U(2026, 11, 1, 7)  # 02:00 EST
    first_pass = NYT(2026, 11, 1, 1, 10, fold=0)  # 01:10 EDT
    assert half_hourly.next_after(first_pass) == U(2026, 11, 1, 5, 30)  # 01:30 EDT


def test_at_in_a_gap_or_an_overlap() -> None:
    skipped = parse_schedule("at(2026-03-08T02:30:00)", "America/New_York")
    assert isinstance(skipped, AtSchedule)
    assert skipped.when == U(2026, 3, 8, 7, 30)  # 03:30 EDT, when the wall clock passed 02:30
    repeated = parse_schedule("at(2026-11-01T01:30:00)", "America/New_York")
    assert isinstance(repeated, AtSchedule)
    assert repeated.when == U(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)


def test_a_rate_day_is_24_hours_across_dst() -> None:
    daily = parse_schedule("rate(1 day)", "America/New_York", start=NYT(2026, 3, 7, 12))
    fires = next_n(daily, NYT(2026, 3, 7, 12), 2)
    assert fires == [U(2026, 3, 8, 17), U(2026, 3, 9, 17)]
    assert [f.astimezone(NY).hour for f in fires] == [13, 13]  # noon EST + 24 h = 13:00 EDT


# --------------------------------------------------------------------------- rate and at


def test_rate_counts_from_its_start() -> None:
    created = U(2026, 1, 1, 10, 2, 30)
    every5 = parse_schedule("rate(5 minutes)", start=created)
    assert isinstance(every5, RateSchedule)
    assert every5.interval == timedelta(minutes=5)
    assert every5.next_after(created - timedelta(seconds=1)) == created  # the first firing
    assert every5.next_after(U(2025, 1, 1)) == created
    assert every5.next_after(created) == U(2026, 1, 1, 10, 7, 30)
    assert every5.next_after(U(2026, 1, 1, 10, 20)) == U(2026, 1, 1, 10, 22, 30)
    assert list(every5.firings_between(U(2026, 1, 1, 10, 5), U(2026, 1, 1, 10, 17, 30))) == [
        U(2026, 1, 1, 10, 7, 30),
        U(2026, 1, 1, 10, 12, 30),
        U(2026, 1, 1, 10, 17, 30),
    ]
    assert every5.describe() == "every 5 minutes from 2026-01-01T10:02:30Z"


def test_rate_without_start_is_aligned_to_the_epoch() -> None:
    assert parse_schedule("rate(5 minutes)").next_after(U(2026, 1, 1, 10, 3)) == U(
        2026, 1, 1, 10, 5
    )
    assert parse_schedule("rate(1 hour)").next_after(U(2026, 1, 1, 10, 3)) == U(2026, 1, 1, 11)
    assert parse_schedule("rate(1 day)").next_after(U(2026, 1, 1, 10, 3)) == U(2026, 1, 2)


@pytest.mark.parametrize(
    ("expression", "interval", "text"),
    [
        ("rate(1 minute)", timedelta(minutes=1), "every minute"),
        ("rate(15 minutes)", timedelta(minutes=15), "every 15 minutes"),
        ("rate(1 hour)", timedelta(hours=1), "every hour"),
        ("rate(2 hours)", timedelta(hours=2), "every 2 hours"),
        ("rate(1 day)", timedelta(days=1), "every day"),
        ("rate(7 days)", timedelta(days=7), "every 7 days"),
        (" rate(10  minutes) ", timedelta(minutes=10), "every 10 minutes"),
    ],
)
def test_rate_units(expression: str, interval: timedelta, text: str) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, RateSchedule)
    assert schedule.interval == interval
    assert schedule.describe() == text


def test_start_and_end_bound_rate_and_cron() -> None:
    hourly = parse_schedule("rate(1 hour)", start=U(2026, 1, 1), end=U(2026, 1, 1, 2))
    assert next_n(hourly, U(2025, 1, 1), 5) == [U(2026, 1, 1), U(2026, 1, 1, 1), U(2026, 1, 1, 2)]
    cron = parse_schedule("cron(0 * * * ? *)", start=U(2026, 1, 1, 5, 30), end=U(2026, 1, 1, 8))
    assert next_n(cron, U(2026, 1, 1), 5) == [U(2026, 1, 1, 6), U(2026, 1, 1, 7), U(2026, 1, 1, 8)]
    on_start = parse_schedule("cron(0 * * * ? *)", start=U(2026, 1, 1, 6))
    assert on_start.next_after(U(2026, 1, 1)) == U(2026, 1, 1, 6)  # a firing at start counts


def test_at_fires_once() -> None:
    once = parse_schedule("at(2026-06-01T09:00:00)", "America/New_York")
    assert isinstance(once, AtSchedule)
    assert once.local_time == datetime(2026, 6, 1, 9)
    assert once.next_after(U(2026, 1, 1)) == U(2026, 6, 1, 13)
    assert once.next_after(U(2026, 6, 1, 13)) is None  # strictly after
    assert once.next_after(U(2027, 1, 1)) is None
    assert list(once.firings_between(U(2026, 1, 1), U(2027, 1, 1))) == [U(2026, 6, 1, 13)]
    assert list(once.firings_between(U(2026, 6, 1, 13), U(2027, 1, 1))) == []
    assert once.describe() == "once at 2026-06-01 09:00:00 (America/New_York)"
    assert str(once) == "at(2026-06-01T09:00:00)"


def test_firings_between_is_lazy() -> None:
    every_minute = parse_schedule("cron(* * * * ? *)")
    firings = every_minute.firings_between(U(2026, 1, 1), U(2199, 1, 1))  # ~90 million
    assert next(firings) == U(2026, 1, 1, 0, 1)
    assert next(firings) == U(2026, 1, 1, 0, 2)
    assert list(every_minute.firings_between(U(2026, 1, 2), U(2026, 1, 1))) == []


def test_times_must_be_aware() -> None:
    schedule = parse_schedule("cron(0 11 ? * MON-FRI *)")
    with pytest.raises(ValueError, match="aware"):
        schedule.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        schedule.firings_between(datetime(2026, 1, 1), U(2026, 2, 1))


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("cron(0/15 * * * ? *)", "every 15 minutes (UTC)"),
        ("cron(* * * * ? *)", "every minute (UTC)"),
        ("cron(0 12 L * ? *)", "at 12:00 on the last day of the month (UTC)"),
        ("cron(0 9 ? * 3#2 *)", "at 09:00 on the 2nd TUE of the month (UTC)"),
        ("cron(0 9 ? * 5L *)", "at 09:00 on the last THU of the month (UTC)"),
        ("cron(0 9 15W * ? *)", "at 09:00 on the weekday nearest day 15 of the month (UTC)"),
        (
            "cron(0 8-17 ? * MON-FRI 2026-2027)",
            "at minute 0 past hours 8-17 on MON-FRI in 2026,2027 (UTC)",
        ),
        ("cron(*/5 9-17 * JAN,JUL ? *)", "every 5 minutes during hours 9-17 in JAN,JUL (UTC)"),
        ("cron(0 0,12 1,15 * ? *)", "at 00:00, 12:00 on day 1,15 of the month (UTC)"),
    ],
)
def test_describe(expression: str, text: str) -> None:
    assert parse_schedule(expression).describe() == text


# --------------------------------------------------------------------------- invalid input

INVALID_CASES = [
    # the day fields
    ("cron(0 11 * * MON-FRI *)", "cron needs ? in day-of-month or day-of-week"),
    ("cron(0 11 * * * *)", "cron needs ? in day-of-month or day-of-week"),
    ("cron(0 11 ? * ? *)", "cron cannot have ? in both day-of-month and day-of-week"),
    ("cron(0 0 1,? * ? *)", "day-of-month: ? must stand alone"),
    # field count
    (
        "cron(0 11 ? * MON-FRI)",
        "cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 5",
    ),
    (
        "cron(0 0 11 ? * MON-FRI *)",
        "cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 7",
    ),
    ("cron()", "cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 0"),
    # ranges of values
    ("cron(60 * * * ? *)", "minutes: 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
    ("cron(0 0 0 * ? *)", "day-of-month: 0 is outside 1-31"),
    ("cron(0 0 32 * ? *)", "day-of-month: 32 is outside 1-31"),
    ("cron(0 0 1 13 ? *)", "month: 13 is outside 1-12"),
    ("cron(0 0 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
    ("cron(0 0 ? * 0 *)", "day-of-week: 0 is outside 1-7"),
    ("cron(0 0 * * ? 1969)", "year: 1969 is outside 1970-2199"),
    ("cron(0 0 * * ? 2200)", "year: 2200 is outside 1970-2199"),
    ("cron(0 0 ? * 2-8 *)", "day-of-week: 8 is outside 1-7"),
    # unreadable values
    ("cron(0 0 1 FOO ? *)", "month: cannot read 'FOO'"),
    ("cron(0 0 ? * FUN *)", "day-of-week: cannot read 'FUN'"),
    ("cron(x 0 * * ? *)", "minutes: cannot read 'x'"),
    ("cron(-5 0 * * ? *)", "minutes: a value is missing"),
    ("cron(0 0 5L * ? *)", "day-of-month: cannot read '5L'"),
    ("cron(0 0 W * ? *)", "day-of-month: a value is missing"),
    ("cron(0 0 * * ? W)", "year: cannot read 'W'"),
    ("cron(0 0 1,,2 * ? *)", "day-of-month: empty item in '1,,2'"),
    ("cron(? 0 * * ? *)", "minutes: ? is not allowed"),
    ("cron(0 0 * * ? ?)", "year: ? is not allowed"),
    # ranges and steps
    ("cron(0 0 * * ? 2030-2025)", "year: the range 2030-2025 runs backwards"),
    ("cron(*/0 * * * ? *)", "minutes: the step in '*/0' must be a whole number of at least 1"),
    ("cron(0/x * * * ? *)", "minutes: the step in '0/x' must be a whole number of at least 1"),
    ("cron(0 0 ? * MON/2 *)", "day-of-week: / is not allowed"),
    # L, W and #
    ("cron(0 0 ? * 3#1,6#3 *)", "day-of-week: only one expression is allowed with #"),
    ("cron(0 0 ? * 3#6 *)", "day-of-week: in '3#6' the week must be 1-5"),
    ("cron(0 0 ? * 3#0 *)", "day-of-week: in '3#0' the week must be 1-5"),
    ("cron(0 0 ? * 8#1 *)", "day-of-week: 8 is outside 1-7"),
    ("cron(0 0 ? * 9L *)", "day-of-week: 9 is outside 1-7"),
    ("cron(0 0 32W * ? *)", "day-of-month: 32 is outside 1-31"),
    ("cron(0 0 L-31 * ? *)", "day-of-month: in 'L-31' the offset must be 1-30"),
    ("cron(0 0 L-0 * ? *)", "day-of-month: in 'L-0' the offset must be 1-30"),
    # rate
    ("rate(1 minutes)", "rate: use the singular 'minute' when the value is 1"),
    ("rate(1 hours)", "rate: use the singular 'hour' when the value is 1"),
    ("rate(5 minute)", "rate: use the plural 'minutes' when the value is more than 1"),
    ("rate(5 hour)", "rate: use the plural 'hours' when the value is more than 1"),
    ("rate(0 minutes)", "rate: value must be a positive whole number, got '0'"),
    ("rate(-5 minutes)", "rate: value must be a positive whole number, got '-5'"),
    ("rate(1.5 hours)", "rate: value must be a positive whole number, got '1.5'"),
    ("rate(30 seconds)", "rate: unit must be minute(s), hour(s) or day(s), got 'seconds'"),
    ("rate(5 Minutes)", "rate: unit must be minute(s), hour(s) or day(s), got 'Minutes'"),
    ("rate(2 weeks)", "rate: unit must be minute(s), hour(s) or day(s), got 'weeks'"),
    ("rate(5)", "rate needs a value and a unit, e.g. rate(5 minutes)"),
    ("rate(5 minutes later)", "rate needs a value and a unit, e.g. rate(5 minutes)"),
    ("rate(99999999999999 days)", "rate: 99999999999999 days is too long"),
    # at
    ("at(2026-02-30T00:00:00)", "at: 2026-02-30T00:00:00 is not a valid date and time"),
    ("at(2026-06-01T24:00:00)", "at: 2026-06-01T24:00:00 is not a valid date and time"),
    ("at(2026-06-01 09:00:00)", "at: expected yyyy-mm-ddThh:mm:ss, got '2026-06-01 09:00:00'"),
    ("at(2026-06-01T09:00)", "at: expected yyyy-mm-ddThh:mm:ss, got '2026-06-01T09:00'"),
    ("at(2026-06-01T09:00:00Z)", "at: expected yyyy-mm-ddThh:mm:ss, got '2026-06-01T09:00:00Z'"),
    # the expression itself
    ("", "expected cron(...), rate(...) or at(...)"),
    ("0 11 ? * MON-FRI *", "expected cron(...), rate(...) or at(...)"),
    ("CRON(0 11 ? * MON-FRI *)", "expected cron(...), rate(...) or at(...)"),
    ("cron(0 11 ? * MON-FRI *", "expected cron(...), rate(...) or at(...)"),
    ("every day", "expected cron(...), rate(...) or at(...)"),
]


@pytest.mark.parametrize(
    ("expression", "reason"), INVALID_CASES, ids=[c[0] or "empty" for c in INVALID_CASES]
)
def test_invalid_expressions(expression: str, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(expression)
    assert caught.value.reason == reason
    assert caught.value.details["expression"] == expression
    assert caught.value.message == f"Invalid schedule {expression!r}: {reason}"


@pytest.mark.parametrize(
    "zone", ["Mars/Base", "", "utc", "America", "../etc/passwd", "/etc/localtime"]
)
def test_unknown_time_zones(zone: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("cron(0 11 ? * MON-FRI *)", zone)
    assert caught.value.reason == f"unknown time zone {zone!r}"
    assert caught.value.details["field"] == "timezone"


def test_invalid_start_and_end() -> None:
    with pytest.raises(InvalidSchedule, match="start must be an aware datetime"):
        parse_schedule("rate(5 minutes)", start=datetime(2026, 1, 1))
    with pytest.raises(InvalidSchedule, match="end must be after start"):
        parse_schedule("rate(5 minutes)", start=U(2026, 1, 2), end=U(2026, 1, 1))


def test_invalid_schedule_is_a_422_with_a_stable_code() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("cron(0 11 ? * 8 *)")
    exc = caught.value
    assert isinstance(exc, UnprocessableEntity)
    assert exc.code == "invalid_schedule"
    assert exc.http_status == 422
    assert exc.to_dict() == {
        "code": "invalid_schedule",
        "message": "Invalid schedule 'cron(0 11 ? * 8 *)': day-of-week: 8 is outside 1-7",
        "details": {
            "expression": "cron(0 11 ? * 8 *)",
            "reason": "day-of-week: 8 is outside 1-7",
            "field": "day-of-week",
        },
    }
    # rebuilt from the API's envelope, as the client does, it keeps its reason
    rebuilt = InvalidSchedule(exc.message, details=exc.details)
    assert rebuilt.reason == exc.reason


# --------------------------------------------------------------------------- firing ids


def test_firing_id_is_deterministic() -> None:
    fire = U(2026, 3, 9, 11)
    assert firing_id("nightly", fire) == "sched-nightly-2026-03-09T11:00:00Z"
    assert firing_id("nightly", fire) == firing_id("nightly", fire)
    # the same instant written in another zone gives the same id
    assert firing_id("nightly", fire.astimezone(NY)) == "sched-nightly-2026-03-09T11:00:00Z"
    assert firing_id("nightly", U(2026, 3, 9, 11, 1)) != firing_id("nightly", fire)
    assert firing_id("hourly", fire) != firing_id("nightly", fire)
    assert (
        firing_id("r", fire + timedelta(microseconds=250)) == "sched-r-2026-03-09T11:00:00.000250Z"
    )


def test_two_schedulers_compute_the_same_ids() -> None:
    def ids(zone_of_the_clock: str) -> list[str]:
        schedule = parse_schedule("cron(0 11 ? * MON-FRI *)", "America/New_York")
        start = U(2026, 3, 1).astimezone(ZoneInfo(zone_of_the_clock))
        return [firing_id("seed", f) for f in schedule.firings_between(start, U(2026, 3, 14))]

    assert ids("UTC") == ids("Asia/Tokyo")
    assert ids("UTC")[0] == "sched-seed-2026-03-02T16:00:00Z"


def test_firing_id_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="aware"):
        firing_id("nightly", datetime(2026, 3, 9, 11))
    with pytest.raises(ValueError, match="rule name"):
        firing_id("", U(2026, 3, 9, 11))


# --------------------------------------------------------------------------- missed firings

HOURLY = parse_schedule("cron(0 * * * ? *)")


@pytest.mark.parametrize(
    ("last_fired", "now", "policy", "window", "expected"),
    [
        # down from 10:00 to 13:00:20: 11:00 and 12:00 were missed, 13:00 is on time
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 0, 20), "skip", None, [U(2026, 1, 1, 13)]),
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 0, 20), "latest", None, [U(2026, 1, 1, 13)]),
        (
            U(2026, 1, 1, 10),
            U(2026, 1, 1, 13, 0, 20),
            "all",
            None,
            [U(2026, 1, 1, 11), U(2026, 1, 1, 12), U(2026, 1, 1, 13)],
        ),
        (
            U(2026, 1, 1, 10),
            U(2026, 1, 1, 13, 0, 20),
            "all",
            timedelta(minutes=90),
            [U(2026, 1, 1, 12), U(2026, 1, 1, 13)],
        ),
        # back at 13:30: nothing is on time
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 30), "skip", None, []),
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 30), "latest", None, [U(2026, 1, 1, 13)]),
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 30), "all", timedelta(hours=1), [U(2026, 1, 1, 13)]),
        (U(2026, 1, 1, 10), U(2026, 1, 1, 13, 30), "all", timedelta(0), []),
        # the window is inclusive: a firing exactly `window` old still runs
        (
            U(2026, 1, 1, 10),
            U(2026, 1, 1, 13, 30),
            "all",
            timedelta(minutes=150),
            [U(2026, 1, 1, 11), U(2026, 1, 1, 12), U(2026, 1, 1, 13)],
        ),
        # normal operation: the scheduler ticks just after the firing
        (U(2026, 1, 1, 12, 59, 59), U(2026, 1, 1, 13, 0, 1), "skip", None, [U(2026, 1, 1, 13)]),
        (U(2026, 1, 1, 12, 59, 59), U(2026, 1, 1, 13, 0, 1), "latest", None, [U(2026, 1, 1, 13)]),
        (
            U(2026, 1, 1, 12, 59, 59),
            U(2026, 1, 1, 13, 0, 1),
            "all",
            timedelta(0),
            [U(2026, 1, 1, 13)],
        ),
        # a firing exactly at now is due; one already handled is not
        (U(2026, 1, 1, 12, 30), U(2026, 1, 1, 13), "skip", None, [U(2026, 1, 1, 13)]),
        (U(2026, 1, 1, 13), U(2026, 1, 1, 13, 0, 30), "latest", None, []),
        (U(2026, 1, 1, 13), U(2026, 1, 1, 13, 30), "all", None, []),
        (U(2026, 1, 1, 14), U(2026, 1, 1, 13), "all", None, []),
        # never fired, no start: nothing was missed, only an on-time firing is due
        (None, U(2026, 1, 1, 13, 0, 30), "all", None, [U(2026, 1, 1, 13)]),
        (None, U(2026, 1, 1, 13, 30), "latest", None, []),
        (None, U(2026, 1, 1, 13, 30), "all", None, []),
    ],
)
def test_due_firings_for_an_hourly_cron(
    last_fired: datetime | None,
    now: datetime,
    policy,
    window: timedelta | None,
    expected: list[datetime],
) -> None:
    assert due_firings(HOURLY, last_fired, now, policy, window) == expected


def test_due_firings_for_a_never_fired_rate_count_from_its_start() -> None:
    rate = parse_schedule("rate(1 hour)", start=U(2026, 1, 1, 10))
    now = U(2026, 1, 1, 12, 30)
    assert due_firings(rate, None, now, "skip", None) == []
    assert due_firings(rate, None, now, "latest", None) == [U(2026, 1, 1, 12)]
    assert due_firings(rate, None, now, "all", None) == [
        U(2026, 1, 1, 10),
        U(2026, 1, 1, 11),
        U(2026, 1, 1, 12),
    ]
    # the first firing, seen within the grace period, is on time
    assert due_firings(rate, None, U(2026, 1, 1, 10, 0, 5), "skip", None) == [U(2026, 1, 1, 10)]


def test_due_firings_for_a_one_time_schedule_missed_while_down() -> None:
    once = parse_schedule("at(2026-01-01T09:00:00)")
    now = U(2026, 1, 1, 9, 30)
    assert due_firings(once, None, now, "skip", None) == []
    assert due_firings(once, None, now, "latest", None) == [U(2026, 1, 1, 9)]
    assert due_firings(once, None, now, "all", timedelta(hours=1)) == [U(2026, 1, 1, 9)]
    assert due_firings(once, None, now, "all", timedelta(minutes=10)) == []
    assert due_firings(once, U(2026, 1, 1, 9), now, "latest", None) == []  # already fired


def test_due_firings_latest_after_a_long_downtime() -> None:
    yearly = parse_schedule("cron(0 0 1 1 ? *)")
    assert due_firings(yearly, U(2020, 1, 1), U(2026, 6, 1), "latest", None) == [U(2026, 1, 1)]
    every_minute = parse_schedule("rate(1 minute)")
    started = time.perf_counter()
    assert due_firings(every_minute, U(2020, 1, 1), U(2026, 6, 1, 0, 0, 30), "latest", None) == [
        U(2026, 6, 1)
    ]
    assert time.perf_counter() - started < 1.0


def test_due_firings_grace() -> None:
    now = U(2026, 1, 1, 13, 4)
    assert due_firings(HOURLY, U(2026, 1, 1, 12), now, "skip", None) == []
    assert due_firings(
        HOURLY, U(2026, 1, 1, 12), now, "skip", None, grace=timedelta(minutes=5)
    ) == [U(2026, 1, 1, 13)]


def test_due_firings_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="policy"):
        due_firings(HOURLY, None, U(2026, 1, 1), "sometimes", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        due_firings(HOURLY, None, datetime(2026, 1, 1), "skip", None)
    with pytest.raises(ValueError, match="negative"):
        due_firings(HOURLY, None, U(2026, 1, 1), "all", timedelta(minutes=-1))


# --------------------------------------------------------------------------- speed


def test_next_firing_of_10000_schedules_is_fast() -> None:
    expressions = [
        "cron(0 11 ? * MON-FRI *)",
        "cron(0/15 * * * ? *)",
        "cron(5 10 L * ? *)",
        "cron(0 9 ? * 3#2 *)",
        "cron(0 9 ? * 5L *)",
        "cron(0 9 LW * ? *)",
        "cron(0 0 29 2 ? *)",
        "rate(5 minutes)",
        "at(2030-01-01T00:00:00)",
    ]
    zones = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata"]
    schedules = [parse_schedule(expressions[i % 9], zones[i % 4]) for i in range(10_000)]
    now = U(2026, 3, 8, 6, 59)
    started = time.perf_counter()
    fires = [s.next_after(now) for s in schedules]
    elapsed = time.perf_counter() - started
    assert all(f is not None and f > now for f in fires)
    assert elapsed < 1.0, f"{elapsed:.3f}s for 10,000 schedules"
