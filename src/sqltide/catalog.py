"""What the warehouses hold, as a caller may see it: the engine that answers a catalog call,
with the caller's access, and warehouse errors as API errors.

Shared by ``/v1/catalog`` (``api/catalog.py``) and the Data API's ListDatabases, ListSchemas,
ListTables and DescribeTable (``dataapi/catalog.py``); each face checks the caller's grant its
own way first (the grant decides the access: a database role on PostgreSQL, so the catalog
lists only what that role may use).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from . import errors
from .engines import Access, Engine
from .store import GrantRecord

T = TypeVar("T")


def catalog_engine(
    engines: Mapping[str, Engine],
    hosted: Collection[str] | None,
    warehouse: str,
    grant: GrantRecord,
) -> tuple[Engine, Access]:
    """The engine of ``warehouse`` and the access ``grant`` gives on it.

    ``hosted``: the warehouses this process's worker hosts (None without a worker). An
    embedded warehouse (DuckDB) can be read only by the process that hosts it.
    """
    engine = engines[warehouse]
    if engine.exclusive and (hosted is None or warehouse not in hosted):
        raise errors.Conflict(
            f"warehouse {warehouse!r} is an embedded database hosted by a worker process; this "
            "process does not host it, so it cannot read its catalog: ask the process that "
            "hosts it, or run the catalog query as a statement",
            details={"warehouse": warehouse},
        )
    return engine, Access.of(grant.access, grant.db_role)


def ask(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking) catalog call, with warehouse errors as API errors: a warehouse that
    cannot be reached is ``WarehouseUnavailable``, anything else it refuses ``InvalidRequest``."""
    try:
        return fn(*args, **kwargs)
    except errors.EngineError as exc:
        if exc.code == "connection_error":
            raise errors.WarehouseUnavailable(exc.message, details=exc.to_dict()) from exc
        raise errors.InvalidRequest(exc.message, details=exc.to_dict()) from exc
