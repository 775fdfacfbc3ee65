"""The warehouse map: names to warehouses, the databases each answers to, and the checks a bad
map fails at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqltide.dataapi.warehouses import NO_ENDPOINT, WarehouseMap, database_of, resolve
from sqltide.engines import engine_from_url
from sqltide.errors import ConfigError, DataApiError
from sqltide.grants import Grants
from sqltide.store import store_from_url

ENGINES = {
    "default": engine_from_url("default", "duckdb:///tmp/x/warehouse.duckdb"),
    "mem": engine_from_url("mem", "duckdb:///:memory:"),
    "pg": engine_from_url("pg", "postgresql://etl@db.example:5432/analytics"),
    "pg_sales": engine_from_url("pg_sales", "postgresql://etl@db.example/sales?sslmode=disable"),
    "my_wh": engine_from_url("my_wh", "postgresql://etl@db.example/?dbname=other"),
}


def test_database_of_each_kind_of_url() -> None:
    assert [database_of(e) for e in ENGINES.values()] == [
        "warehouse",
        "memory",
        "analytics",
        "sales",
        "other",
    ]
    assert database_of(engine_from_url("u", "postgresql://someone@db.example")) == "someone"


def test_names_and_databases() -> None:
    wmap = WarehouseMap(
        ENGINES, {"prod": "pg", "prod/sales": "pg_sales", "my-wh": "my_wh"}, default_database="dev"
    )
    assert wmap.lookup("default", None) == "default"
    assert wmap.lookup("prod", None) == "pg"
    assert wmap.lookup("prod", "sales") == "pg_sales"
    assert wmap.lookup("my-wh", None) == "my_wh"
    assert wmap.lookup("nope", None) is None
    # A single-database warehouse also answers to the default name; PostgreSQL does not.
    assert wmap.databases("default") == ["warehouse", "dev"]
    assert wmap.databases("mem") == ["memory", "dev"]
    assert wmap.databases("pg") == ["analytics"]
    assert wmap.check_database("default", "default", "dev") == "dev"
    assert wmap.check_database("default", "default", None) == "warehouse"
    assert wmap.check_database("prod", "pg_sales", "sales") == "sales"
    with pytest.raises(DataApiError, match='"prod/dev": "<warehouse>"') as caught:
        wmap.check_database("prod", "pg", "dev")
    assert caught.value.aws_type == "ValidationException"
    assert wmap.names_for("pg_sales") == ["pg_sales", "prod"]


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"prod": "nowhere"}, "unknown warehouse 'nowhere'"),
        ({"Prod_1": "pg"}, "neither a cluster identifier nor a workgroup name"),
        ({"prod/": "pg"}, "names no database"),
    ],
)
def test_a_bad_map_is_a_config_error(mapping: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        WarehouseMap(ENGINES, mapping)


def test_resolve_grants_and_names(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    try:
        grants = Grants(store, list(ENGINES))
        wmap = WarehouseMap(ENGINES, {"prod": "pg", "prod/sales": "pg_sales"})

        def target(who: str, admin: bool = False, **kw: str | None) -> object:
            where = {"cluster": None, "workgroup": None, "database": None, **kw}
            return resolve(wmap, grants, who, is_admin=admin, **where)  # type: ignore[arg-type]

        got = target("root", admin=True, workgroup="prod", database="sales")
        assert (got.warehouse, got.database, got.workgroup) == ("pg_sales", "sales", "prod")  # type: ignore[attr-defined]
        with pytest.raises(DataApiError, match="needs to be specified"):
            target("root", admin=True)
        with pytest.raises(DataApiError, match="cannot both be specified"):
            target("root", admin=True, cluster="prod", workgroup="prod")
        # Not granted: exactly as unknown.
        with pytest.raises(DataApiError) as ungranted:
            target("bob", cluster="prod")
        assert ungranted.value.message == NO_ENDPOINT
        grants.grant("bob", "pg_sales")
        with pytest.raises(DataApiError) as unknown:
            target("bob", cluster="prod")  # pg is still not his
        assert unknown.value.message == "Database is required for 'prod'; its databases: sales"
        assert target("bob", cluster="prod", database="sales").warehouse == "pg_sales"  # type: ignore[attr-defined]
    finally:
        store.close()
