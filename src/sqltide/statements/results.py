"""Statement results: streamed to chunk files as they arrive, read back one page at a time.

A result is a list of Arrow IPC *file* format chunks under one key prefix
(``results/<id>/0/chunk-00000.arrow``, ``chunk-00001.arrow``, …) plus a :class:`ResultManifest`
(stored on the statement) that records the rows of every record batch of every chunk. Writing
holds one record batch at a time; reading locates a page's position from the manifest and
loads only the record batches that page needs, memory-mapped when the storage has local
files. A page's next token is an opaque signed position (:mod:`.result_tokens`).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

import orjson
import pyarrow as pa

from ..engines.base import ColumnMeta
from ..errors import InvalidNextToken, InvalidRequest, ResultExpired
from ..storage.base import Storage
from .result_tokens import TokenSigner
from .result_values import csv_header, csv_part, guess_rows, json_bytes, json_part

__all__ = [
    "ChunkInfo",
    "Page",
    "ResultManifest",
    "ResultReader",
    "ResultWriter",
    "TokenSigner",
    "json_bytes",
    "write_result",
]

Format = Literal["json", "csv", "arrow"]
Position = tuple[int, int, int]  # (chunk, batch in chunk, row offset in batch)


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One chunk file: its key, rows, size and the rows of each of its record batches."""

    key: str
    rows: int
    bytes: int
    batch_rows: list[int]
    #: The whole Arrow IPC file, for a small result kept in the manifest instead of a file.
    data: builtins.bytes | None = None


@dataclass(frozen=True, slots=True)
class ResultManifest:
    """Where a result's rows are: columns, chunks, total rows and bytes."""

    columns: list[dict[str, Any]]
    chunks: list[ChunkInfo]
    rows: int
    bytes: int

    def to_json(self) -> str:
        """Compact JSON for the statement's ``result_meta`` column."""
        return orjson.dumps(
            {
                "v": 1,
                "columns": self.columns,
                "chunks": [
                    [c.key, c.rows, c.bytes, c.batch_rows]
                    + ([base64.b64encode(c.data).decode()] if c.data is not None else [])
                    for c in self.chunks
                ],
                "rows": self.rows,
                "bytes": self.bytes,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str | builtins.bytes) -> ResultManifest:
        """The manifest :meth:`to_json` wrote."""
        data = orjson.loads(text)
        chunks = [
            ChunkInfo(
                key=entry[0],
                rows=entry[1],
                bytes=entry[2],
                batch_rows=list(entry[3]),
                data=base64.b64decode(entry[4]) if len(entry) > 4 else None,
            )
            for entry in data["chunks"]
        ]
        return cls(
            columns=list(data["columns"]),
            chunks=chunks,
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
        )


def _columns_of(schema: pa.Schema, columns: Sequence[ColumnMeta | dict] | None) -> list[dict]:
    if columns is not None:
        return [c.to_dict() if isinstance(c, ColumnMeta) else dict(c) for c in columns]
    return [ColumnMeta(f.name, str(f.type), f.nullable).to_dict() for f in schema]


class ResultWriter:
    """Writes one result's record batches to chunk files as they come.

    A chunk is closed (and becomes visible in storage) once its size passes ``chunk_bytes``;
    the next batch starts a new one. Only the batch being written is in memory. The key prefix
    belongs to the writer: :meth:`abort` deletes everything under it.
    """

    def __init__(
        self,
        storage: Storage,
        key_prefix: str,
        schema: pa.Schema,
        *,
        chunk_bytes: int,
        columns: Sequence[ColumnMeta | dict] | None = None,
        inline_bytes: int = 0,
    ):
        self.storage = storage
        #: A first chunk that stays under this size is kept in memory and ends up inline in
        #: the manifest: small results (most of them) cost no file at all.
        self.inline_bytes = inline_bytes
        self.key_prefix = key_prefix.rstrip("/")
        self.schema = schema
        self.chunk_bytes = chunk_bytes
        self.columns = _columns_of(schema, columns)
        self.rows = 0
        self._chunks: list[ChunkInfo] = []
        self._closed = False
        # The open chunk: storage context, Arrow sink and IPC writer, rows per batch.
        self._cm: AbstractContextManager[BinaryIO] | None = None
        self._sink: pa.PythonFile | None = None
        self._ipc: pa.ipc.RecordBatchFileWriter | None = None
        self._batch_rows: list[int] = []

    def _key(self, n: int) -> str:
        return f"{self.key_prefix}/chunk-{n:05d}.arrow"

    def _open_chunk(self) -> None:
        if not self._chunks and self.inline_bytes > 0:
            self._sink = pa.BufferOutputStream()
            self._ipc = pa.ipc.new_file(self._sink, self.schema)
            self._batch_rows = []
            return
        self._cm = self.storage.writer(self._key(len(self._chunks)))
        fh = self._cm.__enter__()
        try:
            self._sink = pa.PythonFile(fh, mode="w")
            self._ipc = pa.ipc.new_file(self._sink, self.schema)
        except BaseException as exc:
            self._discard_chunk(exc)
            raise
        self._batch_rows = []

    def _close_memory_chunk(self, keep_inline: bool) -> None:
        """Finish the in-memory first chunk: inline in the manifest, or spilled to a file."""
        assert isinstance(self._sink, pa.BufferOutputStream) and self._ipc is not None
        self._ipc.close()
        data = self._sink.getvalue().to_pybytes()
        self._ipc = self._sink = None
        rows = sum(self._batch_rows)
        key = self._key(0)
        if not keep_inline:
            with self.storage.writer(key) as fh:
                fh.write(data)
        self._chunks.append(
            ChunkInfo(key, rows, len(data), self._batch_rows, data if keep_inline else None)
        )
        self._batch_rows = []

    def _close_chunk(self) -> None:
        if self._cm is None and isinstance(self._sink, pa.BufferOutputStream):
            self._close_memory_chunk(keep_inline=False)
            return
        assert self._cm is not None and self._ipc is not None and self._sink is not None
        self._ipc.close()
        size = self._sink.tell()
        cm, self._cm, self._ipc, self._sink = self._cm, None, None, None
        cm.__exit__(None, None, None)
        rows = sum(self._batch_rows)
        self._chunks.append(ChunkInfo(self._key(len(self._chunks)), rows, size, self._batch_rows))
        self._batch_rows = []

    def _discard_chunk(self, exc: BaseException) -> None:
        cm, self._cm, self._ipc, self._sink = self._cm, None, None, None
        if cm is not None:
            # The storage re-raises what we threw in to make it drop the file; nothing to add.
            with contextlib.suppress(BaseException):
                cm.__exit__(type(exc), exc, exc.__traceback__)

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one record batch (empty batches are skipped)."""
        if self._closed:
            raise RuntimeError("result writer is closed")
        if batch.num_rows == 0:
            return
        if self._ipc is None:
            self._open_chunk()
        assert self._ipc is not None and self._sink is not None
        self._ipc.write_batch(batch)
        self._batch_rows.append(batch.num_rows)
        self.rows += batch.num_rows
        if self._cm is None and isinstance(self._sink, pa.BufferOutputStream):
            if self._sink.tell() > self.inline_bytes:
                self._close_chunk()  # too big to keep inline: becomes chunk file 0
        elif self._sink.tell() > self.chunk_bytes:
            self._close_chunk()

    def close(self) -> ResultManifest:
        """Finish the last chunk and return the manifest (an empty result gets one empty
        chunk, so its columns stay readable)."""
        if self._closed:
            raise RuntimeError("result writer is closed")
        if self._ipc is None and not self._chunks:
            self._open_chunk()
        if self._cm is None and isinstance(self._sink, pa.BufferOutputStream):
            self._close_memory_chunk(keep_inline=True)
        elif self._ipc is not None:
            self._close_chunk()
        self._closed = True
        return ResultManifest(
            columns=self.columns,
            chunks=list(self._chunks),
            rows=self.rows,
            bytes=sum(c.bytes for c in self._chunks),
        )

    def abort(self) -> None:
        """Drop the open chunk and delete every file written under the key prefix."""
        self._closed = True
        self._discard_chunk(RuntimeError("result writing aborted"))
        self.storage.delete_prefix(self.key_prefix)


def write_result(
    storage: Storage,
    key_prefix: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    columns: Sequence[ColumnMeta | dict] | None,
    chunk_bytes: int,
    on_batch: Callable[[int], None] | None = None,
    inline_bytes: int = 0,
) -> ResultManifest:
    """Write a whole result from an iterator of batches and return its manifest.

    ``on_batch(rows_so_far)`` runs after each batch (to check for cancellation: it may raise).
    On any exception, from the batches or from ``on_batch``, the files written so far are
    deleted and the exception propagates.
    """
    writer = ResultWriter(
        storage,
        key_prefix,
        schema,
        chunk_bytes=chunk_bytes,
        columns=columns,
        inline_bytes=inline_bytes,
    )
    try:
        for batch in batches:
            writer.write(batch)
            if on_batch is not None:
                on_batch(writer.rows)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a result: ``rows`` (JSON), ``csv`` (CSV) or ``arrow`` (an IPC stream)."""

    row_count: int
    total_rows: int
    next_token: str | None
    rows: list[list[Any]] | None = None
    csv: bytes | None = None
    #: ``rows`` already serialized as a JSON array; ``orjson.Fragment(page.rows_json)`` in
    #: the answer's dict spares serializing the rows twice.
    rows_json: bytes | None = None
    #: The result's columns (``ColumnMeta.to_dict()`` each), as the manifest has them.
    columns: list[dict[str, Any]] = field(default_factory=list)
    #: The page as an Arrow IPC stream (schema, then the page's record batches).
    arrow: bytes | None = None


class _Chunks:
    """The chunk files a page reads, opened one at a time."""

    def __init__(self, storage: Storage, manifest: ResultManifest):
        self.storage = storage
        self.manifest = manifest
        self.index = -1
        self.file: pa.ipc.RecordBatchFileReader | None = None
        self._source: Any = None

    def get(self, chunk: int) -> pa.ipc.RecordBatchFileReader:
        if chunk != self.index or self.file is None:
            self.close()
            info = self.manifest.chunks[chunk]
            key = info.key
            if info.data is not None:
                self._source = pa.BufferReader(info.data)
                self.file = pa.ipc.open_file(self._source)
                self.index = chunk
                return self.file
            try:
                path = self.storage.local_path(key)
                self._source = pa.memory_map(path) if path else self.storage.reader(key)
                self.file = pa.ipc.open_file(self._source)
            except FileNotFoundError:
                self.close()
                raise ResultExpired(
                    "the result's files are gone (past retention); run the statement again",
                    details={"key": key},
                ) from None
            self.index = chunk
        return self.file

    def close(self) -> None:
        source, self._source, self.file, self.index = self._source, None, None, -1
        if source is not None:
            source.close()


class ResultReader:
    """Reads one stored result page by page; ``result_key`` binds next tokens to it."""

    def __init__(
        self, storage: Storage, manifest: ResultManifest, signer: TokenSigner, result_key: str
    ):
        self.storage = storage
        self.manifest = manifest
        self.signer = signer
        self.result_key = result_key

    @property
    def columns(self) -> list[dict[str, Any]]:
        return self.manifest.columns

    @property
    def in_memory(self) -> bool:
        """True when every chunk is inline: pages are read without touching files."""
        return all(c.data is not None for c in self.manifest.chunks)

    def _skip_empty(self, pos: Position) -> Position | None:
        """The first position at or after ``pos`` that has a row, or None at the end."""
        chunk, batch, offset = pos
        chunks = self.manifest.chunks
        while chunk < len(chunks):
            batch_rows = chunks[chunk].batch_rows
            while batch < len(batch_rows):
                if offset < batch_rows[batch]:
                    return chunk, batch, offset
                batch, offset = batch + 1, 0
            chunk, batch, offset = chunk + 1, 0, 0
        return None

    def _start(self, next_token: str | None, fmt: str) -> Position | None:
        if next_token is None:
            return self._skip_empty((0, 0, 0))
        chunk, batch, offset = self.signer.decode(next_token, self.result_key, fmt)
        chunks = self.manifest.chunks
        if (
            chunk >= len(chunks)
            or batch >= len(chunks[chunk].batch_rows)
            or offset >= chunks[chunk].batch_rows[batch]
        ):
            raise InvalidNextToken(details={"reason": "out_of_range"})
        return chunk, batch, offset

    def page(
        self,
        next_token: str | None = None,
        *,
        fmt: Format = "json",
        max_rows: int = 10_000,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> Page:
        """The page starting at ``next_token`` (the first page without one).

        A page has at most ``max_rows`` rows and, past its first row, stops before its
        serialized rows would exceed ``max_bytes``. CSV pages carry the header line only when
        they start the result, so the pages concatenate into one CSV file.
        """
        if fmt not in ("json", "csv", "arrow"):
            raise InvalidRequest(f"unknown result format {fmt!r}; use json, csv or arrow")
        pos = self._start(next_token, fmt)
        max_rows = max(1, max_rows)
        files = _Chunks(self.storage, self.manifest)
        if fmt == "arrow":
            return self._arrow_page(pos, files, max_rows, max_bytes)
        rows: list[list[Any]] = []
        json_parts: list[bytes] = []
        csv_parts: list[bytes] = []
        used = 2 if fmt == "json" else 0  # the JSON array's brackets
        try:
            if fmt == "csv" and next_token is None:
                header = csv_header(files.get(0).schema)
                csv_parts.append(header)
                used += len(header)
            elif pos is None:
                files.get(0)  # an empty result: still tells an expired result apart
            count = 0
            while pos is not None and count < max_rows and (count == 0 or used < max_bytes):
                chunk, batch_no, offset = pos
                batch = files.get(chunk).get_batch(batch_no)
                take = min(
                    self.manifest.chunks[chunk].batch_rows[batch_no] - offset, max_rows - count
                )
                part = batch.slice(offset, guess_rows(batch.slice(offset, take), max_bytes - used))
                if fmt == "json":
                    n, size, blob, part_rows = json_part(part, max_bytes - used, count == 0)
                    if n:
                        json_parts.append(blob)
                        rows.extend(part_rows)
                else:
                    n, size, blob = csv_part(part, max_bytes - used, count == 0)
                    if n:
                        csv_parts.append(blob)
                count += n
                used += size
                if n:
                    pos = self._skip_empty((chunk, batch_no, offset + n))
                if n < len(part):
                    break  # the byte budget is spent
        finally:
            files.close()
        token = None if pos is None else self.signer.encode(self.result_key, *pos, fmt)
        if fmt == "csv":
            return Page(
                count, self.manifest.rows, token, csv=b"".join(csv_parts), columns=self.columns
            )
        return Page(
            count,
            self.manifest.rows,
            token,
            rows=rows,
            rows_json=b"[" + b",".join(json_parts) + b"]",
            columns=self.columns,
        )

    @contextlib.contextmanager
    def parts(
        self,
        next_token: str | None = None,
        *,
        fmt: str,
        max_rows: int = 10_000,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> Iterator[tuple[pa.Schema, Iterator[tuple[Position, pa.RecordBatch]]]]:
        """The page starting at ``next_token`` as it is stored: the result's schema and the
        record batch slices of the page, each with the position it starts at (at most
        ``max_rows`` rows and, past the first slice, ``max_bytes`` of Arrow buffers).

        For a face that writes its own form of the rows (the Data API's Field unions): the
        slices may live in a memory-mapped file, so use them inside the ``with`` block only.
        ``fmt`` names that form; tokens are bound to it (:meth:`token_after`).
        """
        pos = self._start(next_token, fmt)
        files = _Chunks(self.storage, self.manifest)
        try:
            schema = files.get(pos[0] if pos else 0).schema
            yield schema, self._slices(pos, files, max(1, max_rows), max_bytes)
        finally:
            files.close()

    def token_after(self, position: Position, rows: int, fmt: str) -> str | None:
        """The next token of the page that starts ``rows`` rows after ``position`` (a slice's
        position from :meth:`parts`), or None when the result ends there."""
        chunk, batch, offset = position
        pos = self._skip_empty((chunk, batch, offset + rows))
        return None if pos is None else self.signer.encode(self.result_key, *pos, fmt)

    def _slices(
        self, pos: Position | None, files: _Chunks, max_rows: int, max_bytes: int
    ) -> Iterator[tuple[Position, pa.RecordBatch]]:
        count = used = 0
        while pos is not None and count < max_rows and (count == 0 or used < max_bytes):
            chunk, batch_no, offset = pos
            batch = files.get(chunk).get_batch(batch_no)
            take = min(self.manifest.chunks[chunk].batch_rows[batch_no] - offset, max_rows - count)
            part = batch.slice(offset, guess_rows(batch.slice(offset, take), max_bytes - used))
            if count and part.nbytes > max_bytes - used:
                return
            yield pos, part
            count += part.num_rows
            used += part.nbytes
            pos = self._skip_empty((chunk, batch_no, offset + part.num_rows))

    def _arrow_page(
        self, pos: Position | None, files: _Chunks, max_rows: int, max_bytes: int
    ) -> Page:
        """An Arrow IPC stream of the page's record batch slices: no conversion at all."""
        sink = pa.BufferOutputStream()
        count = 0
        last: tuple[Position, int] | None = None
        try:
            writer = pa.ipc.new_stream(sink, files.get(pos[0] if pos else 0).schema)
            for start, part in self._slices(pos, files, max_rows, max_bytes):
                writer.write_batch(part)
                count += part.num_rows
                last = (start, part.num_rows)
            writer.close()
        finally:
            files.close()
        token = None if last is None else self.token_after(*last, "arrow")
        return Page(
            count,
            self.manifest.rows,
            token,
            arrow=sink.getvalue().to_pybytes(),
            columns=self.columns,
        )
