"""ListDatabases, ListSchemas, ListTables and DescribeTable over the warehouses' catalogs.

The cluster or workgroup names the warehouse (``warehouses.resolve``: the same map, grants
and database checks as ExecuteStatement); the catalog is read with the caller's access, as
``/v1/catalog`` reads it (``sqltide.catalog``), so a PostgreSQL role sees what it may use.

``Database`` and ``ConnectedDatabase`` as the model has them: ``ConnectedDatabase`` is the
database the call connects to (it must be one the warehouse answers to), ``Database`` the one
whose schemas, tables or columns are listed; without ``ConnectedDatabase`` the call connects
to ``Database``. Patterns are SQL ``LIKE`` patterns (``%`` any run of characters, ``_`` any
one). Pages hold ``MaxResults`` items (1000 when not given) and ``NextToken`` is an offset
signed for the caller and the very request it continues (another request's token, or an
edited one, is a ``ValidationException``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from ..api.calls import off_loop
from ..catalog import ask, catalog_engine
from ..engines import Access, Engine, TableInfo
from .protocol import DataApiCall, operation
from .records import catalog_column
from .warehouses import Target, resolve, warehouse_map

T = TypeVar("T")

#: Items in a page when the caller gives no MaxResults (the model's maximum).
DEFAULT_PAGE = 1000
#: Schemas whose tables and views are the system's, as JDBC (and so AWS) types them.
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


@operation("ListDatabases")
async def list_databases(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """The databases of the warehouse the cluster or workgroup names."""

    def work(engine: Engine, access: Access, target: Target, database: str | None) -> list[str]:
        return ask(engine.list_databases, access=access)

    names, token = await _page(call, body, "ListDatabases", work, database=body.get("Database"))
    return {"Databases": names, **token}


@operation("ListSchemas")
async def list_schemas(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """The schemas of ``Database`` whose names match ``SchemaPattern``."""
    pattern = body.get("SchemaPattern")

    def work(engine: Engine, access: Access, target: Target, database: str | None) -> list[str]:
        return ask(engine.list_schemas, database, pattern, access=access)

    names, token = await _page(call, body, "ListSchemas", work, pattern)
    return {"Schemas": names, **token}


@operation("ListTables")
async def list_tables(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """The tables and views of ``Database`` matching ``SchemaPattern`` and ``TablePattern``."""
    schema_pattern, table_pattern = body.get("SchemaPattern"), body.get("TablePattern")

    def work(
        engine: Engine, access: Access, target: Target, database: str | None
    ) -> list[dict[str, str]]:
        found = ask(engine.list_tables, database, schema_pattern, table_pattern, access=access)
        return [{"name": t.name, "schema": t.schema, "type": _table_type(t)} for t in found]

    tables, token = await _page(call, body, "ListTables", work, schema_pattern, table_pattern)
    return {"Tables": tables, **token}


@operation("DescribeTable")
async def describe_table(call: DataApiCall, body: dict[str, Any]) -> dict[str, Any]:
    """The columns of table ``Table`` in schema ``Schema``; without them, of every table of
    the database (or of the schema) in turn."""
    schema, table = body.get("Schema"), body.get("Table")

    def work(
        engine: Engine, access: Access, target: Target, database: str | None
    ) -> list[dict[str, Any]]:
        describe = functools.partial(engine.describe_table, access=access)
        if schema is not None and table is not None:
            where = [(schema, table)]
        else:
            # The engine's LIKE patterns find the candidates; names given are matched exactly.
            found = ask(engine.list_tables, database, schema, table, access=access)
            where = [
                (t.schema, t.name)
                for t in found
                if (schema is None or t.schema == schema) and (table is None or t.name == table)
            ]
        return [
            catalog_column(asdict(column), schema=s, table=t)
            for s, t in where
            for column in ask(describe, database, s, t)
        ]

    columns, token = await _page(call, body, "DescribeTable", work, schema, table)
    out: dict[str, Any] = {"ColumnList": columns, **token}
    if table is not None:
        out["TableName"] = table
    return out


def _table_type(info: TableInfo) -> str:
    if info.schema in _SYSTEM_SCHEMAS and info.type in ("TABLE", "VIEW"):
        return f"SYSTEM {info.type}"
    return info.type


Work = Callable[[Engine, Access, Target, "str | None"], Sequence[T]]


async def _page(
    call: DataApiCall,
    body: dict[str, Any],
    op: str,
    work: Work[T],
    *scope: Any,
    database: str | None = None,
) -> tuple[list[T], dict[str, str]]:
    """Run ``work`` on the warehouse the call names (in a thread: it reads grants and the
    catalog) and cut the page ``NextToken`` and ``MaxResults`` say from what it found."""
    runtime = call.runtime
    cursors = runtime.statements.cursors
    connected = body.get("ConnectedDatabase")
    listed = body.get("Database") if database is None else database

    def blocking() -> tuple[list[T], dict[str, str]]:
        wmap = warehouse_map(runtime)
        target = resolve(
            wmap,
            runtime.statements.grants,
            call.principal,
            is_admin=call.is_admin,
            cluster=body.get("ClusterIdentifier"),
            workgroup=body.get("WorkgroupName"),
            database=connected if connected is not None else listed,
        )
        assert target.grant is not None  # resolve raises for a warehouse not granted
        # A name the warehouse answers to (Redshift's "dev" for a DuckDB file) is its own.
        in_db = listed
        if listed is None or listed in wmap.databases(target.warehouse):
            in_db = wmap.own_database(target.warehouse)
        key = json.dumps([op, target.warehouse, in_db, *scope])
        start = 0
        if body.get("NextToken"):
            start = int(cursors.decode(call.principal, key, body["NextToken"])[0])
        worker = runtime.worker
        engine, access = catalog_engine(
            runtime.engines,
            worker.engines if worker is not None else None,
            target.warehouse,
            target.grant,
        )
        items = list(work(engine, access, target, in_db))
        size = body.get("MaxResults") or DEFAULT_PAGE
        page = items[start : start + size]
        token = {}
        if start + size < len(items):
            token["NextToken"] = cursors.encode(call.principal, key, float(start + size), "")
        return page, token

    return await off_loop(blocking)
