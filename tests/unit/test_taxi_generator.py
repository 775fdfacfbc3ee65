"""The NYC taxi example's trip generator (``examples/nyc-taxi-elt/generate.py``).

The module is loaded by file path, as the demo loads it: it is not part of the package.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

SCRIPT = Path(__file__).parents[2] / "examples/nyc-taxi-elt/generate.py"

TYPES = {
    "pickup_date": "DATE",
    "pickup_datetime": "TIMESTAMP",
    "dropoff_datetime": "TIMESTAMP",
    "ratecode": "SMALLINT",
    "passenger_count": "SMALLINT",
    "trip_distance": "FLOAT4",
    "fare_amount": "FLOAT4",
    "total_amount": "FLOAT4",
    "payment_type": "SMALLINT",
    "vendorid": "VARCHAR(20)",
}

DATE = r"\d{4}-\d{2}-\d{2}"
STAMP = DATE + r" \d{2}:\d{2}:\d{2}"
AMOUNT = r"\d+\.\d{2}"
LINE = re.compile(
    rf"({DATE})\|({STAMP})\|({STAMP})\|([1-6])\|([1-6])\|({AMOUNT})\|({AMOUNT})\|({AMOUNT})"
    r"\|([1-4])\|([12])\n"
)


def load_module() -> ModuleType:
    # not registered in sys.modules: the module must not need it
    spec = importlib.util.spec_from_file_location("nyc_taxi_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_module()


def cents(amount: float) -> int:
    return round(amount * 100)


def street_extra(ratecode: int, pickup: dt.datetime) -> int:
    """The extras the 2015 tariff adds for this trip, in cents (not tolls, not tips)."""
    rush = pickup.weekday() < 5 and 16 <= pickup.hour < 20
    if ratecode == 2:  # JFK: its own rush-hour surcharge only
        return 450 if rush else 0
    if ratecode == 5:  # negotiated
        return 0
    extra = 100 if rush else 50 if pickup.hour >= 20 or pickup.hour < 6 else 0
    return extra + (1750 if ratecode == 3 else 0)


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trips") / "trips.psv"
    assert gen.generate_trips(out, 10_000, seed=7) == 10_000
    return out


@pytest.fixture(scope="module")
def trips() -> list[tuple]:
    return list(gen.iter_trips(50_000, seed=11))


def test_columns() -> None:
    assert tuple(TYPES) == gen.COLUMNS


@pytest.mark.parametrize("rows", [0, 1, 10_000])
def test_writes_exactly_the_rows_asked_for(tmp_path: Path, rows: int) -> None:
    out = tmp_path / "deep" / "dir" / "trips.psv"
    seen: list[int] = []
    assert gen.generate_trips(out, rows, progress=seen.append) == rows
    with out.open("rb") as f:
        assert sum(1 for _ in f) == rows
    assert seen[-1] == rows
    assert sorted(p.name for p in out.parent.iterdir()) == ["trips.psv"]  # no temp file left


def test_same_seed_same_file_and_rows_are_a_prefix(tmp_path: Path) -> None:
    a, b, c, short = (tmp_path / name for name in ("a", "b", "c", "short"))
    gen.generate_trips(a, 2_000, seed=1)
    gen.generate_trips(b, 2_000, seed=1)
    gen.generate_trips(c, 2_000, seed=2)
    gen.generate_trips(short, 300, seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.read_text().splitlines()[:300] == short.read_text().splitlines()


def test_every_line_parses_with_the_table_types(sample_file: Path) -> None:
    lines = sample_file.read_text(encoding="ascii").splitlines(keepends=True)
    assert len(lines) == 10_000
    for line in lines:
        match = LINE.fullmatch(line)
        assert match, line
        fields = match.groups()
        assert len(fields) == len(gen.COLUMNS) == line.count("|") + 1
        day = dt.date.fromisoformat(fields[0])
        pickup = dt.datetime.fromisoformat(fields[1])
        dropoff = dt.datetime.fromisoformat(fields[2])
        assert pickup.date() == day, line
        assert dropoff - pickup >= dt.timedelta(seconds=60), line
        assert pickup.year == dropoff.year == 2015, line
        fare, total = cents(float(fields[6])), cents(float(fields[7]))
        assert 0 < fare <= total, line


def test_iter_trips_matches_the_file(sample_file: Path) -> None:
    first = sample_file.read_text().splitlines()[:50]
    rows = list(gen.iter_trips(50, seed=7))
    assert len(rows) == 50
    for line, row in zip(first, rows, strict=True):
        assert isinstance(row[0], dt.date) and isinstance(row[1], dt.datetime)
        assert isinstance(row[3], int) and isinstance(row[5], float) and isinstance(row[9], str)
        text = [
            str(row[0]),
            str(row[1]),
            str(row[2]),
            *map(str, row[3:5]),
            *(f"{v:.2f}" for v in row[5:8]),
            str(row[8]),
            row[9],
        ]
        assert "|".join(text) == line


def test_distributions_look_like_2015(trips: list[tuple]) -> None:
    n = len(trips)

    def share(column: int, value: object) -> float:
        return sum(1 for t in trips if t[column] == value) / n

    assert share(8, 1) == pytest.approx(0.62, abs=0.015)  # credit card
    assert share(8, 2) == pytest.approx(0.373, abs=0.015)  # cash
    assert 0.002 < share(8, 3) < 0.01  # no charge
    assert share(4, 1) == pytest.approx(0.70, abs=0.015)  # one passenger
    assert share(9, "2") == pytest.approx(0.53, abs=0.015)
    assert share(3, 1) == pytest.approx(0.974, abs=0.01)
    assert share(3, 2) == pytest.approx(0.02, abs=0.005)  # JFK

    distances = [t[5] for t in trips]
    assert 1.3 <= statistics.median(distances) <= 2.2
    assert 2.4 <= statistics.fmean(distances) <= 3.4
    assert max(distances) <= 30.0
    assert 0.005 <= distances.count(0.0) / n <= 0.016

    hours = Counter(t[1].hour for t in trips)
    assert sum(hours[h] for h in range(3, 6)) * 3 < sum(hours[h] for h in range(18, 21))
    months = Counter(t[0].month for t in trips)
    assert len(months) == 12
    assert months[3] > months[8]  # spring busier than late summer
    weekdays = Counter(t[0].weekday() for t in trips)
    assert weekdays[4] > weekdays[0]  # Friday busier than Monday

    minutes = [(t[2] - t[1]).total_seconds() / 60 for t in trips]
    assert 7 <= statistics.median(minutes) <= 14


def test_money_follows_the_tariff(trips: list[tuple]) -> None:
    tipped = card = 0
    for t in trips:
        ratecode, fare, total, payment = t[3], cents(t[6]), cents(t[7]), t[8]
        assert total >= fare, t
        if ratecode == 2:
            assert fare == 5200, t  # the JFK flat fare
        elif ratecode == 1:
            assert fare >= 250 and fare % 50 == 0, t  # 2.50 + 0.50 steps
        rest = total - fare - 50 - 30 - street_extra(ratecode, t[1])  # tolls + tip
        if payment == 1:
            card += 1
            tipped += rest not in (0, 554, 1250)
            assert rest >= 0, t
        else:  # no tip recorded: what is left is the tolls
            assert rest in (0, 554, 1250), t
    assert 0.85 < tipped / card < 0.97


def test_other_years_and_leap_days() -> None:
    days = {t[0] for t in gen.iter_trips(20_000, seed=3, year=2016)}
    assert {d.year for d in days} == {2016}
    assert dt.date(2016, 2, 29) in days


def test_duckdb_reads_the_file(sample_file: Path) -> None:
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in TYPES.items()) + "}"
    source = f"read_csv('{sample_file}', delim='|', header=false, columns={columns})"
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM {source}").fetchone() == (10_000,)
        months = con.execute(
            f"SELECT month(pickup_date) AS m, count(*) FROM {source} GROUP BY m ORDER BY m"
        ).fetchall()
    assert [m for m, _ in months] == list(range(1, 13))
    assert sum(c for _, c in months) == 10_000


def test_a_failing_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen, "CHUNK_ROWS", 1_000)
    out = tmp_path / "trips.psv"
    out.write_text("the old file\n")

    def boom(done: int) -> None:
        if done >= 2_000:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        gen.generate_trips(out, 5_000, progress=boom)
    assert out.read_text() == "the old file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trips.psv"]

    fresh = tmp_path / "fresh.psv"
    with pytest.raises(RuntimeError):
        gen.generate_trips(fresh, 5_000, progress=boom)
    assert not fresh.exists()


def test_progress_every_chunk_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen, "CHUNK_ROWS", 1_000)
    seen: list[int] = []
    gen.generate_trips(tmp_path / "t.psv", 3_500, progress=seen.append)
    assert seen == [1_000, 2_000, 3_000, 3_500]


def test_file_mode_honours_the_umask(tmp_path: Path) -> None:
    # a database server running as another user must be able to read the file (COPY FROM)
    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "t.psv"
    gen.generate_trips(out, 1)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("rows", [-1, 1.5, True])
def test_bad_rows_raise(tmp_path: Path, rows: object) -> None:
    with pytest.raises(ValueError, match="rows"):
        gen.generate_trips(tmp_path / "t.psv", rows)  # type: ignore[arg-type]


def test_cli_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.psv"
    assert gen.main(["--rows", "1_000", "--out", str(out), "--seed", "9", "-q"]) == 0
    assert len(out.read_text().splitlines()) == 1_000
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "-1"], "argument --rows: must be >= 0, got -1"),
        (["--rows", "lots"], "argument --rows: must be a whole number, got 'lots'"),
        (["--rows", "5", "--year", "0"], "--year must be between 1 and 9998"),
    ],
)
def test_cli_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        gen.main([*args, "--out", str(tmp_path / "t.psv")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "t.psv").exists()


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_cli_unwritable_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path if where == "a directory" else tmp_path / "file" / "t.psv"
    assert gen.main(["--rows", "10", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"generate.py: error: cannot write {out}: ")
    assert len(err.splitlines()) == 1


def test_cli_as_a_script(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "-1", "--out", str(tmp_path / "t.psv")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert bad.stderr == "generate.py: error: argument --rows: must be >= 0, got -1 (see --help)\n"
    assert "Traceback" not in bad.stderr
