"""``/v1/warehouses`` and ``/v1/catalog``: what the warehouses hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from .. import errors
from ..engines import Engine
from .auth import Caller, caller
from .schemas import ERROR_RESPONSES

router = APIRouter(tags=["catalog"], responses=ERROR_RESPONSES)


async def _ask(fn: Callable[..., T], *args: Any) -> T:
    """Run a catalog call off the loop, with warehouse errors as API errors."""
    try:
        return await run_in_threadpool(fn, *args)
    except errors.EngineError as exc:
        if exc.code == "connection_error":
            raise errors.WarehouseUnavailable(exc.message, details=exc.to_dict()) from exc
        raise errors.InvalidRequest(exc.message, details=exc.to_dict()) from exc


CallerDep = Annotated[Caller, Depends(caller)]
T = TypeVar("T")


def _engine(request: Request, warehouse: str | None) -> Engine:
    engines: dict[str, Engine] = request.app.state.runtime.engines
    name = warehouse or "default"
    engine = engines.get(name)
    if engine is None:
        raise errors.NotFound(
            f"no warehouse named {name!r}; configured: {', '.join(engines)}",
            details={"warehouse": name},
        )
    worker = request.app.state.runtime.worker
    if engine.exclusive and (worker is None or name not in worker.engines):
        raise errors.Conflict(
            f"warehouse {name!r} is an embedded database hosted by a worker process; this "
            "process does not host it, so it cannot read its catalog: ask the process that "
            "hosts it, or run the catalog query as a statement",
            details={"warehouse": name},
        )
    return engine


@router.get("/v1/warehouses", summary="The configured warehouses")
async def warehouses(request: Request, who: CallerDep) -> dict[str, Any]:
    engines: dict[str, Engine] = request.app.state.runtime.engines
    return {
        "warehouses": [
            {"name": name, "scheme": e.scheme, "default": name == "default"}
            for name, e in engines.items()
        ]
    }


@router.get("/v1/catalog/databases", summary="List databases")
async def databases(
    request: Request, who: CallerDep, warehouse: str | None = None
) -> dict[str, Any]:
    engine = _engine(request, warehouse)
    return {"databases": await _ask(engine.list_databases)}


@router.get("/v1/catalog/schemas", summary="List schemas (LIKE pattern)")
async def schemas(
    request: Request,
    who: CallerDep,
    warehouse: str | None = None,
    database: str | None = None,
    schema_pattern: str | None = None,
) -> dict[str, Any]:
    engine = _engine(request, warehouse)
    return {"schemas": await _ask(engine.list_schemas, database, schema_pattern)}


@router.get("/v1/catalog/tables", summary="List tables and views (LIKE patterns)")
async def tables(
    request: Request,
    who: CallerDep,
    warehouse: str | None = None,
    database: str | None = None,
    schema_pattern: str | None = None,
    table_pattern: str | None = None,
) -> dict[str, Any]:
    engine = _engine(request, warehouse)
    found = await _ask(engine.list_tables, database, schema_pattern, table_pattern)
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
    engine = _engine(request, warehouse)
    columns = await _ask(engine.describe_table, database, schema, table)
    if not columns:
        raise errors.NotFound(
            f"no table {schema}.{table}", details={"schema": schema, "table": table}
        )
    return {"schema": schema, "table_name": table, "columns": [asdict(c) for c in columns]}
