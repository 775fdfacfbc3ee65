"""The DuckDB engine's sandbox: no files but the allowed folders, no extensions, locked settings."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sqltide.engines.duckdb import DuckDBConnection, DuckDBEngine
from sqltide.engines.sandbox import allowed_dirs
from sqltide.errors import ConfigError, EngineError
from sqltide.runtime import Runtime
from sqltide.settings import Settings, load_settings


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "in.csv").write_text("a,b\n1,x\n2,y\n")
    secret = tmp_path / "secret"
    secret.write_text("the admin key\n")
    return {"allowed": allowed, "secret": secret, "outside": tmp_path / "outside"}


@pytest.fixture
def engine(tmp_path: Path, places: dict[str, Path]) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(
        "default",
        f"duckdb:///{tmp_path / 'wh' / 'warehouse.duckdb'}",
        allowed_dirs=(str(places["allowed"]),),
    )
    eng.open()
    yield eng
    eng.close()


@pytest.fixture
def conn(engine: DuckDBEngine) -> Iterator[DuckDBConnection]:
    c = engine.connect()
    yield c
    c.close()


def run(conn: DuckDBConnection, sql: str) -> list[tuple[Any, ...]]:
    result = conn.execute(sql)
    if result.batches is None:
        return []
    table = pa.Table.from_batches(list(result.batches), schema=result.schema)
    return [tuple(r.values()) for r in table.to_pylist()]


def error_of(conn: DuckDBConnection, sql: str) -> EngineError:
    with pytest.raises(EngineError) as info:
        run(conn, sql)
    return info.value


# {secret}: a file outside the allowed folder; {outside}: a path there that does not exist.
DENIED = [
    "SELECT content FROM read_text('{secret}')",
    "SELECT content FROM read_blob('{secret}')",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM read_parquet('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM glob('{secret}*')",
    "CALL read_text('{secret}')",
    "SELECT * FROM read_csv('{allowed}/../secret')",  # no way out with ".."
    "SELECT * FROM read_csv('file://{secret}')",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "COPY (SELECT 1) TO '{outside}.csv'",
    "COPY t FROM '{secret}'",
    "ATTACH '{outside}.db' AS other",
    "EXPORT DATABASE '{outside}'",
    "IMPORT DATABASE '{outside}'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{outside}.duckdb_extension'",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "SET enable_external_access = true",
    "SET GLOBAL enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "SET lock_configuration = false",
    "SET threads = 1",
    "PRAGMA threads = 1",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{outside}.txt'",
]


@pytest.mark.parametrize("template", DENIED)
def test_files_extensions_and_settings_are_denied(
    conn: DuckDBConnection, places: dict[str, Path], template: str
) -> None:
    run(conn, "CREATE TABLE IF NOT EXISTS t (a VARCHAR)")
    sql = template.format(**{k: str(v) for k, v in places.items()})
    err = error_of(conn, sql)
    assert (err.code, err.sqlstate) == ("permission_denied", "42501"), err.message
    assert "the admin key" not in err.message
    assert not list(places["outside"].parent.glob("outside*"))  # nothing was written


def test_the_errors_say_who_can_allow_what(conn: DuckDBConnection, places: dict[str, Path]) -> None:
    err = error_of(conn, f"SELECT * FROM read_text('{places['secret']}')")
    assert "SQLTIDE_WAREHOUSE_ALLOWED_DIRS" in err.message
    err = error_of(conn, "LOAD httpfs")
    assert "SQLTIDE_WAREHOUSE_EXTENSIONS" in err.message
    err = error_of(conn, "SET threads = 1")
    assert err.message.startswith("setting 'threads' cannot be changed")


def test_the_allowed_folder_works(conn: DuckDBConnection, places: dict[str, Path]) -> None:
    allowed = places["allowed"]
    assert run(conn, f"SELECT a, b FROM read_csv('{allowed}/in.csv') ORDER BY a") == [
        (1, "x"),
        (2, "y"),
    ]
    run(conn, "CREATE TABLE t (a INTEGER, b VARCHAR)")
    assert conn.execute(f"COPY t FROM '{allowed}/in.csv' (HEADER)").rows_affected == 2
    assert conn.execute(f"COPY t TO '{allowed}/out.parquet' (FORMAT parquet)").rows_affected == 2
    assert run(conn, f"SELECT count(*) FROM '{allowed}/out.parquet'") == [(2,)]
    assert run(conn, f"SELECT count(*) FROM glob('{allowed}/*')") == [(2,)]


def test_what_sql_still_may_do(conn: DuckDBConnection) -> None:
    run(conn, "SET search_path = 'main'")  # a session's own setting, not the database's
    run(conn, "SET VARIABLE x = 41")
    assert run(conn, "SELECT getvariable('x') + 1") == [(42,)]
    run(conn, "ATTACH ':memory:' AS scratch")
    run(conn, "CREATE TABLE scratch.t AS SELECT 1 AS a")
    assert run(conn, "SELECT a FROM scratch.t") == [(1,)]
    assert run(conn, "SELECT current_setting('enable_external_access')") == [(False,)]


def test_a_prefix_of_the_allowed_folder_is_not_allowed(
    conn: DuckDBConnection, places: dict[str, Path]
) -> None:
    twin = places["allowed"].with_name("allowed_twin")
    twin.mkdir()
    (twin / "x.csv").write_text("a\n1\n")
    assert error_of(conn, f"SELECT * FROM read_csv('{twin}/x.csv')").code == "permission_denied"


def test_operator_extensions_load_before_the_lock(tmp_path: Path) -> None:
    eng = DuckDBEngine("default", "duckdb:///:memory:", extensions=("icu",))
    eng.open()
    try:
        c = eng.connect()
        assert run(c, "SELECT count(*) > 0 FROM icu_calendar_names()") == [(True,)]
    finally:
        eng.close()
    missing = DuckDBEngine("default", "duckdb:///:memory:", extensions=("no_such_extension",))
    with pytest.raises(ConfigError) as info:
        missing.open()
    assert "no_such_extension" in info.value.message
    assert "SQLTIDE_WAREHOUSE_EXTENSIONS" in info.value.message
    with pytest.raises(ConfigError):
        missing.connect()  # closed again after the failed open


def test_an_in_memory_warehouse_spills_to_a_private_folder_of_its_own() -> None:
    eng = DuckDBEngine("default", "duckdb:///:memory:")
    eng.open()
    try:
        [(spill,)] = run(eng.connect(), "SELECT current_setting('temp_directory')")
        assert spill != ".tmp" and Path(spill).is_dir()
        assert stat.S_IMODE(os.stat(spill).st_mode) == 0o700
    finally:
        eng.close()
    assert not Path(spill).exists()


def test_a_file_warehouse_spills_to_an_owner_only_folder(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    eng = DuckDBEngine("default", f"duckdb:///{path}")
    eng.open()
    try:
        [(spill,)] = run(eng.connect(), "SELECT current_setting('temp_directory')")
        assert spill == f"{path}.tmp"
        assert stat.S_IMODE(os.stat(spill).st_mode) == 0o700  # DuckDB would make it 0755
    finally:
        eng.close()
    assert not Path(spill).exists()


# -- which folders an operator may allow (SQLTIDE_WAREHOUSE_ALLOWED_DIRS) --------------------


def _settings(tmp_path: Path, *dirs: Path, **more: object) -> Settings:
    return Settings(home=tmp_path / "home", warehouse_allowed_dirs=list(dirs), **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("folder", "said"),
    [
        ("home", "holds the credentials file"),
        (".", "holds the credentials file"),
        ("home/files", "is the result storage folder"),
        ("home/files/statements", "inside the result storage folder"),
        ("elsewhere/..", "holds the credentials file"),  # the real folder counts
        ("link-to-home", "holds the credentials file"),
    ],
)
def test_folders_with_sqltides_own_files_are_refused(
    tmp_path: Path, folder: str, said: str
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "link-to-home").symlink_to(tmp_path / "home")
    with pytest.raises(ConfigError) as info:
        allowed_dirs(_settings(tmp_path, tmp_path / folder))
    assert said in info.value.message and "SQLTIDE_WAREHOUSE_ALLOWED_DIRS" in info.value.message


def test_folders_holding_a_state_database_or_warehouse_elsewhere_are_refused(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path,
        tmp_path / "srv",
        store=f"sqlite:///{tmp_path / 'srv' / 'state.db'}",
    )
    with pytest.raises(ConfigError, match="the state database"):
        allowed_dirs(settings)
    settings = _settings(
        tmp_path,
        tmp_path / "lake",
        warehouses={"lake": f"duckdb:///{tmp_path / 'lake' / 'lake.duckdb'}"},
    )
    with pytest.raises(ConfigError, match="warehouse 'lake'"):
        allowed_dirs(settings)


def test_a_folder_of_its_own_is_allowed_even_inside_home(tmp_path: Path) -> None:
    data = tmp_path / "home" / "data"
    assert allowed_dirs(_settings(tmp_path, data, tmp_path / "x" / ".." / "y")) == (
        str(data),
        str(tmp_path / "y"),
    )
    assert allowed_dirs(_settings(tmp_path)) == ()


def test_the_runtime_refuses_to_build_before_making_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds the credentials file"):
        Runtime.build(_settings(tmp_path, tmp_path))
    assert not (tmp_path / "home").exists()


def test_allowed_dirs_and_extensions_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SQLTIDE_WAREHOUSE_ALLOWED_DIRS", f"{tmp_path}/a, ~/b")
    monkeypatch.setenv("SQLTIDE_WAREHOUSE_EXTENSIONS", '["icu", "spatial"]')
    settings = load_settings()
    assert settings.warehouse_allowed_dirs == [tmp_path / "a", Path("~/b").expanduser()]
    assert settings.warehouse_extensions == ["icu", "spatial"]
    monkeypatch.setenv("SQLTIDE_WAREHOUSE_ALLOWED_DIRS", f'["{tmp_path}/a,b"]')
    assert load_settings().warehouse_allowed_dirs == [tmp_path / "a,b"]
    monkeypatch.setenv("SQLTIDE_WAREHOUSE_EXTENSIONS", "icu; DROP")
    with pytest.raises(ConfigError, match="SQLTIDE_WAREHOUSE_EXTENSIONS"):
        load_settings()
