"""What a grant's access does inside the engines: read-only DuckDB connections, the text checks
for PostgreSQL, and the role mode on a warehouse URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from sqltide.engines import FULL_ACCESS, Access
from sqltide.engines.duckdb import DuckDBEngine
from sqltide.engines.pg_access import login_conninfo, refusal, split_role_mode
from sqltide.errors import ConfigError, EngineError

READ_ONLY = Access(read_only=True)


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine("default", "duckdb:///:memory:", batch_rows=2)
    eng.open()
    setup = eng.connect()
    setup.execute("CREATE TABLE t AS SELECT range AS n FROM range(5)")
    setup.close()
    yield eng
    eng.close()


def _rows(conn: Any, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    res = conn.execute(sql, params)
    assert res.batches is not None
    return pa.Table.from_batches(list(res.batches), schema=res.schema).to_pylist()


def _denied(conn: Any, sql: str) -> EngineError:
    with pytest.raises(EngineError) as info:
        res = conn.execute(sql)
        if res.batches is not None:
            list(res.batches)
    assert (info.value.code, info.value.sqlstate) == ("permission_denied", "42501"), info.value
    return info.value


def test_a_read_only_duckdb_connection_reads_in_pages_and_keeps_going(
    engine: DuckDBEngine,
) -> None:
    conn = engine.connect(READ_ONLY)
    assert len(_rows(conn, "SELECT n FROM t WHERE n >= :low", {"low": 0})) == 5  # 3 batches
    assert "read-only mode" in _denied(conn, "INSERT INTO t VALUES (9)").message
    # a refused write ended its own transaction only: the connection goes on
    assert _rows(conn, "SELECT count(*) AS c FROM t") == [{"c": 5}]
    _denied(conn, "CREATE TABLE u (n INTEGER)")
    # a result left unread ends its transaction when closed
    res = conn.execute("SELECT n FROM t")
    assert res.batches is not None
    next(res.batches)
    res.batches.close()  # type: ignore[attr-defined]
    assert _rows(conn, "SELECT 1 AS one") == [{"one": 1}]
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT",
        "begin transaction",
        "ROLLBACK",
        "ABORT",
        "END",
        "CHECKPOINT",
        "force checkpoint",
        "CALL force_checkpoint()",
        "SELECT * FROM checkpoint()",
        "ATTACH ':memory:' AS x",
        "DETACH x",
        "LOAD json",
        "INSTALL json",
        "VACUUM",
        "EXPORT DATABASE 'x'",
    ],
)
def test_a_read_only_duckdb_connection_refuses_before_running(
    engine: DuckDBEngine, sql: str
) -> None:
    conn = engine.connect(READ_ONLY)
    assert "not allowed" in _denied(conn, sql).message
    conn.close()


def test_a_read_only_batch_is_one_read_only_transaction(engine: DuckDBEngine) -> None:
    conn = engine.connect(READ_ONLY)
    conn.begin()
    assert _rows(conn, "SELECT count(*) AS c FROM t") == [{"c": 5}]
    _denied(conn, "DELETE FROM t")
    conn.rollback()
    conn.begin()
    assert _rows(conn, "SELECT max(n) AS m FROM t") == [{"m": 4}]
    conn.commit()
    conn.close()
    writer = engine.connect(FULL_ACCESS)
    assert writer.execute("DELETE FROM t WHERE n = 0").rows_affected == 1


def test_duckdb_refuses_a_database_role(engine: DuckDBEngine) -> None:
    with pytest.raises(EngineError) as info:
        engine.connect(Access(db_role="alice"))
    assert info.value.code == "permission_denied" and "DuckDB has no roles" in info.value.message


@pytest.mark.parametrize(
    ("code", "access", "refused"),
    [
        ("commit", READ_ONLY, True),
        ("  BEGIN ISOLATION LEVEL SERIALIZABLE", READ_ONLY, True),
        ("start transaction", READ_ONLY, True),
        ("savepoint s", READ_ONLY, True),
        ("release s", READ_ONLY, True),
        ("prepare transaction 'x'", READ_ONLY, True),
        ("rollback", READ_ONLY, True),
        ("end", READ_ONLY, True),
        ("abort", READ_ONLY, True),
        ("select 1", READ_ONLY, False),
        ("prepare q as select 1", READ_ONLY, False),
        ("commit", FULL_ACCESS, False),
        ("reset role", Access(db_role="r"), True),
        ("SET ROLE postgres", Access(db_role="r"), True),
        ("set local role postgres", Access(db_role="r"), True),
        ('set "role" = postgres', Access(db_role="r"), True),
        ("set session authorization postgres", Access(db_role="r"), True),
        ("set session_authorization = postgres", Access(db_role="r"), True),
        ("reset all", Access(db_role="r"), True),
        ("discard all", Access(db_role="r"), True),
        ("set search_path = x", Access(db_role="r"), False),
        ("select rolename from roles", Access(db_role="r"), False),
        ("reset role", FULL_ACCESS, False),
    ],
)
def test_postgres_text_checks(code: str, access: Access, refused: bool) -> None:
    error = refusal(code, access)
    assert (error is not None) == refused
    if error is not None:
        assert (error.code, error.sqlstate) == ("permission_denied", "42501")


def test_the_role_mode_rides_on_the_warehouse_url() -> None:
    url = "postgresql://app:pw@db:5432/wh"
    assert split_role_mode(url, "pg") == (url, "login")
    assert split_role_mode(f"{url}?sqltide_role_mode=set_role&sslmode=require", "pg") == (
        f"{url}?sslmode=require",
        "set_role",
    )
    assert split_role_mode(f"{url}?sqltide_role_mode=login", "pg") == (url, "login")
    with pytest.raises(ConfigError, match="sqltide_role_mode must be login or set_role"):
        split_role_mode(f"{url}?sqltide_role_mode=sudo", "pg")


def test_login_as_a_role_drops_the_password() -> None:
    info = login_conninfo("host=db user=app password=secret dbname=wh", "alice")
    assert "secret" not in info and "user=alice" in info and "dbname=wh" in info
