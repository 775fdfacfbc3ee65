"""Arrow values as JSON-safe Python values and CSV-ready columns, converted column by column.

The JSON rules (docs/api.md): 64-bit integers within ±2^53 are numbers and strings beyond;
decimals with a fraction are strings (whole-number decimals such as HUGEINT sums are numbers when they fit in 64 bits); NaN and infinities are the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``; dates, times and timestamps are ISO 8601 strings (a UTC timestamp ends in
``Z``); binary is base64; lists are arrays and structs and maps are objects.

pyarrow does the work wherever it can (casts, ``strftime``, min/max checks) so that Python only
touches each value once, in ``to_pylist``. The ``*_part`` helpers serialize the rows of one
page piece and cut it to a byte budget.
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

__all__ = [
    "csv_bytes",
    "csv_header",
    "csv_part",
    "csv_ready",
    "guess_rows",
    "json_bytes",
    "json_part",
    "to_json_rows",
    "to_json_values",
]

_SAFE_INT = 2**53
_UTC_NAMES = frozenset(
    {"utc", "etc/utc", "z", "+00:00", "-00:00", "gmt", "etc/gmt", "uct", "etc/uct", "zulu"}
)
_UNIT_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def json_bytes(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON (orjson; an ``orjson.Fragment`` is spliced in as is)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def to_json_rows(batch: pa.RecordBatch) -> list[list[Any]]:
    """The rows of ``batch`` as lists of JSON-safe values."""
    if batch.num_columns == 0:
        return [[] for _ in range(batch.num_rows)]
    columns = [to_json_values(col) for col in batch.columns]
    return list(map(list, zip(*columns, strict=True)))


def to_json_values(arr: pa.Array) -> list[Any]:
    """The values of one Arrow array as JSON-safe Python values (``None`` for null)."""
    t = arr.type
    if isinstance(t, pa.ExtensionType):
        return _extension(arr)
    if pa.types.is_dictionary(t):
        values = to_json_values(arr.dictionary)
        return [None if i is None else values[i] for i in arr.indices.to_pylist()]
    if pa.types.is_null(t):
        return [None] * len(arr)
    if pa.types.is_decimal(t) and t.scale == 0:
        # Whole numbers (DuckDB's HUGEINT sums arrive as decimal(38, 0)) follow the integer
        # rule: a number when within 2^53, exact text beyond.
        return [
            None if v is None else int(v) if -_SAFE_INT <= v <= _SAFE_INT else str(v)
            for v in arr.to_pylist()
        ]
    text = _as_strings(arr)
    if text is not None:
        return text.to_pylist()
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.to_pylist()
    if pa.types.is_integer(t):
        return _integers(arr)
    if pa.types.is_floating(t):
        return _floats(arr)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _base64(arr)
    if _is_binary_view(t):
        return _base64(arr)
    if _is_string_view(t):
        return arr.to_pylist()
    if pa.types.is_map(t):
        return _maps(arr)
    if _is_list_like(t):
        return _lists(arr)
    if pa.types.is_struct(t):
        return _structs(arr)
    if pa.types.is_interval(t):
        return [None if v is None else _iso_duration(*v) for v in arr.to_pylist()]
    if pa.types.is_duration(t):
        nanos = _UNIT_NANOS[t.unit]
        ints = arr.cast(pa.int64()).to_pylist()
        return [None if v is None else _iso_duration(0, 0, v * nanos) for v in ints]
    if _is_run_end_encoded(t):
        return to_json_values(pc.run_end_decode(arr))
    return _fallback(arr)


def guess_rows(part: pa.RecordBatch, budget: int) -> int:
    """How many rows of ``part`` to serialize for ``budget`` bytes, from the Arrow size (an
    estimate: the exact cut is made on the serialized bytes)."""
    rows = part.num_rows
    if rows <= 1:
        return rows
    per_row = max(1, part.nbytes // rows)
    return max(1, min(rows, budget // per_row + 1))


def json_part(
    part: pa.RecordBatch, budget: int, first: bool
) -> tuple[int, int, bytes, list[list[Any]]]:
    """Serialize rows of ``part`` for a JSON page: ``(rows, bytes, JSON text, rows)``."""
    rows = to_json_rows(part)
    blob = orjson.dumps(rows)[1:-1]
    size = len(blob) + (0 if first else 1)  # the comma joining it to the page
    if size <= budget:
        return len(rows), size, blob, rows
    sizes = [len(orjson.dumps(r)) + 1 for r in rows]
    n, total = 0, 0 if first else 1
    for s in sizes:
        if total + s > budget:
            break
        total, n = total + s, n + 1
    if n == 0 and first:
        n, total = 1, sizes[0]
    rows = rows[:n]
    return n, total, orjson.dumps(rows)[1:-1], rows


def csv_part(part: pa.RecordBatch, budget: int, first: bool) -> tuple[int, int, bytes]:
    """Serialize rows of ``part`` for a CSV page: ``(rows, bytes, CSV text)``."""
    n = part.num_rows
    blob = csv_bytes(part, header=False)
    while len(blob) > budget and n > (1 if first else 0):
        n = min(n - 1, max(1 if first else 0, n * budget // max(1, len(blob))))
        blob = csv_bytes(part.slice(0, n), header=False) if n else b""
    return n, len(blob), blob


def csv_bytes(batch: pa.RecordBatch, *, header: bool) -> bytes:
    """``batch`` as CSV text (after :func:`csv_ready`), with or without the header line."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(csv_ready(batch), sink, pa_csv.WriteOptions(include_header=header))
    return sink.getvalue().to_pybytes()


def csv_header(schema: pa.Schema) -> bytes:
    """The CSV header line of a result with this schema."""
    names = schema.names
    empty = pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)
    return csv_bytes(empty, header=True)


def csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the columns pyarrow's CSV writer cannot write (or writes differently from
    the JSON pages) turned into strings: timestamps as ISO 8601, binary as base64, nested
    values as JSON text."""
    arrays = []
    changed = False
    for arr in batch.columns:
        new = _csv_column(arr)
        changed = changed or new is not arr
        arrays.append(new)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _csv_column(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_dictionary(t):
        return _csv_column(arr.dictionary_decode())
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    ):
        return arr
    text = _as_strings(arr)
    if text is not None:
        return text
    values = to_json_values(arr)
    if pa.types.is_nested(t):
        values = [None if v is None else orjson.dumps(v).decode() for v in values]
    else:
        values = [None if v is None else v if isinstance(v, str) else str(v) for v in values]
    return pa.array(values, pa.string())


def _as_strings(arr: pa.Array) -> pa.Array | None:
    """A string array for types whose JSON form is their ISO or exact text, else None."""
    t = arr.type
    if pa.types.is_timestamp(t):
        return _timestamps(arr)
    if pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pc.cast(arr, pa.string())
    return None


def _timestamps(arr: pa.Array) -> pa.Array:
    unit, tz = arr.type.unit, arr.type.tz
    if tz is not None and tz.lower() not in _UTC_NAMES:
        try:
            return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S%Ez")
        except (pa.ArrowException, ValueError):  # a time zone the tz database lacks
            pass
    if tz is not None:
        arr = arr.view(pa.timestamp(unit, "UTC"))  # an instant: its UTC text ends in Z
    # The cast (``2024-01-02 03:04:05.123``) is far faster than strftime; only the T differs.
    return pc.replace_substring(pc.cast(arr, pa.string()), " ", "T", max_replacements=1)


def _integers(arr: pa.Array) -> list[Any]:
    values = arr.to_pylist()
    t = arr.type
    if t.bit_width < 64 or arr.null_count == len(arr):
        return values
    bounds = pc.min_max(arr)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low >= -_SAFE_INT and high <= _SAFE_INT:
        return values
    big = pc.greater(arr, pa.scalar(_SAFE_INT, t))
    if pa.types.is_signed_integer(t):
        big = pc.or_(big, pc.less(arr, pa.scalar(-_SAFE_INT, t)))
    for i in pc.indices_nonzero(big.fill_null(False)).to_pylist():
        values[i] = str(values[i])
    return values


def _floats(arr: pa.Array) -> list[Any]:
    values: list[Any]
    if arr.type.bit_width < 64:
        # Through text, so a float32 0.1 reads 0.1 rather than 0.10000000149011612.
        values = [None if s is None else float(s) for s in pc.cast(arr, pa.string()).to_pylist()]
    else:
        values = arr.to_pylist()
    bad = pc.invert(pc.is_finite(arr)).fill_null(False)
    for i in pc.indices_nonzero(bad).to_pylist():
        v = values[i]
        values[i] = "NaN" if v != v else "Infinity" if v > 0 else "-Infinity"
    return values


def _base64(arr: pa.Array) -> list[Any]:
    b64 = base64.b64encode
    return [None if v is None else b64(v).decode("ascii") for v in arr.to_pylist()]


def _lists(arr: pa.Array) -> list[Any]:
    lengths = pc.list_value_length(arr).to_pylist()
    child = to_json_values(pc.list_flatten(arr))
    out: list[Any] = []
    pos = 0
    for n in lengths:
        if n is None:
            out.append(None)
        else:
            out.append(child[pos : pos + n])
            pos += n
    return out


def _maps(arr: pa.Array) -> list[Any]:
    offsets = arr.offsets.to_pylist()  # of this slice, into the whole entries array
    base = offsets[0]
    entries = arr.values.slice(base, offsets[-1] - base).flatten()
    keys = [_key_text(k) for k in to_json_values(entries[0])]
    values = to_json_values(entries[1])
    valid = arr.is_valid().to_pylist() if arr.null_count else None
    out: list[Any] = []
    for i in range(len(arr)):
        if valid is not None and not valid[i]:
            out.append(None)
            continue
        lo, hi = offsets[i] - base, offsets[i + 1] - base
        out.append(dict(zip(keys[lo:hi], values[lo:hi], strict=True)))
    return out


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (list, dict, bool)):
        return orjson.dumps(key).decode()
    return str(key)


def _structs(arr: pa.Array) -> list[Any]:
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    children = [to_json_values(child) for child in arr.flatten()]
    rows: list[Any] = [dict(zip(names, vals, strict=True)) for vals in zip(*children, strict=True)]
    if not children:
        rows = [{} for _ in range(len(arr))]
    if arr.null_count:
        valid = arr.is_valid().to_pylist()
        rows = [row if ok else None for row, ok in zip(rows, valid, strict=True)]
    return rows


def _extension(arr: pa.Array) -> list[Any]:
    if getattr(arr.type, "extension_name", "") == "arrow.uuid":
        raw = arr.storage.to_pylist()
        return [None if v is None else str(uuid.UUID(bytes=v)) for v in raw]
    return to_json_values(arr.storage)


def _iso_duration(months: int, days: int, nanos: int) -> str:
    """ISO 8601 duration such as ``P1Y2M3DT4H5M6.5S``; each part carries its own sign."""
    m_sign = -1 if months < 0 else 1
    years, months = divmod(abs(months), 12)
    out = "P" + _part(m_sign * years, "Y") + _part(m_sign * months, "M") + _part(days, "D")
    if nanos:
        sign = -1 if nanos < 0 else 1
        hours, rest = divmod(abs(nanos), 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        seconds = f"{'-' if sign < 0 else ''}{Decimal(rest).scaleb(-9).normalize():f}S"
        out += "T" + _part(sign * hours, "H") + _part(sign * minutes, "M")
        out += seconds if rest else ""
    return out if out != "P" else "PT0S"


def _part(value: int, unit: str) -> str:
    return f"{value}{unit}" if value else ""


def _fallback(arr: pa.Array) -> list[Any]:
    try:
        return pc.cast(arr, pa.string()).to_pylist()
    except (pa.ArrowException, ValueError):
        return [None if v is None else str(v) for v in arr.to_pylist()]


def _is_list_like(t: pa.DataType) -> bool:
    return (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or getattr(pa.types, "is_list_view", lambda _: False)(t)
        or getattr(pa.types, "is_large_list_view", lambda _: False)(t)
    )


def _is_string_view(t: pa.DataType) -> bool:
    return getattr(pa.types, "is_string_view", lambda _: False)(t)


def _is_binary_view(t: pa.DataType) -> bool:
    return getattr(pa.types, "is_binary_view", lambda _: False)(t)


def _is_run_end_encoded(t: pa.DataType) -> bool:
    return getattr(pa.types, "is_run_end_encoded", lambda _: False)(t)
