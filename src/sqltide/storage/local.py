"""Files in a local folder (``file:///path``), the embedded default."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import InvalidRequest
from ..files import private_dir
from ..urls import path_of
from .base import Storage


class LocalStorage(Storage):
    scheme = "file"

    def __init__(self, url: str, secret: bytes = b""):
        super().__init__(url, secret)
        self.root = Path(path_of(url)).resolve()
        # Result files hold every principal's rows: the folder is the owner's alone (the
        # files in it are made 0600 by mkstemp, the folders below it 0700 by writer()).
        private_dir(self.root)

    def _path(self, key: str) -> Path:
        # Keys are made by sqltide, but signed URLs carry them back in: refuse any that
        # would leave the root (normpath is enough, no symlinks are ever created under it).
        norm = os.path.normpath(key) if key else "."
        if norm.startswith(("/", "..")) or "/../" in f"/{norm}/":
            raise InvalidRequest(f"file key escapes the storage root: {key!r}")
        return self.root / norm

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def reader(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield prefix
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix)
        if base.is_file():
            base.unlink()
            return 1
        if not base.exists() or (base == self.root and not prefix):
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base, ignore_errors=True)
        return count
