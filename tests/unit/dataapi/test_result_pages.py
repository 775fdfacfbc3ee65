"""Data API result pages over stored results (real chunk files): the rows and bytes a page
holds, where its NextToken resumes, and what the token is bound to."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import orjson
import pytest

from sqltide.dataapi.results import CSV_FORM, JSON_FORM, _csv_page, _json_page
from sqltide.errors import InvalidNextToken
from sqltide.statements.results import ResultReader, TokenSigner, write_result
from sqltide.storage.local import LocalStorage

SIGNER = TokenSigner(b"test-secret")


def stored(
    tmp_path: Path, sql: str, *, batch_rows: int = 64, chunk_bytes: int = 8192
) -> ResultReader:
    """A result written as sqltide writes it: several record batches in several chunk files."""
    storage = LocalStorage(f"file:///{tmp_path / 'files'}")
    arrow = duckdb.connect().sql(sql).to_arrow_reader(batch_rows)
    manifest = write_result(storage, "results/s/0", arrow.schema, arrow, None, chunk_bytes)
    assert len(manifest.chunks) > 1
    return ResultReader(storage, manifest, SIGNER, "s")


def call(rows: int, max_bytes: int) -> Any:
    settings = SimpleNamespace(page_max_rows=rows, page_max_bytes=max_bytes)
    return SimpleNamespace(runtime=SimpleNamespace(settings=settings))


def all_pages(page: Any, reader: ResultReader, c: Any) -> list[dict[str, Any]]:
    pages = [page(c, reader, None)]
    while "NextToken" in pages[-1]:
        pages.append(page(c, reader, pages[-1]["NextToken"]))
        assert len(pages) < 1000
    return pages


SQL = "SELECT i, 'row ' || i AS label FROM range(1000) t(i)"


@pytest.mark.parametrize(
    ("rows", "max_bytes"), [(1000, 1 << 20), (100, 1 << 20), (1000, 4096), (7, 300)]
)
def test_json_pages_cover_the_result_once_within_their_limits(
    tmp_path: Path, rows: int, max_bytes: int
) -> None:
    reader = stored(tmp_path, SQL)
    pages = all_pages(_json_page, reader, call(rows, max_bytes))
    values = []
    for page in pages:
        records = orjson.loads(orjson.dumps(page["Records"]))
        assert 1 <= len(records) <= rows
        assert len(orjson.dumps(page["Records"])) <= max_bytes or len(records) == 1
        assert page["TotalNumRows"] == 1000
        values += [r[0]["longValue"] for r in records]
    assert values == list(range(1000))
    assert len(pages) >= max(1000 // rows, 1)


@pytest.mark.parametrize(("rows", "max_bytes"), [(1000, 1 << 20), (100, 1 << 20), (1000, 2048)])
def test_csv_pages_cover_the_result_once_within_their_limits(
    tmp_path: Path, rows: int, max_bytes: int
) -> None:
    reader = stored(tmp_path, SQL)
    pages = all_pages(_csv_page, reader, call(rows, max_bytes))
    text = ""
    for page in pages:
        piece = "".join(r["CSVRecords"] for r in page["Records"])
        assert len(piece.encode()) <= max_bytes
        assert 1 <= piece.count("\r\n") <= rows
        text += piece
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        [str(i), f"row {i}"] for i in range(1000)
    ]


def test_a_row_larger_than_the_budget_still_makes_a_page(tmp_path: Path) -> None:
    reader = stored(tmp_path, "SELECT i, repeat('x', 3000) AS wide FROM range(300) t(i)")
    pages = all_pages(_json_page, reader, call(100, 1024))
    assert [len(orjson.loads(orjson.dumps(p["Records"]))) for p in pages] == [1] * 300


def test_tokens_belong_to_their_form_and_result(tmp_path: Path) -> None:
    reader = stored(tmp_path, SQL)
    token = _json_page(call(10, 1 << 20), reader, None)["NextToken"]
    with pytest.raises(InvalidNextToken):
        _csv_page(call(10, 1 << 20), reader, token)
    with pytest.raises(InvalidNextToken):
        reader.page(token, fmt="json")  # /v1's pages take none of the Data API's tokens
    other = ResultReader(reader.storage, reader.manifest, SIGNER, "another-statement")
    with pytest.raises(InvalidNextToken):
        _json_page(call(10, 1 << 20), other, token)


def test_parts_and_token_after(tmp_path: Path) -> None:
    reader = stored(tmp_path, SQL)
    with reader.parts(None, fmt=JSON_FORM, max_rows=150) as (schema, parts):
        got = [(start, part.num_rows) for start, part in parts]
    assert schema.names == ["i", "label"]
    assert sum(n for _, n in got) == 150
    start, n = got[-1]
    token = reader.token_after(start, n, JSON_FORM)
    with reader.parts(token, fmt=JSON_FORM, max_rows=1) as (_, parts):
        (_, part), *_ = list(parts)
        assert part.column(0).to_pylist() == [150]
    last = reader.manifest
    end = (len(last.chunks) - 1, len(last.chunks[-1].batch_rows) - 1, 0)
    assert reader.token_after(end, last.chunks[-1].batch_rows[-1], CSV_FORM) is None
