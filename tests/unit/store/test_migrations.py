"""Migrations and the schema they make, and the store's meta values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

import pgtools
from sqltide.store import Store, store_from_url
from sqltide.store.migrations import migration_files
from sqltide.store.postgres import PostgresStore
from sqltide.store.sqlite import SQLiteStore
from sqltide.urls import path_of

from .conftest import requires_postgres

#: Every table of a fresh store (besides ``schema_migrations``).
TABLES = {
    "statements",
    "sessions",
    "api_keys",
    "sqltide_meta",
    "events",
    "rules",
    "topics",
    "deliveries",
    "warehouse_grants",
    "executions",
    "execution_operations",
    "execution_history",
}


def _dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _applied_versions(url: str) -> list[int]:
    if _dialect(url) == "sqlite":
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            con.close()
    with psycopg.connect(url) as pcon:
        return [r[0] for r in pcon.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_migrate_is_idempotent(empty_url: str) -> None:
    dialect = _dialect(empty_url)
    st = store_from_url(empty_url)
    try:
        first = st.migrate()
        assert first == [name for _, name, _ in migration_files(dialect)]
        assert first, "there is at least one migration"
        assert st.migrate() == []
    finally:
        st.close()
    # a new store on the same database (a restart) applies nothing either
    again = store_from_url(empty_url)
    try:
        assert again.migrate() == []
        assert _applied_versions(empty_url) == [v for v, _, _ in migration_files(dialect)]
    finally:
        again.close()


def test_both_stores_have_the_same_migrations() -> None:
    assert [(v, n) for v, n, _ in migration_files("sqlite")] == [
        (v, n) for v, n, _ in migration_files("postgres")
    ]


# -- a fresh schema is all migrations applied (procrastinate checks this too) -------------------
def _sqlite_schema(url: str) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(path_of(url))
    try:
        rows = con.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name != 'schema_migrations' ORDER BY type, name"
        ).fetchall()
    finally:
        con.close()
    return [(t, n, " ".join(sql.split())) for t, n, sql in rows]


def _pg_schema(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as con:
        return {
            "columns": con.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
                "column_default FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name != 'schema_migrations' ORDER BY 1, 3"
            ).fetchall(),
            "indexes": con.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' AND tablename != 'schema_migrations' ORDER BY 1, 2"
            ).fetchall(),
            "constraints": con.execute(
                "SELECT table_name, constraint_name, constraint_type "
                "FROM information_schema.table_constraints WHERE table_schema = 'public' "
                "AND table_name != 'schema_migrations' AND constraint_type != 'CHECK' "
                "ORDER BY 1, 2"
            ).fetchall(),
        }


def _schema(url: str) -> object:
    return _sqlite_schema(url) if _dialect(url) == "sqlite" else _pg_schema(url)


def _tables(url: str) -> set[str]:
    if _dialect(url) == "sqlite":
        return {n for t, n, _ in _sqlite_schema(url) if t == "table"}
    return {str(row[0]) for row in _pg_schema(url)["columns"]}


@contextmanager
def _another_empty_database(url: str, tmp_path: Path) -> Iterator[str]:
    if _dialect(url) == "sqlite":
        yield "sqlite:///" + str(tmp_path / "manual.db")
        return
    with pgtools.fresh_database() as other:
        yield other


def _run_by_hand(url: str) -> None:
    """Every migration file's SQL, file after file, as a person would run it."""
    if _dialect(url) == "sqlite":
        con = sqlite3.connect(path_of(url))
        for _, _, sql in migration_files("sqlite"):
            con.executescript(sql)
        con.close()
        return
    with psycopg.connect(url, autocommit=True) as pcon:
        for _, _, sql in migration_files("postgres"):
            pcon.execute(sql.encode())


def test_fresh_schema_equals_all_migrations_applied(empty_url: str, tmp_path: Path) -> None:
    st = store_from_url(empty_url)
    st.migrate()
    st.close()
    # the same SQL run by hand, file after file, gives exactly the same schema
    with _another_empty_database(empty_url, tmp_path) as manual_url:
        _run_by_hand(manual_url)
        assert _schema(empty_url) == _schema(manual_url)
    assert _tables(empty_url) == TABLES


@requires_postgres
def test_both_stores_have_the_same_columns_and_indexes(tmp_path: Path) -> None:
    with pgtools.fresh_database() as url:
        st = PostgresStore(url)
        st.migrate()
        st.close()
        pg = _pg_schema(url)
    pg_columns = {(t, c) for t, c, *_ in pg["columns"]}
    pg_indexes = {str(n) for _, n, _ in pg["indexes"] if not str(n).endswith(("_pkey", "_key"))}
    st2 = SQLiteStore("sqlite:///" + str(tmp_path / "s.db"))
    st2.migrate()
    st2.close()
    con = sqlite3.connect(tmp_path / "s.db")
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        lite_columns = {
            (t, r[1])
            for t in tables
            if t != "schema_migrations"
            for r in con.execute(f"PRAGMA table_info({t})")
        }
        lite_indexes = {
            n
            for (n,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    finally:
        con.close()
    assert pg_columns == lite_columns
    assert pg_indexes == lite_indexes


# -- meta ------------------------------------------------------------------------------------------
def test_meta_keeps_the_first_value(store: Store) -> None:
    assert store.get_or_set_meta("secret", "a") == "a"
    assert store.get_or_set_meta("secret", "b") == "a"
