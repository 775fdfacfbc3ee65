"""Warehouses: one :class:`Engine` interface, implementations picked by URL scheme."""

from __future__ import annotations

import importlib

from ..urls import scheme_of, unknown_scheme
from .base import ColumnMeta, Engine, EngineConnection, ExecResult, TableInfo

__all__ = ["ColumnMeta", "Engine", "EngineConnection", "ExecResult", "TableInfo", "engine_from_url"]

_IMPLEMENTATIONS = {
    "duckdb": "sqltide.engines.duckdb:DuckDBEngine",
}


def engine_from_url(name: str, url: str) -> Engine:
    """The engine for a warehouse URL; the implementation is imported only when used."""
    scheme = scheme_of(url)
    target = _IMPLEMENTATIONS.get(scheme)
    if target is None:
        raise unknown_scheme("warehouse", scheme, list(_IMPLEMENTATIONS))
    module, cls = target.split(":")
    engine_cls: type[Engine] = getattr(importlib.import_module(module), cls)
    return engine_cls(name, url)
