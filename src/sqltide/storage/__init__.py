"""File storage: one :class:`Storage` interface, implementations picked by URL scheme."""

from __future__ import annotations

from ..urls import implementation_for
from .base import Storage

__all__ = ["Storage", "storage_from_url"]

_IMPLEMENTATIONS = {
    "file": "sqltide.storage.local:LocalStorage",
}


def storage_from_url(url: str, secret: bytes = b"") -> Storage:
    """The file storage for a URL; the implementation is imported only when used."""
    storage_cls: type[Storage] = implementation_for("storage", url, _IMPLEMENTATIONS)
    return storage_cls(url, secret)
