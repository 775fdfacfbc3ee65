"""Durable state: one :class:`Store` interface, implementations picked by URL scheme."""

from __future__ import annotations

from ..urls import implementation_for
from .base import Store
from .execution_records import (
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from .records import (
    ACTIVE,
    TERMINAL,
    ApiKeyRecord,
    GrantRecord,
    SessionFilter,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
)

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "ApiKeyRecord",
    "ExecutionFilter",
    "ExecutionRecord",
    "ExecutionStatus",
    "GrantRecord",
    "HistoryRecord",
    "OperationRecord",
    "OperationStatus",
    "OperationType",
    "OperationUpdate",
    "SessionFilter",
    "SessionRecord",
    "StatementFilter",
    "StatementRecord",
    "StatementStatus",
    "Store",
    "store_from_url",
]

_IMPLEMENTATIONS = {
    "sqlite": "sqltide.store.sqlite:SQLiteStore",
    "postgresql": "sqltide.store.postgres:PostgresStore",
    "postgres": "sqltide.store.postgres:PostgresStore",
}


def store_from_url(url: str) -> Store:
    """The state store for a URL; the implementation is imported only when used."""
    store_cls: type[Store] = implementation_for("store", url, _IMPLEMENTATIONS)
    return store_cls(url)
