"""Durable state: one :class:`Store` interface, implementations picked by URL scheme."""

from __future__ import annotations

import importlib

from ..urls import scheme_of, unknown_scheme
from .base import Store
from .records import (
    ACTIVE,
    TERMINAL,
    ApiKeyRecord,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
)

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "ApiKeyRecord",
    "SessionRecord",
    "StatementFilter",
    "StatementRecord",
    "StatementStatus",
    "Store",
    "store_from_url",
]

_IMPLEMENTATIONS = {
    "sqlite": "sqltide.store.sqlite:SQLiteStore",
}


def store_from_url(url: str) -> Store:
    """The state store for a URL; the implementation is imported only when used."""
    scheme = scheme_of(url)
    target = _IMPLEMENTATIONS.get(scheme)
    if target is None:
        raise unknown_scheme("store", scheme, list(_IMPLEMENTATIONS))
    module, cls = target.split(":")
    store_cls: type[Store] = getattr(importlib.import_module(module), cls)
    return store_cls(url)
