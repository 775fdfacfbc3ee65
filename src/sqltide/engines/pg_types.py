"""PostgreSQL column types as Arrow types, and rows as Arrow record batches.

Column types become Arrow types as follows (anything not listed arrives as its PostgreSQL
text form, so an exotic or user-defined type never fails a query)::

    bool                          bool
    int2 / int4 / int8            int16 / int32 / int64
    float4 / float8               float32 / float64
    numeric(p, s)                 decimal128(p, s) (p <= 38), decimal256(p, s) (p <= 76);
                                  NaN becomes null
    numeric (no typmod), p > 76   string: the exact decimal text ("1.50", "NaN")
    text / varchar / bpchar       string
    name / "char"                 string
    bytea                         binary
    date                          date32
    time                          time64[us]
    timestamp                     timestamp[us]
    timestamptz                   timestamp[us, tz=UTC]
    interval                      month_day_nano_interval (months, days, nanoseconds: exact)
    json / jsonb                  string (the JSON text)
    uuid                          string
    T[] (one dimension)           list<T's type>
    anything else                 string (text form: point, tsvector, inet, ranges, enums...)

Values Arrow or psycopg cannot hold (timestamps at ±infinity or BC, multi-dimensional
arrays) fail the statement with ``invalid_value``; cast them to text in the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.types.string import TextLoader

from ..errors import EngineError
from .base import ColumnMeta

NUMERIC = 1700
NUMERIC_OIDS = {NUMERIC, 1231}  # numeric, numeric[]
CHAR_TYPES = {1042, 1043}  # bpchar(n), varchar(n): their typmod is a length
# The OIDs loaded by psycopg's own loaders, with their Arrow types. Every other type psycopg
# knows is loaded as text (see loading_adapters); types it does not know are text already.
_ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1186: pa.month_day_nano_interval(),
}
_NATIVE_OIDS = {*_ARROW_OF_OID, NUMERIC}

# IntervalStyle "postgres", the default: "1 year 2 mons -3 days +04:05:06.789".
_INTERVAL = re.compile(
    r"(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
    r"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
)


class _IntervalLoader(Loader):
    """An interval as exact (months, days, nanoseconds); psycopg's timedelta loses months."""

    def load(self, data: Buffer) -> tuple[int, int, int]:
        text = bytes(data).decode()
        m = _INTERVAL.fullmatch(text)
        if not text or m is None:
            raise psycopg.DataError(
                f"cannot read interval {text!r}: sqltide reads IntervalStyle 'postgres' only "
                "(or cast the column to text)"
            )
        years, mons, days, sign, hours, minutes, seconds, fraction = m.groups()
        micros = (int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) * 10**6
        micros += int((fraction or "").ljust(6, "0"))
        if sign == "-":
            micros = -micros
        return (int(years or 0) * 12 + int(mons or 0), int(days or 0), micros * 1000)


def loading_adapters() -> AdaptersMap:
    """psycopg's adapters, but every type outside _NATIVE_OIDS loads as its text form."""
    adapters = AdaptersMap(psycopg.adapters)
    for info in psycopg.adapters.types:
        if info.oid not in _NATIVE_OIDS:
            adapters.register_loader(info.oid, TextLoader)  # arrays keep their list loader
    adapters.register_loader("interval", _IntervalLoader)
    return adapters


def numeric_typmod(typmod: int) -> tuple[int | None, int | None]:
    if typmod < 4:
        return None, None
    scale = (typmod - 4) & 0x7FF
    return ((typmod - 4) >> 16) & 0xFFFF, scale - 0x800 if scale >= 0x400 else scale


def _numeric_arrow(precision: int | None, scale: int | None) -> pa.DataType:
    if precision is None or scale is None or not 0 <= scale <= precision:
        return pa.string()
    if precision <= 38:
        return pa.decimal128(precision, scale)
    if precision <= 76:
        return pa.decimal256(precision, scale)
    return pa.string()


def _decimal_or_null(value: Any) -> Any:
    return None if value is None or value.is_nan() else value


def _decimal_text(value: Any) -> Any:
    return None if value is None else format(value, "f")  # never "1E-7"


def _deep(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, list):
            return [apply(v) for v in value]
        return fn(value)

    return apply


@dataclass(frozen=True, slots=True)
class ArrowColumn:
    meta: ColumnMeta
    arrow: pa.DataType
    clean: Callable[[Any], Any] | None  # applied to each value before Arrow sees it

    def array(self, values: Sequence[Any]) -> pa.Array:
        if self.clean is not None:
            values = [self.clean(v) for v in values]
        return pa.array(values, type=self.arrow)


def arrow_column(
    name: str,
    oid: int,
    type_name: str,
    precision: int | None,
    scale: int | None,
    length: int | None,
) -> ArrowColumn:
    registry = psycopg.adapters.types
    element = registry.get(oid)
    is_array = element is not None and element.array_oid == oid and element.oid != oid
    base = element.oid if is_array and element is not None else oid
    clean: Callable[[Any], Any] | None = None
    if base == NUMERIC:
        arrow = _numeric_arrow(precision, scale)
        clean = _decimal_text if pa.types.is_string(arrow) else _decimal_or_null
    else:
        arrow = _ARROW_OF_OID.get(base, pa.string())
    if is_array:
        arrow = pa.list_(arrow)
        clean = _deep(clean) if clean is not None else None
    numeric = oid == NUMERIC
    meta = ColumnMeta(
        name=name,
        type_name=type_name,
        precision=precision if numeric else None,
        scale=scale if numeric else None,
        length=length if oid in CHAR_TYPES else None,
    )
    return ArrowColumn(meta, arrow, clean)


def record_batch(columns: list[ArrowColumn], schema: pa.Schema, rows: list[Any]) -> pa.RecordBatch:
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else []
    if not values:
        values = [[] for _ in columns]
    try:
        arrays = [col.array(vals) for col, vals in zip(columns, values, strict=True)]
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise EngineError(
            f"a value cannot be converted to Arrow: {exc}; multi-dimensional arrays and "
            "out-of-range values need a cast to text in the query",
            sqlstate="22000",
            code="invalid_value",
        ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def builtin_type_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for info in psycopg.adapters.types:
        name = info.name.strip('"')  # the registry spells "char" quoted
        names[info.oid] = name
        if info.array_oid:
            names[info.array_oid] = f"_{name}"  # pg_type's name for the array type
    return names
