"""File storage: one :class:`Storage` interface, implementations picked by URL scheme."""

from __future__ import annotations

import importlib

from ..urls import scheme_of, unknown_scheme
from .base import Storage

__all__ = ["Storage", "storage_from_url"]

_IMPLEMENTATIONS = {
    "file": "sqltide.storage.local:LocalStorage",
}


def storage_from_url(url: str, secret: bytes = b"") -> Storage:
    scheme = scheme_of(url)
    target = _IMPLEMENTATIONS.get(scheme)
    if target is None:
        raise unknown_scheme("storage", scheme, list(_IMPLEMENTATIONS))
    module, cls = target.split(":")
    storage_cls: type[Storage] = getattr(importlib.import_module(module), cls)
    return storage_cls(url, secret)
