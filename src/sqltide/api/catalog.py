"""``/v1/warehouses`` and ``/v1/catalog``: what the warehouses hold."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request

from .. import errors
from ..catalog import ask, catalog_engine
from ..engines import Access, Engine
from ..grants import Grants
from .auth import Caller, caller
from .calls import off_loop, read
from .schemas import ERROR_RESPONSES

router = APIRouter(tags=["catalog"], responses=ERROR_RESPONSES)


async def _ask(fn: Callable[..., T], *args: Any) -> T:
    """Run a catalog call off the loop, with warehouse errors as API errors."""
    return await off_loop(ask, fn, *args)


CallerDep = Annotated[Caller, Depends(caller)]
T = TypeVar("T")


def _grants(request: Request) -> Grants:
    return request.app.state.runtime.statements.grants


async def _engine(request: Request, warehouse: str | None, who: Caller) -> tuple[Engine, Access]:
    """The warehouse's engine and what the caller may do there.

    A warehouse the caller is not granted answers exactly as an unknown one.
    """
    engines: dict[str, Engine] = request.app.state.runtime.engines
    name = warehouse or "default"
    grant = await read(
        request,
        functools.partial(_grants(request).require, is_admin=who.is_admin),
        who.principal,
        name,
    )
    worker = request.app.state.runtime.worker
    return catalog_engine(engines, worker.engines if worker is not None else None, name, grant)


@router.get("/v1/warehouses", summary="The warehouses the caller may use")
async def warehouses(request: Request, who: CallerDep) -> dict[str, Any]:
    engines: dict[str, Engine] = request.app.state.runtime.engines
    granted = await off_loop(_grants(request).visible, who.principal, is_admin=who.is_admin)
    return {
        "warehouses": [
            {
                "name": g.warehouse,
                "scheme": engines[g.warehouse].scheme,
                "default": g.warehouse == "default",
                "access": g.access,
            }
            for g in granted
        ]
    }


@router.get("/v1/catalog/databases", summary="List databases")
async def databases(
    request: Request, who: CallerDep, warehouse: str | None = None
) -> dict[str, Any]:
    engine, access = await _engine(request, warehouse, who)
    return {"databases": await _ask(functools.partial(engine.list_databases, access=access))}


@router.get("/v1/catalog/schemas", summary="List schemas (LIKE pattern)")
async def schemas(
    request: Request,
    who: CallerDep,
    warehouse: str | None = None,
    database: str | None = None,
    schema_pattern: str | None = None,
) -> dict[str, Any]:
    engine, access = await _engine(request, warehouse, who)
    list_schemas = functools.partial(engine.list_schemas, access=access)
    return {"schemas": await _ask(list_schemas, database, schema_pattern)}


@router.get("/v1/catalog/tables", summary="List tables and views (LIKE patterns)")
async def tables(
    request: Request,
    who: CallerDep,
    warehouse: str | None = None,
    database: str | None = None,
    schema_pattern: str | None = None,
    table_pattern: str | None = None,
) -> dict[str, Any]:
    engine, access = await _engine(request, warehouse, who)
    list_tables = functools.partial(engine.list_tables, access=access)
    found = await _ask(list_tables, database, schema_pattern, table_pattern)
    return {"tables": [{"name": t.name, "schema": t.schema, "type": t.type} for t in found]}


@router.get("/v1/catalog/tables/{schema}/{table}", summary="Describe a table's columns")
async def describe_table(
    schema: str,
    table: str,
    request: Request,
    who: CallerDep,
    warehouse: str | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    engine, access = await _engine(request, warehouse, who)
    describe = functools.partial(engine.describe_table, access=access)
    columns = await _ask(describe, database, schema, table)
    if not columns:
        raise errors.NotFound(
            f"no table {schema}.{table}", details={"schema": schema, "table": table}
        )
    return {"schema": schema, "table_name": table, "columns": [asdict(c) for c in columns]}
