"""Result storage: chunked Arrow files, paged JSON/CSV reading and signed next tokens."""

from __future__ import annotations

import base64
import math
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from sqltide.engines.base import ColumnMeta
from sqltide.errors import InvalidNextToken, ResultExpired
from sqltide.statements.result_values import to_json_rows
from sqltide.statements.results import (
    Page,
    ResultManifest,
    ResultReader,
    ResultWriter,
    TokenSigner,
    json_bytes,
    write_result,
)
from sqltide.storage.local import LocalStorage

SIGNER = TokenSigner(b"test-secret")
PREFIX = "results/stmt/0"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(f"file:///{tmp_path / 'files'}")


def arrow_reader(sql: str, batch_rows: int = 1000) -> pa.RecordBatchReader:
    return duckdb.connect().sql(sql).to_arrow_reader(batch_rows)


def store(
    storage: LocalStorage, sql: str, *, batch_rows: int = 1000, chunk_bytes: int = 1 << 20
) -> ResultManifest:
    reader = arrow_reader(sql, batch_rows)
    return write_result(storage, PREFIX, reader.schema, reader, None, chunk_bytes)


def read_all(reader: ResultReader, fmt: str = "json", **limits: Any) -> list[Page]:
    pages = [reader.page(None, fmt=fmt, **limits)]
    while pages[-1].next_token is not None:
        pages.append(reader.page(pages[-1].next_token, fmt=fmt, **limits))
        assert len(pages) < 100_000
    return pages


def all_rows(pages: list[Page]) -> list[list[Any]]:
    return [row for page in pages for row in page.rows or []]


def open_files(under: Path) -> list[str]:
    """The files under ``under`` this process has open (only those: other tests' threads
    may open and close files of their own meanwhile)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        return []
    found = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed since listed
            continue
        if target.startswith(str(under)):
            found.append(target)
    return sorted(found)


def result_reader(storage: LocalStorage, manifest: ResultManifest, key: str = "stmt"):
    return ResultReader(storage, ResultManifest.from_json(manifest.to_json()), SIGNER, key)


# -- values -------------------------------------------------------------------------------------

TYPES_SQL = """
SELECT * FROM (VALUES
 (1, 9007199254740993::BIGINT, 'NaN'::DOUBLE, 12345.6789::DECIMAL(18,4), 'héllo "q"', true,
  DATE '2024-02-29', TIMESTAMP '2024-01-02 03:04:05.123456',
  TIMESTAMPTZ '2024-01-02 03:04:05+00', '\\x00\\xFF'::BLOB, [1, 2, NULL], {'a': 1, 'b': 'x'},
  MAP {'k': 1.5::DOUBLE}, 0.1::FLOAT, TIME '12:34:56', INTERVAL 3 DAY,
  170141183460469231731687303715884105727::HUGEINT, 255::UTINYINT),
 (2, -9007199254740993::BIGINT, 'Infinity'::DOUBLE, -0.5::DECIMAL(18,4), '', false,
  DATE '1970-01-01', TIMESTAMP '1999-12-31 23:59:59', TIMESTAMPTZ '2000-01-01 00:00:00+00',
  ''::BLOB, [], {'a': NULL, 'b': NULL}, MAP {}, '-Infinity'::FLOAT, TIME '00:00:00',
  INTERVAL 14 MONTH, 0::HUGEINT, 0::UTINYINT),
 (3, 9007199254740992::BIGINT, 2.5::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL)
) t(i, big, d, dec, s, b, dt, ts, tstz, bl, l, st, m, f, tm, iv, huge, u8)
"""

TYPES_EXPECTED = [
    [
        1, "9007199254740993", "NaN", "12345.6789", 'héllo "q"', True, "2024-02-29",
        "2024-01-02T03:04:05.123456", "2024-01-02T03:04:05.000000Z",
        base64.b64encode(b"\x00\xff").decode(), [1, 2, None], {"a": 1, "b": "x"}, {"k": 1.5},
        0.1, "12:34:56.000000", "P3D", "170141183460469231731687303715884105727", 255,
    ],
    [
        2, "-9007199254740993", "Infinity", "-0.5000", "", False, "1970-01-01",
        "1999-12-31T23:59:59.000000", "2000-01-01T00:00:00.000000Z", "", [],
        {"a": None, "b": None}, {}, "-Infinity", "00:00:00.000000", "P1Y2M", 0, 0,
    ],
    [3, 9007199254740992, 2.5] + [None] * 15,
    [None] * 18,
]  # fmt: skip


def test_round_trip_of_many_types(storage: LocalStorage) -> None:
    manifest = store(storage, TYPES_SQL, batch_rows=1, chunk_bytes=1)
    assert manifest.rows == 4
    assert len(manifest.chunks) == 4  # every batch passes chunk_bytes=1: one chunk each
    pages = read_all(result_reader(storage, manifest), max_rows=3)
    assert [p.row_count for p in pages] == [3, 1]
    assert all_rows(pages) == TYPES_EXPECTED
    assert orjson.loads(json_bytes(all_rows(pages))) == TYPES_EXPECTED


def test_page_rows_json_matches_rows(storage: LocalStorage) -> None:
    manifest = store(storage, TYPES_SQL, batch_rows=2)
    page = result_reader(storage, manifest).page(None, max_rows=10)
    assert page.rows_json is not None and orjson.loads(page.rows_json) == TYPES_EXPECTED
    body = json_bytes({"rows": orjson.Fragment(page.rows_json), "total_rows": page.total_rows})
    assert orjson.loads(body) == {"rows": TYPES_EXPECTED, "total_rows": 4}


def test_integer_limits_and_floats() -> None:
    limit = 2**53
    batch = pa.RecordBatch.from_pydict(
        {
            "i64": pa.array([limit, limit + 1, -limit, -limit - 1, None, 0], pa.int64()),
            "u64": pa.array([limit, limit + 1, 2**64 - 1, None, 0, 1], pa.uint64()),
            "f64": pa.array([math.nan, math.inf, -math.inf, None, 1.25, -0.0], pa.float64()),
            "f32": pa.array([0.1, math.nan, None, 3.0, -math.inf, 1e-3], pa.float32()),
        }
    )
    cols = list(zip(*to_json_rows(batch), strict=True))
    assert list(cols[0]) == [limit, str(limit + 1), -limit, str(-limit - 1), None, 0]
    assert list(cols[1]) == [limit, str(limit + 1), str(2**64 - 1), None, 0, 1]
    assert list(cols[2]) == ["NaN", "Infinity", "-Infinity", None, 1.25, -0.0]
    assert list(cols[3]) == [0.1, "NaN", None, 3.0, "-Infinity", 0.001]


def test_timestamps_keep_their_zone() -> None:
    instant = 1_700_000_000_123_456
    batch = pa.RecordBatch.from_pydict(
        {
            "naive": pa.array([instant], pa.timestamp("us")),
            "utc": pa.array([instant], pa.timestamp("us", "Etc/UTC")),
            "paris": pa.array([instant], pa.timestamp("us", "Europe/Paris")),
            "secs": pa.array([instant // 10**6], pa.timestamp("s", "UTC")),
        }
    )
    assert to_json_rows(batch) == [
        [
            "2023-11-14T22:13:20.123456",
            "2023-11-14T22:13:20.123456Z",
            "2023-11-14T23:13:20.123456+01:00",
            "2023-11-14T22:13:20Z",
        ]
    ]


# -- writing ------------------------------------------------------------------------------------


def test_writer_rolls_chunks_and_records_batches(storage: LocalStorage, tmp_path: Path) -> None:
    manifest = store(
        storage, "SELECT range AS i, 'row ' || range AS s FROM range(5000)", batch_rows=300,
        chunk_bytes=8000,
    )  # fmt: skip
    assert manifest.rows == 5000
    assert len(manifest.chunks) > 3
    assert [c.key for c in manifest.chunks] == [
        f"{PREFIX}/chunk-{n:05d}.arrow" for n in range(len(manifest.chunks))
    ]
    for chunk in manifest.chunks[:-1]:
        assert chunk.bytes > 8000
    for chunk in manifest.chunks:
        path = Path(storage.local_path(chunk.key) or "")
        assert path.stat().st_size == chunk.bytes
        with pa.memory_map(str(path)) as source:
            file = pa.ipc.open_file(source)
            counts = [file.get_batch(i).num_rows for i in range(file.num_record_batches)]
        assert counts == chunk.batch_rows
        assert sum(counts) == chunk.rows
    assert sum(c.rows for c in manifest.chunks) == 5000
    assert manifest.bytes == sum(c.bytes for c in manifest.chunks)
    assert manifest.columns == [
        ColumnMeta("i", "int64", True).to_dict(),
        ColumnMeta("s", "string", True).to_dict(),
    ]
    assert not list((tmp_path / "files").rglob(".tmp-*"))


def test_manifest_json_round_trip(storage: LocalStorage) -> None:
    reader = arrow_reader("SELECT 1 AS a")
    columns = [ColumnMeta("a", "INTEGER", precision=None)]
    manifest = write_result(storage, PREFIX, reader.schema, reader, columns, 1 << 20)
    text = manifest.to_json()
    assert " " not in text and isinstance(text, str)
    assert ResultManifest.from_json(text) == manifest
    assert manifest.columns == [columns[0].to_dict()]


def test_abort_deletes_what_was_written(storage: LocalStorage) -> None:
    reader = arrow_reader("SELECT range AS i FROM range(10000)", 1000)
    writer = ResultWriter(storage, PREFIX, reader.schema, chunk_bytes=4000)
    for batch in reader:
        writer.write(batch)
    assert list(storage.list(PREFIX))
    writer.abort()
    assert not list(storage.list("results"))
    with pytest.raises(RuntimeError):
        writer.write(batch)


def test_write_result_aborts_when_the_batches_fail(storage: LocalStorage) -> None:
    reader = arrow_reader("SELECT range AS i FROM range(10000)", 1000)

    def failing() -> Iterator[pa.RecordBatch]:
        for n, batch in enumerate(reader):
            if n == 5:
                raise RuntimeError("engine died")
            yield batch

    with pytest.raises(RuntimeError, match="engine died"):
        write_result(storage, PREFIX, reader.schema, failing(), None, 4000)
    assert not list(storage.list("results"))


def test_write_result_reports_progress_and_can_be_cancelled(storage: LocalStorage) -> None:
    seen: list[int] = []

    class Cancelled(Exception):
        pass

    def on_batch(rows: int) -> None:
        seen.append(rows)
        if rows >= 3000:
            raise Cancelled

    reader = arrow_reader("SELECT range AS i FROM range(10000)", 1000)
    with pytest.raises(Cancelled):
        write_result(storage, PREFIX, reader.schema, reader, None, 4000, on_batch=on_batch)
    assert seen == [1000, 2000, 3000]
    assert not list(storage.list("results"))


# -- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_rows", [1, 7, 250, 1000, 100_000])
def test_pages_concatenate_to_the_source_rows(storage: LocalStorage, max_rows: int) -> None:
    sql = "SELECT range AS i, 'v' || range AS s, range * 0.5 AS d FROM range(3000)"
    manifest = store(storage, sql, batch_rows=337, chunk_bytes=10_000)
    assert len(manifest.chunks) > 2
    root = Path(storage.root)
    assert open_files(root) == []
    pages = read_all(result_reader(storage, manifest), max_rows=max_rows)
    assert open_files(root) == []  # every page closes the chunk files it opened
    expected = [[i, f"v{i}", f"{i * 0.5:.1f}"] for i in range(3000)]
    assert all_rows(pages) == expected
    assert all(p.row_count == len(p.rows or []) <= max_rows for p in pages)
    assert all(p.total_rows == 3000 for p in pages)
    assert len(pages) == math.ceil(3000 / max_rows)
    assert pages[-1].next_token is None
    assert all(p.next_token for p in pages[:-1])


def test_max_bytes_bounds_json_pages(storage: LocalStorage) -> None:
    sql = "SELECT range AS i, repeat('x', 100) AS s FROM range(2000)"
    manifest = store(storage, sql, batch_rows=512, chunk_bytes=50_000)
    pages = read_all(result_reader(storage, manifest), max_rows=10_000, max_bytes=5000)
    assert all(len(p.rows_json or b"") <= 5000 for p in pages)
    assert all(p.row_count >= 40 for p in pages[:-1])  # about 115 bytes a row
    assert all_rows(pages) == [[i, "x" * 100] for i in range(2000)]


def test_a_row_larger_than_max_bytes_still_makes_a_page(storage: LocalStorage) -> None:
    manifest = store(storage, "SELECT range AS i, repeat('y', 3000) AS s FROM range(5)")
    for fmt in ("json", "csv"):
        pages = read_all(result_reader(storage, manifest), fmt, max_bytes=1000)
        assert [p.row_count for p in pages] == [1] * 5


def test_csv_pages_concatenate_to_one_csv(storage: LocalStorage) -> None:
    sql = (
        "SELECT range AS i, 'line ' || range || ', \"quoted\"' AS s, range / 3 AS d, "
        "range % 2 = 0 AS b, DATE '2024-01-01' + range::INT AS dt FROM range(2500)"
    )
    manifest = store(storage, sql, batch_rows=300, chunk_bytes=20_000)
    expected = pa.BufferOutputStream()
    pa_csv.write_csv(arrow_reader(sql).read_all(), expected)
    whole = expected.getvalue().to_pybytes()
    reader = result_reader(storage, manifest)
    for limits in ({"max_rows": 7}, {"max_rows": 1000}, {"max_bytes": 2000}):
        pages = read_all(reader, "csv", **limits)
        assert len(pages) > 1
        assert b"".join(p.csv or b"" for p in pages) == whole
        assert pages[0].csv is not None and pages[0].csv.startswith(b'"i","s","d","b","dt"\n')
        assert all(not (p.csv or b"").startswith(b'"i"') for p in pages[1:])
        if "max_bytes" in limits:
            assert all(len(p.csv or b"") <= 2000 for p in pages)


def test_csv_of_nested_binary_and_time_values(storage: LocalStorage) -> None:
    manifest = store(storage, TYPES_SQL, batch_rows=1)
    reader = result_reader(storage, manifest)
    whole = reader.page(None, fmt="csv").csv or b""
    assert b"".join(p.csv or b"" for p in read_all(reader, "csv", max_rows=1)) == whole
    lines = whole.decode().splitlines()
    assert lines[0].startswith('"i","big","d","dec","s"')
    assert '"2024-01-02T03:04:05.000000Z"' in lines[1]
    assert '"[1,2,null]"' in lines[1] and '"{""a"":1,""b"":""x""}"' in lines[1]
    assert '"AP8="' in lines[1]  # base64 of the blob
    assert len(lines) == 5


def test_empty_result(storage: LocalStorage) -> None:
    manifest = store(storage, "SELECT 1 AS a, 'x' AS b WHERE false")
    assert manifest.rows == 0 and manifest.bytes > 0
    assert len(manifest.chunks) == 1 and manifest.chunks[0].batch_rows == []
    assert [c["name"] for c in manifest.columns] == ["a", "b"]
    reader = result_reader(storage, manifest)
    page = reader.page(None)
    assert page.columns == manifest.columns
    assert (page.rows, page.row_count, page.next_token, page.total_rows) == ([], 0, None, 0)
    assert page.rows_json == b"[]"
    assert reader.page(None, fmt="csv").csv == b'"a","b"\n'


def test_storage_without_local_files_reads_through_streams(storage: LocalStorage) -> None:
    class RemoteLike(LocalStorage):
        def local_path(self, key: str) -> str | None:
            return None

    remote = RemoteLike(storage.url)
    manifest = store(
        storage, "SELECT range AS i FROM range(1000)", batch_rows=100, chunk_bytes=2000
    )
    pages = read_all(result_reader(remote, manifest), max_rows=64)
    assert all_rows(pages) == [[i] for i in range(1000)]


# -- tokens and expiry --------------------------------------------------------------------------


def test_token_round_trip() -> None:
    token = SIGNER.encode("stmt", 3, 14, 159, "json")
    assert SIGNER.decode(token, "stmt", "json") == (3, 14, 159)
    assert token.isascii() and " " not in token and len(token) < 80


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: "",
        lambda t: "garbage",
        lambda t: "not.base64!!",
        lambda t: t[: len(t) // 2],
        lambda t: t[:-2],
        lambda t: t + "A",
        lambda t: base64.urlsafe_b64encode(b"[0,0,1]").decode().rstrip("=") + t[t.index(".") :],
        lambda t: TokenSigner(b"other secret").encode("stmt", 0, 0, 5, "json"),
        lambda t: SIGNER.encode("other-statement", 0, 0, 5, "json"),
        lambda t: SIGNER.encode("stmt", 0, 0, 5, "csv"),
        lambda t: "é" * 30 + "." + "x" * 22,
        lambda t: "x" * 10_000,
    ],
)
def test_bad_tokens_are_rejected(storage: LocalStorage, mutate: Any) -> None:
    manifest = store(storage, "SELECT range AS i FROM range(100)")
    reader = result_reader(storage, manifest)
    good = reader.page(None, max_rows=5).next_token
    assert good is not None
    with pytest.raises(InvalidNextToken) as info:
        reader.page(mutate(good), max_rows=5)
    assert info.value.details["reason"] in {"malformed", "bad_signature"}
    assert info.value.code == "invalid_next_token"


def test_token_beyond_the_result_is_rejected(storage: LocalStorage) -> None:
    manifest = store(storage, "SELECT range AS i FROM range(100)", batch_rows=50)
    reader = result_reader(storage, manifest)
    for position in [(0, 0, 50), (0, 2, 0), (1, 0, 0), (7, 7, 7)]:
        with pytest.raises(InvalidNextToken) as info:
            reader.page(SIGNER.encode("stmt", *position, "json"))
        assert info.value.details == {"reason": "out_of_range"}


def test_missing_chunk_is_result_expired(storage: LocalStorage) -> None:
    manifest = store(
        storage, "SELECT range AS i FROM range(3000)", batch_rows=500, chunk_bytes=3000
    )
    assert len(manifest.chunks) >= 3
    reader = result_reader(storage, manifest)
    first = reader.page(None, max_rows=600)
    storage.delete_prefix(manifest.chunks[1].key)
    assert first.next_token is not None
    with pytest.raises(ResultExpired):
        reader.page(first.next_token, max_rows=600)
    storage.delete_prefix(PREFIX)
    with pytest.raises(ResultExpired):
        reader.page(None)
    empty = store(storage, "SELECT 1 AS a WHERE false")
    storage.delete_prefix(PREFIX)
    with pytest.raises(ResultExpired):
        result_reader(storage, empty).page(None, fmt="csv")


# -- scale --------------------------------------------------------------------------------------


def test_large_result_is_paged_in_bounded_memory(storage: LocalStorage) -> None:
    total = 2_000_000
    started = time.perf_counter()
    manifest = store(storage, f"SELECT range AS i FROM range({total})", batch_rows=16_384,
                     chunk_bytes=1 << 20)  # fmt: skip
    assert manifest.rows == total and len(manifest.chunks) > 10
    reader = result_reader(storage, manifest)
    arrow_before = pa.total_allocated_bytes()
    token, seen, pages, arrow_peak, python_peak = None, 0, 0, 0, 0
    tracemalloc.start()  # Python allocations of the first pages (tracing slows everything)
    try:
        while True:
            page = reader.page(token, max_rows=10_000)
            assert page.rows is not None and page.row_count == len(page.rows) <= 10_000
            assert page.rows[0] == [seen] and page.rows[-1] == [seen + page.row_count - 1]
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_before)
            seen, pages, token = seen + page.row_count, pages + 1, page.next_token
            del page
            if pages == 40:  # past three chunk boundaries
                python_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            if token is None:
                break
    finally:
        tracemalloc.stop()
    assert seen == total and pages == 200
    assert 0 < python_peak < manifest.bytes / 4, python_peak  # ~16 MB result, ~2 MB a page
    assert arrow_peak < manifest.bytes / 4, arrow_peak  # memory-mapped: next to nothing
    assert time.perf_counter() - started < 15


def test_tiny_byte_budget_still_makes_progress(storage: LocalStorage) -> None:
    manifest = store(storage, "SELECT range AS i, 'abc' AS s FROM range(20)", batch_rows=6)
    for fmt in ("json", "csv"):
        pages = read_all(result_reader(storage, manifest), fmt, max_bytes=1)
        assert [p.row_count for p in pages] == [1] * 20
    assert all_rows(read_all(result_reader(storage, manifest), max_bytes=1)) == [
        [i, "abc"] for i in range(20)
    ]
