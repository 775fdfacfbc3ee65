#!/usr/bin/env python3
"""Synthetic NYC yellow-taxi trips, shaped like the TLC's 2015 trip records.

The example ELT pipeline loads these files into a ``trips`` table, pipe-delimited and without
a header, one trip a line, the columns in the order of :data:`COLUMNS`::

    2015-03-14|2015-03-14 18:22:05|2015-03-14 18:37:41|1|2|3.40|14.00|17.80|1|2

Both DuckDB (``read_csv(path, delim='|', header=false, columns={...})``) and PostgreSQL
(``COPY trips FROM 'file' WITH (DELIMITER '|')``) read it with no other options.

Usage::

    python examples/nyc-taxi-elt/generate.py --rows 1000000 --out data/trips.psv --seed 7

The model, roughly the 2015 yellow-cab data and tariff:

- pickups: each month's share follows the 2015 monthly trip counts (spring busiest, late
  summer quietest); within a month, weekdays differ (Friday and Saturday busiest, Monday
  quietest); within a day, an hour profile for weekdays (quiet 3-6 am, peak 18-22) and one for
  weekends (busy past midnight);
- trip_distance: a log-normal (median ~1.7 miles, mean ~2.9) capped at 30 miles, 1% of trips
  0.00; airport and out-of-city rate codes have their own distances;
- duration: distance at an hour-of-day traffic speed (~11 mph midday on weekdays), faster on
  longer trips (highways), times a log-normal noise, plus 1-3 minutes of stops; at least 60 s;
- fare_amount: 2.50 + 0.50 per 1/5 mile + 0.50 per 2 minutes (the meter's 0.50 per slow
  minute, for about half of the trip); JFK (rate code 2) is a flat 52.00;
- total_amount: fare + 0.50 MTA tax + 0.30 improvement surcharge + 0.50 overnight (20-6) or
  1.00 weekday rush hour (16-20) + tolls sometimes + a tip on credit-card trips only.

Everything follows from ``seed``: each column has its own random stream, so the first ``n``
rows are the same whatever the number of rows asked for. The module is standard library only
(``rich`` draws the progress bar when it is installed), so the demo can load it by path.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import math
import os
import random
import secrets
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

__all__ = ["COLUMNS", "generate_trips", "iter_trips", "main"]

#: The columns of a line, in order (the warehouse table's columns).
COLUMNS: tuple[str, ...] = (
    "pickup_date",
    "pickup_datetime",
    "dropoff_datetime",
    "ratecode",
    "passenger_count",
    "trip_distance",
    "fare_amount",
    "total_amount",
    "payment_type",
    "vendorid",
)

#: Rows generated (and written) at a time; ``progress`` is called after each chunk.
CHUNK_ROWS = 50_000

# Yellow-cab trips per month in 2015, in millions (TLC); a day's weight is its month's
# count spread over the month's days by WEEKDAY_FACTOR.
MONTH_TRIPS = (12.75, 12.45, 13.35, 13.07, 13.16, 12.32, 11.56, 11.13, 11.23, 12.32, 11.31, 11.46)
# Monday .. Sunday
WEEKDAY_FACTOR = (0.86, 0.95, 1.00, 1.06, 1.09, 1.08, 0.92)

# Share of a day's pickups starting in each hour, 0..23 (weights, normalised per day).
HOUR_WEEKDAY = (2.9, 1.7, 1.2, 0.8, 0.7, 0.8, 2.0, 3.6, 4.5, 4.6, 4.4, 4.6,
                4.9, 4.9, 5.1, 4.9, 4.3, 5.2, 6.4, 6.6, 6.1, 5.9, 5.7, 4.6)  # fmt: skip
HOUR_WEEKEND = (5.2, 4.4, 3.6, 2.7, 1.9, 1.0, 0.9, 1.1, 1.6, 2.5, 3.5, 4.3,
                4.8, 5.0, 5.1, 5.0, 4.9, 5.0, 5.6, 5.6, 5.1, 5.1, 5.4, 5.5)  # fmt: skip
# Friday nights run late; Sunday evenings are quiet.
FRIDAY_LATE = {22: 1.15, 23: 1.3}
SUNDAY_EVENING = {20: 0.8, 21: 0.75, 22: 0.7, 23: 0.6}

# Driving speed (mph) between stops for a trip starting in each hour; with the stops, a
# midday trip averages ~11 mph.
SPEED_WEEKDAY = (19.5, 21.3, 22.4, 23.6, 24.1, 22.4, 17.8, 14.4, 12.1, 11.8, 12.1, 12.4,
                 12.6, 12.6, 12.3, 12.0, 12.1, 12.2, 12.9, 14.1, 15.5, 16.4, 17.0, 18.2)  # fmt: skip
SPEED_WEEKEND = (18.4, 19.3, 20.5, 21.8, 23.6, 24.1, 23.0, 21.3, 19.0, 16.7, 14.9, 13.8,
                 13.2, 13.0, 13.0, 13.2, 13.6, 13.8, 14.0, 14.7, 15.5, 16.1, 16.7, 17.2)  # fmt: skip

# (value, share in %): the categorical columns, as written.
RATECODES = (("1", 97.40), ("2", 2.00), ("3", 0.18), ("4", 0.05), ("5", 0.36), ("6", 0.01))
PAYMENT_TYPES = (("1", 62.0), ("2", 37.3), ("3", 0.5), ("4", 0.2))
PASSENGERS = (("1", 70.0), ("2", 14.0), ("3", 4.0), ("4", 2.0), ("5", 6.0), ("6", 4.0))
VENDORS = (("1", 47.0), ("2", 53.0))

# trip_distance for metered city trips: log-normal in miles, capped, with a share of zeros.
DISTANCE_MEDIAN = 1.68
DISTANCE_SIGMA = 0.93
DISTANCE_MAX = 30.0
ZERO_DISTANCE_SHARE = 0.01

# Money in cents (the 2015 tariff).
INITIAL_CHARGE = 250  # the flag drop
UNIT_CHARGE = 50  # per 1/5 mile (20 hundredths), or per 2 minutes of trip time
MTA_TAX = 50
IMPROVEMENT_SURCHARGE = 30
OVERNIGHT_EXTRA = 50  # 20:00-06:00
RUSH_HOUR_EXTRA = 100  # weekdays 16:00-20:00
JFK_FLAT_FARE = 5200
JFK_RUSH_HOUR_EXTRA = 450  # weekdays 16:00-20:00, instead of the street extras
NEWARK_SURCHARGE = 1750
BRIDGE_TOLL = 554  # Triborough / Queens-Midtown, E-ZPass
HUDSON_TOLL = 1250  # Lincoln or Holland tunnel, for Newark trips

# Longest trip, so the cents table below always covers the totals.
MAX_DURATION_S = 3 * 3600
MONEY_TABLE_CENTS = 100_000

# Duration noise: this many quantiles of a log-normal with median 1.
NOISE_SIGMA = 0.35
NOISE_QUANTILES = 1024

_SECONDS_PER_DAY = 86_400


# A NamedTuple, not a dataclass: dataclasses look the module up in sys.modules, which a module
# loaded by path with importlib (as the demo does) need not be in.
class _Calendar(NamedTuple):
    """A year cut into (day, hour) cells, with what each cell means to a trip."""

    days: tuple[str, ...]  # "YYYY-MM-DD" for each day of the year, plus 1 January next year
    cum_weights: tuple[float, ...]  # running share of pickups, cell = day * 24 + hour
    seconds_per_hundredth: tuple[float, ...]  # time to drive 0.01 mile at the cell's speed
    street_extra: tuple[int, ...]  # the overnight / rush-hour extra, in cents
    weekday_rush: tuple[bool, ...]  # weekday 16:00-20:00 (JFK's surcharge)


@cache
def _calendar(year: int) -> _Calendar:
    first = dt.date(year, 1, 1)
    n_days = 366 if calendar.isleap(year) else 365
    dates = [first + dt.timedelta(days=i) for i in range(n_days + 1)]
    # each month gets its share, spread over its days by the weekday factors
    month_weekday_sum = [0.0] * 12
    for day in dates[:n_days]:
        month_weekday_sum[day.month - 1] += WEEKDAY_FACTOR[day.weekday()]
    weights: list[float] = []
    seconds: list[float] = []
    extras: list[int] = []
    rush: list[bool] = []
    for day in dates[:n_days]:
        weekday = day.weekday()
        day_weight = (
            MONTH_TRIPS[day.month - 1] * WEEKDAY_FACTOR[weekday] / month_weekday_sum[day.month - 1]
        )
        weekend = weekday >= 5
        hours = list(HOUR_WEEKEND if weekend else HOUR_WEEKDAY)
        tweaks = FRIDAY_LATE if weekday == 4 else SUNDAY_EVENING if weekday == 6 else {}
        for hour, factor in tweaks.items():
            hours[hour] *= factor
        hours_total = sum(hours)
        speeds = SPEED_WEEKEND if weekend else SPEED_WEEKDAY
        for hour in range(24):
            weights.append(day_weight * hours[hour] / hours_total)
            seconds.append(36.0 / speeds[hour])  # 3600 s per hour / 100 hundredths per mile
            is_rush = not weekend and 16 <= hour < 20
            rush.append(is_rush)
            overnight = hour >= 20 or hour < 6
            extras.append(RUSH_HOUR_EXTRA if is_rush else OVERNIGHT_EXTRA if overnight else 0)
    return _Calendar(
        days=tuple(d.isoformat() for d in dates),
        cum_weights=tuple(accumulate(weights)),
        seconds_per_hundredth=tuple(seconds),
        street_extra=tuple(extras),
        weekday_rush=tuple(rush),
    )


@cache
def _clock() -> tuple[str, ...]:
    """Every second of a day, as "HH:MM:SS"."""
    return tuple(
        f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
    )


@cache
def _money() -> tuple[str, ...]:
    """Every amount below MONEY_TABLE_CENTS cents, as "D.CC" (hundredths of a mile too)."""
    return tuple(f"{c // 100}.{c % 100:02d}" for c in range(MONEY_TABLE_CENTS))


@cache
def _distance_table() -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Metered trip distances in hundredths of a mile, and their cumulative weights.

    The log-normal is discretised to 0.01 mile, so drawing a distance is one bisect
    (``Random.choices``) instead of ``gauss`` and ``exp``; the tail past DISTANCE_MAX is cut.
    """
    dist = statistics.NormalDist(math.log(DISTANCE_MEDIAN), DISTANCE_SIGMA)
    top = round(DISTANCE_MAX * 100)
    values = list(range(top + 1))
    # hundredth c covers (c - 0.5, c + 0.5) / 100 miles; 0.00 gets the zero-distance share
    edges = [dist.cdf(math.log((c + 0.5) / 100)) for c in values]
    scale = (1 - ZERO_DISTANCE_SHARE) / edges[-1]
    cum = [ZERO_DISTANCE_SHARE + e * scale for e in edges]
    return tuple(values), tuple(cum)


@cache
def _noise() -> tuple[float, ...]:
    normal = statistics.NormalDist(0.0, NOISE_SIGMA)
    return tuple(
        math.exp(normal.inv_cdf((i + 0.5) / NOISE_QUANTILES)) for i in range(NOISE_QUANTILES)
    )


def _cum(table: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    return [value for value, _ in table], list(accumulate(share for _, share in table))


def _chunks(rows: int, seed: int, year: int) -> Iterator[list[str]]:
    """The file's lines, CHUNK_ROWS at a time."""
    cal = _calendar(year)
    clock = _clock()
    money = _money()
    days = cal.days
    n_days = len(days) - 1
    last_day = n_days - 1
    n_cells = len(cal.cum_weights)
    spd = cal.seconds_per_hundredth
    street_extra = cal.street_extra
    weekday_rush = cal.weekday_rush
    distances, distance_cum = _distance_table()
    noise = _noise()
    ratecodes, ratecode_cum = _cum(RATECODES)
    payments, payment_cum = _cum(PAYMENT_TYPES)
    passengers, passenger_cum = _cum(PASSENGERS)
    vendors, vendor_cum = _cum(VENDORS)

    # One stream per column, so row i is the same whatever `rows` and the chunking.
    def stream(name: str) -> random.Random:
        return random.Random(f"nyc-taxi/{seed}/{name}")

    cell_rng, ratecode_rng, payment_rng = stream("cell"), stream("ratecode"), stream("payment")
    passenger_rng, vendor_rng, distance_rng = (
        stream("passenger"),
        stream("vendor"),
        stream("distance"),
    )
    noise_rng = stream("noise")
    rnd = stream("row").random  # everything else, in row order
    cells_range = range(n_cells)
    cell_cum = cal.cum_weights

    done = 0
    while done < rows:
        k = min(CHUNK_ROWS, rows - done)
        lines: list[str] = []
        append = lines.append
        for cell, rc, pay, pas, ven, dist, noisy in zip(
            cell_rng.choices(cells_range, cum_weights=cell_cum, k=k),
            ratecode_rng.choices(ratecodes, cum_weights=ratecode_cum, k=k),
            payment_rng.choices(payments, cum_weights=payment_cum, k=k),
            passenger_rng.choices(passengers, cum_weights=passenger_cum, k=k),
            vendor_rng.choices(vendors, cum_weights=vendor_cum, k=k),
            distance_rng.choices(distances, cum_weights=distance_cum, k=k),
            noise_rng.choices(noise, k=k),
            strict=True,
        ):
            day, hour = divmod(cell, 24)
            sec = hour * 3600 + int(rnd() * 3600)
            # distance (hundredths of a mile): city trips keep the drawn one
            if rc == "1" or rc == "5" or rc == "6":
                pass
            elif rc == "2":  # JFK and Manhattan, ~17 miles
                dist = 1200 + int(rnd() * 1000)
            elif rc == "3":  # Newark
                dist = 1400 + int(rnd() * 900)
            else:  # Nassau / Westchester
                dist = 1200 + int(rnd() * 1800)
            if dist:
                # longer trips use faster roads: up to 1.7 times the street speed
                speedup = 1.0 + 0.00035 * (dist if dist < 2000 else 2000)
                dur = int(dist * spd[cell] / speedup * noisy) + 60 + int(rnd() * 120)
                if dur > MAX_DURATION_S:
                    dur = MAX_DURATION_S
            else:  # cancelled or same-block trips
                dur = 60 + int(rnd() * 360)
            off = sec + dur
            drop_day = day
            if off >= _SECONDS_PER_DAY:
                off -= _SECONDS_PER_DAY
                drop_day += 1
                if drop_day == n_days:  # keep the trip inside the year: start it earlier
                    drop_day, off = last_day, _SECONDS_PER_DAY - 1
                    sec = off - dur
                    cell = day * 24 + sec // 3600
            # money, in cents
            extra = street_extra[cell]
            tolls = 0
            if rc == "1" or rc == "6":
                fare = INITIAL_CHARGE + UNIT_CHARGE * (dist // 20 + dur // 120)
                if dist >= 300:
                    u = rnd()
                    if u < (0.4 if dist >= 800 else 0.02):
                        tolls = BRIDGE_TOLL
            elif rc == "2":
                fare = JFK_FLAT_FARE
                extra = JFK_RUSH_HOUR_EXTRA if weekday_rush[cell] else 0
                if rnd() < 0.35:
                    tolls = BRIDGE_TOLL
            elif rc == "5":  # negotiated: a round sum, no extras
                fare = 500 * (4 + int(rnd() * 21))
                extra = 0
            elif rc == "3":
                fare = INITIAL_CHARGE + UNIT_CHARGE * (dist // 20 + dur // 120)
                extra += NEWARK_SURCHARGE
                if rnd() < 0.8:
                    tolls = HUDSON_TOLL
            else:  # past the city limit the meter runs at twice the rate: ~10 miles in
                fare = INITIAL_CHARGE + UNIT_CHARGE * (
                    dist // 20 + (dist - 1000) // 20 + dur // 120
                )
                if rnd() < 0.5:
                    tolls = BRIDGE_TOLL
            total = fare + extra + MTA_TAX + IMPROVEMENT_SURCHARGE + tolls
            if pay == "1":  # tips are recorded for credit cards only
                u = rnd()
                if u < 0.07:
                    pass  # no tip
                elif u < 0.47:  # the screen's 20 / 25 / 30 % buttons, on the total
                    total += (total - tolls) // 5
                elif u < 0.55:
                    total += (total - tolls) // 4
                elif u < 0.59:
                    total += (total - tolls) * 3 // 10
                else:  # a custom amount, 10-22 % of the fare
                    total += int(fare * (0.10 + 0.12 * rnd()))
            ds = days[day]
            append(
                f"{ds}|{ds} {clock[sec]}|{days[drop_day]} {clock[off]}|{rc}|{pas}"
                f"|{money[dist]}|{money[fare]}|{money[total]}|{pay}|{ven}\n"
            )
        done += k
        yield lines


def _check(rows: int, year: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be an integer >= 0, got {rows!r}")
    if not 1 <= year <= 9998:
        raise ValueError(f"year must be between 1 and 9998, got {year!r}")


def iter_trips(
    rows: int, *, seed: int = 2015, year: int = 2015
) -> Iterator[tuple[dt.date, dt.datetime, dt.datetime, int, int, float, float, float, int, str]]:
    """The trips :func:`generate_trips` writes, as a loader would read them back.

    Values in :data:`COLUMNS` order: ``date``, two ``datetime``, ``ratecode``,
    ``passenger_count``, ``trip_distance`` / ``fare_amount`` / ``total_amount`` as ``float``
    (two decimals), ``payment_type``, ``vendorid`` (``str``). Slower than the file; for tests
    and small samples.

    >>> next(iter_trips(1))[0].year
    2015
    """
    _check(rows, year)
    date, stamp = dt.date.fromisoformat, dt.datetime.fromisoformat
    for lines in _chunks(rows, seed, year):
        for line in lines:
            p = line.rstrip("\n").split("|")
            yield (
                date(p[0]),
                stamp(p[1]),
                stamp(p[2]),
                int(p[3]),
                int(p[4]),
                float(p[5]),
                float(p[6]),
                float(p[7]),
                int(p[8]),
                p[9],
            )


def generate_trips(
    out: Path,
    rows: int,
    *,
    seed: int = 2015,
    year: int = 2015,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``rows`` synthetic trips to ``out``, pipe-delimited, no header.

    The file is written next to ``out`` under a temporary name and renamed over it once
    complete, so ``out`` is either the old file or the whole new one, never a partial file.

    Args:
        out: the file to write; missing parent directories are created.
        rows: how many trips (>= 0).
        seed: the same seed gives the same file.
        year: the calendar year of the pickups (the 2015 seasonality is reused).
        progress: called with the rows written so far after every chunk of
            :data:`CHUNK_ROWS` and once at the end; an exception from it aborts the write.

    Returns:
        The number of rows written.

    Raises:
        ValueError: ``rows`` or ``year`` is out of range.
        OSError: ``out`` cannot be written.
    """
    _check(rows, year)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(out))
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 honours the umask, so a database server running as another user can
    # read the file (mkstemp would make it 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    written = 0
    try:
        with open(fd, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
            for lines in _chunks(rows, seed, year):
                f.writelines(lines)
                written += len(lines)
                if progress is not None and written < rows:
                    progress(written)
            f.flush()
            os.fsync(f.fileno())
        if progress is not None:
            progress(written)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


# -- the command line -------------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # one line, not the usage block: "generate.py: error: ... (see --help)"
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _row_count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=Path(__file__).name,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write synthetic NYC yellow-taxi trips, shaped like the 2015 TLC data, as a\n"
            "pipe-delimited file with no header. Columns, in order:\n"
            + textwrap.fill(", ".join(COLUMNS), 78, initial_indent="  ", subsequent_indent="  ")
        ),
        epilog="""\
examples:
  %(prog)s --rows 1000000 --out data/trips.psv
  %(prog)s --rows 10_000 --out /tmp/trips.psv --seed 7 --quiet

load it with:
  DuckDB      SELECT * FROM read_csv('data/trips.psv', delim='|', header=false,
                                     columns={'pickup_date': 'DATE', ...})
  PostgreSQL  COPY trips FROM '/abs/path/trips.psv' WITH (DELIMITER '|')

exit status: 0 written, 2 bad arguments or the file cannot be written""",
    )
    parser.add_argument(
        "--rows",
        type=_row_count,
        required=True,
        metavar="N",
        help="number of trips to write (>= 0; 1_000_000 is fine)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="file to write (replaced whole)"
    )
    parser.add_argument(
        "--seed", type=int, default=2015, help="random seed; same seed, same file (default 2015)"
    )
    parser.add_argument(
        "--year",
        type=int,
        default=2015,
        help="calendar year of the pickups, 1-9998 (default 2015)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary line"
    )
    return parser


def _run_with_progress(args: argparse.Namespace) -> int:
    kwargs = {"seed": args.seed, "year": args.year}
    if args.quiet:
        return generate_trips(args.out, args.rows, **kwargs)
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        last = -1

        def report(done: int) -> None:
            nonlocal last
            percent = 100 * done // args.rows if args.rows else 100
            if percent != last:
                last = percent
                end = "\n" if done >= args.rows else ""
                print(f"\rwriting {args.out}: {percent:3d}%", end=end, file=sys.stderr, flush=True)

        return generate_trips(args.out, args.rows, progress=report, **kwargs)
    with Progress(
        TextColumn("writing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout stays clean
        transient=True,
    ) as bar:
        task = bar.add_task(str(args.out), total=args.rows)
        return generate_trips(
            args.out, args.rows, progress=lambda done: bar.update(task, completed=done), **kwargs
        )


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 ok, 2 bad arguments or unwritable path)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.year <= 9998:
        parser.error(f"--year must be between 1 and 9998, got {args.year}")
    started = time.perf_counter()
    try:
        written = _run_with_progress(args)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"{parser.prog}: error: cannot write {args.out}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; {args.out} left unchanged", file=sys.stderr)
        return 130
    if not args.quiet:
        seconds = time.perf_counter() - started
        rate = written / seconds if seconds > 0 else 0.0
        print(
            f"wrote {written:,} rows to {args.out} in {seconds:.1f} s ({rate:,.0f} rows/s)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
