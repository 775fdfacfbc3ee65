"""The one interface for files: results, uploads and exports.

Keys are ``/``-separated relative paths (``results/<id>/0/chunk-00000.arrow``). Writers stream:
nothing needs the whole file in memory, and a file becomes visible only when its writer closes
without error, so a crash never leaves a half-written file under its real key.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO


class Storage(abc.ABC):
    scheme: str = ""

    def __init__(self, url: str, secret: bytes = b""):
        self.url = url
        self.secret = secret

    @abc.abstractmethod
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A binary stream to write ``key``; the file appears when the block exits cleanly."""

    @abc.abstractmethod
    def reader(self, key: str) -> BinaryIO:
        """A seekable binary stream over ``key``; raises FileNotFoundError if absent."""

    @abc.abstractmethod
    def local_path(self, key: str) -> str | None:
        """A local file path for ``key`` when the storage has one (lets readers memory-map)."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[str]: ...

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many files went."""

    def signed_url(self, key: str, expires_in: float, base_url: str = "") -> str:
        """A URL that fetches ``key`` from the API until it expires, with no API key."""
        expires = int(time.time() + expires_in)
        return f"{base_url}/v1/files/{key}?expires={expires}&signature={self.sign(key, expires)}"

    def sign(self, key: str, expires: int) -> str:
        mac = hmac.new(self.secret, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def verify(self, key: str, expires: int, signature: str, now: float | None = None) -> bool:
        if (now if now is not None else time.time()) > expires:
            return False
        return hmac.compare_digest(self.sign(key, expires), signature)
