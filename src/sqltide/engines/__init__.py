"""Warehouses: one :class:`Engine` interface, implementations picked by URL scheme."""

from __future__ import annotations

from ..urls import implementation_for
from .base import FULL_ACCESS, Access, ColumnMeta, Engine, EngineConnection, ExecResult, TableInfo

__all__ = [
    "FULL_ACCESS",
    "Access",
    "ColumnMeta",
    "Engine",
    "EngineConnection",
    "ExecResult",
    "TableInfo",
    "engine_from_url",
]

_IMPLEMENTATIONS = {
    "duckdb": "sqltide.engines.duckdb:DuckDBEngine",
    "postgresql": "sqltide.engines.postgres:PostgresEngine",
    "postgres": "sqltide.engines.postgres:PostgresEngine",
    "redshift-data": "sqltide.engines.redshift:RedshiftEngine",  # extra: sqltide[redshift]
}


def engine_from_url(name: str, url: str) -> Engine:
    """The engine for a warehouse URL; the implementation is imported only when used."""
    engine_cls: type[Engine] = implementation_for("warehouse", url, _IMPLEMENTATIONS)
    return engine_cls(name, url)
