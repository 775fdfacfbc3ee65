"""Amazon Redshift result columns as Arrow types, and Data API records as record batches.

The Data API describes each result column with a ``ColumnMetadata`` (``typeName`` is
Redshift's type name, ``precision``/``scale`` as JDBC reports them) and sends each value as a
``Field`` union: ``longValue``, ``doubleValue``, ``booleanValue``, ``blobValue``,
``stringValue`` (everything else, as Redshift's text) or ``isNull``. Columns become Arrow
types as follows (a type not listed arrives as its text, so an unknown type never fails a
query)::

    int2 / int4 / int8            int16 / int32 / int64
    float4 / float8               float32 / float64 (``"NaN"``, ``"Infinity"`` included)
    numeric(p, s)                 decimal128(p, s) for 1 <= p <= 38; NaN becomes null
    numeric without a precision   string: the exact decimal text
    bool                          bool
    varchar / bpchar / char       string
    date                          date32
    time                          time64[us]
    timestamp                     timestamp[us]
    timestamptz                   timestamp[us, tz=UTC]
    interval                      month_day_nano_interval (PostgreSQL's text, read exactly)
    varbyte                       binary (``blobValue``, or hexadecimal text)
    super                         string (the JSON text)
    timetz, geometry, geography,
    hllsketch, anything else      string (Redshift's text)

A value Arrow cannot hold (a date before year 1, ``infinity``) fails the statement with
``invalid_value``; cast it to text in the query.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from ..errors import EngineError
from .base import ColumnMeta

#: What JDBC (and so the Data API) reports as the precision of a column without a length.
UNBOUNDED = 2_147_483_647

# Other spellings of Redshift's type names (catalogs and older clients use them).
_ALIASES = {
    "smallint": "int2",
    "integer": "int4",
    "int": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "float": "float8",
    "decimal": "numeric",
    "boolean": "bool",
    "character varying": "varchar",
    "nvarchar": "varchar",
    "text": "varchar",
    "character": "bpchar",
    "nchar": "bpchar",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "varbinary": "varbyte",
    "binary varying": "varbyte",
}
_PARAMS = re.compile(r"\s*\(.*\)\s*$")
_FIXED: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.month_day_nano_interval(),
    "varbyte": pa.binary(),
}
_CHARACTER = frozenset({"varchar", "bpchar", "char", "name"})
# IntervalStyle "postgres" (Redshift's and PostgreSQL's default): "1 year 2 mons -3 days
# +04:05:06.789"; the clock part may stand alone.
_INTERVAL = re.compile(
    r"(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
    r"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,9}))?)?"
)


def canonical_type(type_name: str | None) -> str:
    """Redshift's own name of a type as ``typeName`` spells it (``"numeric(18,2)"`` →
    ``numeric``, ``integer`` → ``int4``); unknown names come back lower-cased."""
    name = _PARAMS.sub("", (type_name or "").strip().lower())
    return _ALIASES.get(name, name)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def column_meta(metadata: Mapping[str, Any]) -> ColumnMeta:
    """A ``ColumnMetadata`` (a result column or a table's column) as sqltide's ColumnMeta."""
    type_name = str(metadata.get("typeName") or "")
    base = canonical_type(type_name)
    precision = _int_or_none(metadata.get("precision"))
    scale = _int_or_none(metadata.get("scale"))
    length = _int_or_none(metadata.get("length"))
    nullable = metadata.get("nullable")
    meta_precision = meta_scale = meta_length = None
    if base == "numeric":
        meta_precision, meta_scale = precision or None, scale if precision else None
    elif base in _CHARACTER:
        # JDBC puts a character column's length in precision (``length`` is 0 in results).
        n = length or precision
        meta_length = n if n and n != UNBOUNDED else None
    return ColumnMeta(
        name=str(metadata.get("name") or metadata.get("label") or ""),
        type_name=type_name or "varchar",
        nullable=nullable != 0,  # 0: NOT NULL; 1: nullable; 2 (or missing): unknown
        precision=meta_precision,
        scale=meta_scale,
        length=meta_length,
    )


# -- converting values ------------------------------------------------------------------------


def _value(field: Mapping[str, Any]) -> Any:
    """The one value of a Field union (None for ``isNull``)."""
    if field.get("isNull"):
        return None
    for value in field.values():
        return value
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _integer(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value))


def _double(value: Any) -> float:
    return value if isinstance(value, float) else float(value)  # "NaN", "Infinity" too


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("t", "true", "1", "yes", "on")


def _blob(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith(("\\x", "0x")) else text)


def _time(value: Any) -> dt.time:
    return dt.time.fromisoformat(str(value))


def _interval(value: Any) -> tuple[int, int, int]:
    text = str(value).strip()
    m = _INTERVAL.fullmatch(text)
    if not text or m is None:
        raise ValueError(f"cannot read interval {text!r} (IntervalStyle 'postgres' only)")
    years, mons, days, sign, hours, minutes, seconds, fraction = m.groups()
    nanos = (int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) * 10**9
    nanos += int((fraction or "").ljust(9, "0"))
    if sign == "-":
        nanos = -nanos
    return (int(years or 0) * 12 + int(mons or 0), int(days or 0), nanos)


def _decimal_or_null(value: Any) -> Decimal | None:
    number = Decimal(str(value))
    return None if number.is_nan() else number


def _through_text(arrow: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    """Values Arrow parses from their text itself (dates, timestamps), column-wise."""

    def build(values: list[Any]) -> pa.Array:
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(arrow)

    return build


def _each(fn: Callable[[Any], Any], arrow: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    def build(values: list[Any]) -> pa.Array:
        return pa.array([None if v is None else fn(v) for v in values], arrow)

    return build


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """One result column: what it is, its Arrow type and how its values become an array."""

    meta: ColumnMeta
    arrow: pa.DataType
    build: Callable[[list[Any]], pa.Array]


def result_column(metadata: Mapping[str, Any]) -> ResultColumn:
    """Plan one result column from its ``ColumnMetadata``."""
    meta = column_meta(metadata)
    base = canonical_type(meta.type_name)
    arrow: pa.DataType
    if base == "numeric":
        precision, scale = meta.precision, meta.scale or 0
        if precision is not None and 0 < precision <= 38 and 0 <= scale <= precision:
            arrow = pa.decimal128(precision, scale)
            return ResultColumn(meta, arrow, _each(_decimal_or_null, arrow))
        return ResultColumn(meta, pa.string(), _each(_text, pa.string()))
    arrow = _FIXED.get(base, pa.string())
    builders: dict[str, Callable[[list[Any]], pa.Array]] = {
        "int2": _each(_integer, arrow),
        "int4": _each(_integer, arrow),
        "int8": _each(_integer, arrow),
        "float4": _each(_double, arrow),
        "float8": _each(_double, arrow),
        "bool": _each(_boolean, arrow),
        "date": _through_text(arrow),
        "timestamp": _through_text(arrow),
        "timestamptz": _through_text(arrow),
        "time": _each(_time, arrow),
        "interval": _each(_interval, arrow),
        "varbyte": _each(_blob, arrow),
    }
    return ResultColumn(meta, arrow, builders.get(base) or _each(_text, pa.string()))


def record_batch(
    columns: Sequence[ResultColumn], schema: pa.Schema, records: Sequence[Sequence[Any]]
) -> pa.RecordBatch:
    """Rows of Field unions (one page of ``GetStatementResult``) as one record batch."""
    if not columns:  # SELECT FROM t (PostgreSQL allows it): rows without columns
        return pa.RecordBatch.from_struct_array(pa.array([{}] * len(records), pa.struct([])))
    values: list[list[Any]] = [[] for _ in columns]
    for row in records:
        if len(row) != len(columns):
            raise EngineError(
                f"the Data API sent a row of {len(row)} values for {len(columns)} columns",
                sqlstate="XX000",
                code="invalid_value",
            )
        for out, field in zip(values, row, strict=True):
            out.append(_value(field))
    arrays = []
    for column, vals in zip(columns, values, strict=True):
        try:
            arrays.append(column.build(vals))
        except (
            pa.ArrowException,
            ValueError,
            TypeError,
            OverflowError,
            InvalidOperation,
        ) as exc:
            raise EngineError(
                f"a value of column {column.meta.name!r} ({column.meta.type_name}) cannot be "
                f"converted to Arrow: {exc}; cast it to text in the query",
                sqlstate="22000",
                code="invalid_value",
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
