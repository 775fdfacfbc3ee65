"""Arrow results as the Redshift Data API shows them: ColumnMetadata, Field unions and CSV.

Pure (no I/O). A result column is planned once per page from its Arrow field and the
engine's own column description (:func:`plan_columns`); the plan says which Redshift type name
the column gets (``int4``, ``numeric``, ``timestamptz``, ``super``…) and how its values are
written. Values are converted column by column with pyarrow compute; Python touches each
value once, to wrap it in its Field union.

What AWS does, and so what this module does (docs/data-api.md, "What differs from AWS"):

- ``int2``/``int4``/``int8`` are ``longValue``; ``float4``/``float8`` are ``doubleValue``;
  ``bool`` is ``booleanValue``; ``varbyte`` is ``blobValue`` (base64 on the wire: botocore
  decodes it to bytes); NULL is ``{"isNull": true}``.
- Everything else is ``stringValue`` in Redshift's text: ``numeric`` as its exact digits with
  the column's scale (``1.50``); ``date`` as ``2024-01-02``; ``timestamp`` as JDBC prints it,
  fraction without trailing zeros but at least one digit (``2022-02-22 00:00:00.0``,
  ``2020-08-21 17:33:51.88712``, as in the AWS CLI examples); ``timestamptz`` in UTC with
  ``+00`` (``2024-01-02 03:04:05+00``); ``time`` as ``03:04:05.5``; ``super`` (nested values,
  JSON) as compact JSON text; ``interval`` as PostgreSQL prints it (``1 day 02:00:00``).
- ColumnMetadata is JDBC's: ``precision`` is the digits of a number or the length of a
  character column (2147483647 when unbounded, as AWS shows for unbounded columns), ``scale``
  the fraction digits, ``nullable`` 0 (NOT NULL) or 1, ``length`` 0 for result columns.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..statements.result_values import to_json_values

__all__ = [
    "NULL_FIELD",
    "ColumnPlan",
    "catalog_column",
    "csv_lines",
    "csv_pieces",
    "plan_columns",
    "records",
    "redshift_type_name",
]

#: The Field union of a NULL. One shared object: records are serialized, never mutated.
NULL_FIELD: dict[str, Any] = {"isNull": True}

#: What JDBC (and so AWS) reports as the precision of a column without a length.
UNBOUNDED = 2_147_483_647

Key = Literal["longValue", "doubleValue", "booleanValue", "stringValue", "blobValue"]

# -- type names -------------------------------------------------------------------------------

# (precision, scale) of the fixed-size Redshift types, as the Redshift JDBC driver reports them.
_FIXED: dict[str, tuple[int, int]] = {
    "int2": (5, 0),
    "int4": (10, 0),
    "int8": (19, 0),
    "float4": (8, 8),
    "float8": (17, 17),
    "bool": (1, 0),
    "date": (13, 0),
    "time": (15, 6),
    "timetz": (21, 6),
    "timestamp": (29, 6),
    "timestamptz": (35, 6),
    "interval": (49, 6),
}
_CHARACTER = frozenset({"varchar", "bpchar", "char", "name", "super"})
_SIGNED = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
# The Field union member each Redshift type's values are written in; the rest are strings.
_KEY_OF: dict[str, Key] = {
    "int2": "longValue",
    "int4": "longValue",
    "int8": "longValue",
    "float4": "doubleValue",
    "float8": "doubleValue",
    "bool": "booleanValue",
    "varbyte": "blobValue",
}

# Engine type names (DuckDB's and PostgreSQL's spellings, and Redshift's own) → Redshift's.
_NAMES: dict[str, str] = {
    # integers (unsigned ones to the smallest signed type that holds them)
    "tinyint": "int2", "int1": "int2", "smallint": "int2", "int2": "int2", "utinyint": "int2",
    "integer": "int4", "int": "int4", "int4": "int4", "usmallint": "int4", "signed": "int4",
    "bigint": "int8", "int8": "int8", "long": "int8", "uinteger": "int8", "oid": "int8",
    "ubigint": "numeric", "hugeint": "numeric", "uhugeint": "numeric", "varint": "numeric",
    "bignum": "numeric", "numeric": "numeric", "decimal": "numeric",
    # floating point
    "float": "float4", "float4": "float4", "real": "float4",
    "double": "float8", "float8": "float8", "double precision": "float8",
    # the rest
    "boolean": "bool", "bool": "bool", "logical": "bool",
    "varchar": "varchar", "character varying": "varchar", "text": "varchar",
    "string": "varchar", "uuid": "varchar", "citext": "varchar", "nvarchar": "varchar",
    "char": "bpchar", "bpchar": "bpchar", "character": "bpchar", "nchar": "bpchar",
    '"char"': "char", "name": "name",
    "date": "date",
    "time": "time", "time without time zone": "time",
    "timetz": "timetz", "time with time zone": "timetz",
    "timestamp": "timestamp", "datetime": "timestamp", "timestamp without time zone": "timestamp",
    "timestamp_s": "timestamp", "timestamp_ms": "timestamp", "timestamp_ns": "timestamp",
    "timestamp_us": "timestamp",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "blob": "varbyte", "bytea": "varbyte", "varbinary": "varbyte", "binary": "varbyte",
    "varbyte": "varbyte", "binary varying": "varbyte", "bit": "varbyte", "bitstring": "varbyte",
    "json": "super", "jsonb": "super", "super": "super",
    "geometry": "geometry", "geography": "geography", "hllsketch": "hllsketch",
}  # fmt: skip
_NESTED_NAME = re.compile(r"(\[\d*\]$)|^(struct|map|list|union|array)\b", re.IGNORECASE)
_PARAMS = re.compile(r"^\s*([^(]*?)\s*(?:\((\s*\d+\s*)(?:,(\s*-?\d+\s*))?\))?\s*$")


def redshift_type_name(type_name: str | None) -> str | None:
    """The Redshift type of an engine's type name, or None when it does not say.

    >>> redshift_type_name("DECIMAL(18,3)"), redshift_type_name("_int4")
    ('numeric', 'super')
    """
    if not type_name:
        return None
    text = type_name.strip()
    if _NESTED_NAME.search(text):
        return "super"
    lower = text.lower()
    if lower.startswith("_") and lower[1:] in _NAMES:  # PostgreSQL's array types
        return "super"
    if lower.startswith("enum("):
        return "varchar"
    m = _PARAMS.match(lower)
    base = m.group(1) if m else lower
    return _NAMES.get(base)


def _declared(type_name: str | None) -> tuple[int | None, int | None]:
    """The ``(n, m)`` written in a type name such as ``DECIMAL(18,3)`` or ``varchar(20)``."""
    if not type_name:
        return None, None
    m = _PARAMS.match(type_name)
    if m is None or m.group(2) is None:
        return None, None
    return int(m.group(2)), int(m.group(3)) if m.group(3) is not None else None


def _arrow_type_name(t: pa.DataType) -> str:
    """The Redshift type of an Arrow type, when the engine's name says nothing useful."""
    if isinstance(t, pa.ExtensionType):
        if getattr(t, "extension_name", "") in ("arrow.uuid", "arrow.json"):
            return "varchar" if t.extension_name == "arrow.uuid" else "super"
        return _arrow_type_name(t.storage_type)
    if pa.types.is_dictionary(t):
        return _arrow_type_name(t.value_type)
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "int2"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int4"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "int8"
    if pa.types.is_uint64(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float4"
    if pa.types.is_float64(t):
        return "float8"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz is not None else "timestamp"
    if pa.types.is_interval(t) or pa.types.is_duration(t):
        return "interval"
    if _is_binary(t):
        return "varbyte"
    if pa.types.is_nested(t):
        return "super"
    if getattr(pa.types, "is_run_end_encoded", lambda _: False)(t):
        return _arrow_type_name(t.value_type)
    return "varchar"  # strings, NULL-only columns and anything else: text


def _is_binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or getattr(pa.types, "is_binary_view", lambda _: False)(t)
    )


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How one result column is shown: its ColumnMetadata and how its values are written."""

    metadata: dict[str, Any]
    #: The Field union member the values go in.
    key: Key
    #: Arrow column → Python values for ``key`` (None for NULL), all of one page piece.
    values: Callable[[pa.Array], list[Any]]
    #: Arrow column → its CSV text (null for NULL), as a string array.
    text: Callable[[pa.Array], pa.Array]


def plan_columns(
    schema: pa.Schema, columns: Sequence[Mapping[str, Any]] | None = None
) -> list[ColumnPlan]:
    """Plan each result column from its Arrow field and the engine's description of it
    (``ColumnMeta.to_dict()``: ``type_name``, ``nullable``, ``precision``, ``scale``,
    ``length``); the engine's type name wins where it agrees with the values' Arrow type."""
    plans = []
    for i, field in enumerate(schema):
        meta = columns[i] if columns is not None and i < len(columns) else {}
        plans.append(_plan(field, meta))
    return plans


def _plan(field: pa.Field, meta: Mapping[str, Any]) -> ColumnPlan:
    t = field.type
    from_arrow = _arrow_type_name(t)
    hinted = redshift_type_name(meta.get("type_name"))
    # The engine's name says more (json is super, a bpchar is no varchar, an unbounded
    # PostgreSQL numeric arrives as text), but only where its values are written the same way.
    type_name = hinted if hinted and _key(hinted) == _key(from_arrow) else from_arrow
    key = _key(type_name)
    values, text = _converters(t, type_name)
    nullable = field.nullable and meta.get("nullable", True) is not False
    metadata = column_metadata(
        field.name,
        type_name,
        nullable=nullable,
        precision=_precision_of(t, meta),
        scale=_scale_of(t, meta),
        length=meta.get("length"),
    )
    metadata["length"] = 0  # AWS shows 0 for every result column
    return ColumnPlan(metadata, key, values, text)


def _key(type_name: str) -> Key:
    return _KEY_OF.get(type_name, "stringValue")


def _precision_of(t: pa.DataType, meta: Mapping[str, Any]) -> int | None:
    if pa.types.is_decimal(t):
        return int(t.precision)
    if pa.types.is_uint64(t):
        return 20
    if meta.get("precision") is not None:
        return int(meta["precision"])
    return _declared(meta.get("type_name"))[0]


def _scale_of(t: pa.DataType, meta: Mapping[str, Any]) -> int | None:
    if pa.types.is_decimal(t):
        return int(t.scale)
    if pa.types.is_uint64(t):
        return 0
    if meta.get("scale") is not None:
        return int(meta["scale"])
    return _declared(meta.get("type_name"))[1]


def column_metadata(
    name: str,
    type_name: str,
    *,
    nullable: bool = True,
    precision: int | None = None,
    scale: int | None = None,
    length: int | None = None,
    schema: str = "",
    table: str = "",
    label: bool = True,
) -> dict[str, Any]:
    """One ColumnMetadata, every member filled as JDBC (and so AWS) fills it."""
    if type_name in _FIXED:
        precision, scale = _FIXED[type_name]
    elif type_name == "numeric":
        precision, scale = precision or 0, scale or 0
    else:  # character, binary and nested types: the length, or "unbounded"
        precision, scale = (length or precision or UNBOUNDED), 0
    out: dict[str, Any] = {
        "isCaseSensitive": type_name in _CHARACTER,
        "isCurrency": False,
        "isSigned": type_name in _SIGNED,
    }
    if label:
        out["label"] = name
    out.update(
        {
            "length": length or 0,
            "name": name,
            "nullable": 1 if nullable else 0,
            "precision": precision,
            "scale": scale,
            "schemaName": schema,
            "tableName": table,
            "typeName": type_name,
        }
    )
    return out  # no columnDefault: the engines do not say (AWS leaves it out of results too)


def catalog_column(column: Mapping[str, Any], *, schema: str, table: str) -> dict[str, Any]:
    """DescribeTable's ColumnMetadata of a column the engine described (``ColumnMeta``)."""
    type_name = redshift_type_name(column.get("type_name")) or "varchar"
    precision = column.get("precision")
    scale = column.get("scale")
    length = column.get("length")
    declared_n, declared_m = _declared(column.get("type_name"))
    if type_name == "numeric":
        precision = precision if precision is not None else declared_n
        scale = scale if scale is not None else declared_m
    elif type_name not in _FIXED:
        length = length or declared_n or UNBOUNDED
    return column_metadata(
        str(column["name"]),
        type_name,
        nullable=column.get("nullable", True) is not False,
        precision=precision,
        scale=scale,
        length=length if type_name not in _FIXED and type_name != "numeric" else 0,
        schema=schema,
        table=table,
        label=False,
    )


# -- values -----------------------------------------------------------------------------------


def records(batch: pa.RecordBatch, plans: Sequence[ColumnPlan]) -> list[list[dict[str, Any]]]:
    """The rows of ``batch`` as lists of Field unions (``{"longValue": 1}``, NULL_FIELD…)."""
    if batch.num_rows == 0:
        return []
    if batch.num_columns == 0:
        return [[] for _ in range(batch.num_rows)]
    columns = [_fields(plan, arr) for plan, arr in zip(plans, batch.columns, strict=True)]
    return list(map(list, zip(*columns, strict=True)))


def _fields(plan: ColumnPlan, arr: pa.Array) -> list[dict[str, Any]]:
    key = plan.key
    values = plan.values(arr)
    if arr.null_count == 0:
        return [{key: v} for v in values]
    null = NULL_FIELD
    return [null if v is None else {key: v} for v in values]


def _converters(
    t: pa.DataType, type_name: str
) -> tuple[Callable[[pa.Array], list[Any]], Callable[[pa.Array], pa.Array]]:
    """``(values, csv text)`` functions for a column of Arrow type ``t`` shown as ``type_name``."""
    key = _key(type_name)
    if key == "longValue":
        return _plain, _cast_text
    if key == "doubleValue":
        return _doubles, _double_text
    if key == "booleanValue":
        return _plain, _bool_text
    if key == "blobValue":
        return _blobs, _blob_text

    def values(arr: pa.Array) -> list[Any]:
        return text(arr).to_pylist()

    def text(arr: pa.Array) -> pa.Array:
        return _text(arr, type_name)

    return values, text


def _plain(arr: pa.Array) -> list[Any]:
    return arr.to_pylist()


def _cast_text(arr: pa.Array) -> pa.Array:
    return pc.cast(_decoded(arr), pa.string())


def _bool_text(arr: pa.Array) -> pa.Array:
    return pc.if_else(_decoded(arr), "true", "false")


def _doubles(arr: pa.Array) -> list[Any]:
    arr = _decoded(arr)
    values: list[Any]
    if arr.type.bit_width < 64:
        # Through text, so a float4 0.1 reads 0.1 rather than 0.10000000149011612.
        values = [None if s is None else float(s) for s in pc.cast(arr, pa.string()).to_pylist()]
    else:
        values = arr.to_pylist()
    bad = pc.invert(pc.is_finite(arr)).fill_null(False)
    if pc.any(bad).as_py():
        # JSON has no NaN or infinities: the AWS JSON protocol writes them as these strings.
        for i in pc.indices_nonzero(bad).to_pylist():
            v = values[i]
            values[i] = "NaN" if v != v else "Infinity" if v > 0 else "-Infinity"
    return values


def _double_text(arr: pa.Array) -> pa.Array:
    text = pc.cast(_decoded(arr), pa.string())
    # "-inf" becomes "-Infinity" too.
    return pc.replace_substring(pc.replace_substring(text, "nan", "NaN"), "inf", "Infinity")


def _blobs(arr: pa.Array) -> list[Any]:
    b64 = base64.b64encode
    return [None if v is None else b64(v).decode("ascii") for v in _binary(arr).to_pylist()]


def _blob_text(arr: pa.Array) -> pa.Array:
    # CSV has no bytes: hexadecimal, as Redshift prints a VARBYTE.
    return pa.array([None if v is None else v.hex() for v in _binary(arr).to_pylist()], pa.string())


def _binary(arr: pa.Array) -> pa.Array:
    arr = _decoded(arr)
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    return arr


def _decoded(arr: pa.Array) -> pa.Array:
    """Dictionary and run-end encoded columns as plain arrays."""
    if pa.types.is_dictionary(arr.type):
        return arr.dictionary_decode()
    if getattr(pa.types, "is_run_end_encoded", lambda _: False)(arr.type):
        return pc.run_end_decode(arr)
    return arr


# Fraction digits as PostgreSQL prints them: no trailing zeros, no lone point.
_TRIM_FRACTION = r"\.0+$|(\.[0-9]*[1-9])0+$"
# ... and as JDBC's Timestamp.toString() does: at least one digit (".0").
_TRIM_TO_ONE = r"(\.[0-9])([0-9]*?)0*$"


def _text(arr: pa.Array, type_name: str) -> pa.Array:
    """A string array of the values of ``arr`` in Redshift's text for ``type_name``."""
    arr = _decoded(arr)
    t = arr.type
    if isinstance(t, pa.ExtensionType):
        if getattr(t, "extension_name", "") == "arrow.uuid":
            raw = arr.storage.to_pylist()
            return pa.array([None if v is None else str(uuid.UUID(bytes=v)) for v in raw])
        return _text(arr.storage, type_name)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.string()) if not pa.types.is_string(t) else arr
    if getattr(pa.types, "is_string_view", lambda _: False)(t):
        return arr.cast(pa.string())
    if pa.types.is_timestamp(t):
        return _timestamp_text(arr)
    if pa.types.is_time(t):
        text = pc.replace_substring_regex(pc.cast(arr, pa.string()), _TRIM_FRACTION, r"\1")
        return pc.binary_join_element_wise(text, "+00", "") if type_name == "timetz" else text
    if pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_integer(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_floating(t):
        return _double_text(arr)
    if pa.types.is_boolean(t):
        return _bool_text(arr)
    if pa.types.is_interval(t):
        return pa.array(
            [None if v is None else _pg_interval(*v) for v in arr.to_pylist()], pa.string()
        )
    if pa.types.is_duration(t):
        nanos = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit]
        ints = arr.cast(pa.int64()).to_pylist()
        return pa.array([None if v is None else _pg_interval(0, 0, v * nanos) for v in ints])
    if pa.types.is_nested(t):
        dumps = orjson.dumps
        return pa.array(
            [None if v is None else dumps(v).decode() for v in to_json_values(arr)], pa.string()
        )
    if _is_binary(t):
        return _blob_text(arr)
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowException, ValueError):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def _timestamp_text(arr: pa.Array) -> pa.Array:
    unit, tz = arr.type.unit, arr.type.tz
    if tz is None:
        text = pc.cast(arr, pa.string())
        if unit == "s":
            return pc.binary_join_element_wise(text, ".0", "")
        return pc.replace_substring_regex(text, _TRIM_TO_ONE, r"\1\2")
    # An instant: shown in UTC (the Data API's sessions run in UTC) with PostgreSQL's "+00".
    # Its UTC wall time, read without the time zone database (ten times faster).
    text = pc.cast(arr.view(pa.timestamp(unit)), pa.string())
    text = pc.replace_substring_regex(text, _TRIM_FRACTION, r"\1")
    return pc.binary_join_element_wise(text, "+00", "")


def _pg_interval(months: int, days: int, nanos: int) -> str:
    """An interval as PostgreSQL prints it: ``1 year 2 mons -3 days +04:05:06.5`` (a unit is
    singular for exactly 1 only: ``-1 days``)."""
    parts = []
    years, mons = int(months / 12), months - 12 * int(months / 12)  # both take the sign
    for value, unit in ((years, "year"), (mons, "mon"), (days, "day")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    if nanos or not parts:
        hours, rest = divmod(abs(nanos), 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        seconds, fraction = divmod(rest, 1_000_000_000)
        clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            clock += f"{Decimal(fraction).scaleb(-9):f}".rstrip("0")[1:]
        sign = "-" if nanos < 0 else ("+" if parts and (months < 0 or days < 0) else "")
        parts.append(sign + clock)
    return " ".join(parts)


# -- CSV --------------------------------------------------------------------------------------

_QUOTE_NEEDED = r'^$|[",\r\n]'


def csv_lines(batch: pa.RecordBatch, plans: Sequence[ColumnPlan]) -> pa.Array:
    """Each row of ``batch`` as one CSV line ended by CRLF (a string array; no header: the
    names are in ColumnMetadata). A NULL is an empty field and an empty string ``""``, so
    the two stay apart; ``pc.binary_length`` of a line is its size in UTF-8."""
    return _csv_lines(batch, plans)


def csv_pieces(lines: Sequence[str], piece_bytes: int = 1024 * 1024) -> list[str]:
    """CSV lines joined into pieces of about ``piece_bytes`` characters (whole lines), as
    GetStatementResultV2 answers them (one ``CSVRecords`` each)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) > piece_bytes:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        pieces.append("".join(current))
    return pieces


def _csv_lines(batch: pa.RecordBatch, plans: Sequence[ColumnPlan]) -> pa.Array:
    cells = [_csv_cell(plan.text(arr)) for plan, arr in zip(plans, batch.columns, strict=True)]
    if not cells:
        return pa.array(["\r\n"] * batch.num_rows, pa.string())
    joined = pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(joined, "\r\n", "")


def _csv_cell(text: pa.Array) -> pa.Array:
    """Quote the values that need it (RFC 4180), leave NULL as null."""
    if len(text) == 0 or text.null_count == len(text):
        return text
    needs = pc.match_substring_regex(text, _QUOTE_NEEDED).fill_null(False)
    if not pc.any(needs).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)
