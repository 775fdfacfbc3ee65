"""Arrow results as the Data API writes them: ColumnMetadata, Field unions, CSV.

Table-driven over every Arrow type sqltide's engines produce (DuckDB and PostgreSQL), with the
engines' own type names where they say more than Arrow does (json is super, bpchar keeps its
length). The answers are also read back through botocore's own parser, as boto3 reads them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import time
from decimal import Decimal
from typing import Any

import botocore
import orjson
import pyarrow as pa
import pytest
from botocore.model import ServiceModel
from botocore.parsers import create_parser

from sqltide.dataapi.records import (
    NULL_FIELD,
    UNBOUNDED,
    catalog_column,
    csv_lines,
    csv_pieces,
    plan_columns,
    records,
    redshift_type_name,
)

UTC = dt.UTC

# (name, Arrow array, engine type name or None, typeName, Field unions of the values)
CASES: list[tuple[str, pa.Array, str | None, str, list[dict[str, Any]]]] = [
    ("tinyint", pa.array([1, None], pa.int8()), "TINYINT", "int2", [{"longValue": 1}, NULL_FIELD]),
    ("smallint", pa.array([-2], pa.int16()), "int2", "int2", [{"longValue": -2}]),
    ("integer", pa.array([7], pa.int32()), "INTEGER", "int4", [{"longValue": 7}]),
    ("bigint", pa.array([2**62], pa.int64()), "int8", "int8", [{"longValue": 2**62}]),
    ("utinyint", pa.array([255], pa.uint8()), "UTINYINT", "int2", [{"longValue": 255}]),
    ("usmallint", pa.array([65535], pa.uint16()), "USMALLINT", "int4", [{"longValue": 65535}]),
    (
        "uinteger",
        pa.array([2**32 - 1], pa.uint32()),
        "UINTEGER",
        "int8",
        [{"longValue": 2**32 - 1}],
    ),
    (
        "ubigint",
        pa.array([2**64 - 1], pa.uint64()),
        "UBIGINT",
        "numeric",
        [{"stringValue": "18446744073709551615"}],
    ),
    (
        "hugeint sum",
        pa.array([Decimal(10**30)], pa.decimal128(38, 0)),
        "HUGEINT",
        "numeric",
        [{"stringValue": str(10**30)}],
    ),
    (
        "real",
        pa.array([0.1, None], pa.float32()),
        "FLOAT",
        "float4",
        [{"doubleValue": 0.1}, NULL_FIELD],
    ),
    (
        "double",
        pa.array([1.5, float("nan"), float("inf"), float("-inf")]),
        "float8",
        "float8",
        [
            {"doubleValue": 1.5},
            {"doubleValue": "NaN"},
            {"doubleValue": "Infinity"},
            {"doubleValue": "-Infinity"},
        ],
    ),
    (
        "decimal",
        pa.array([Decimal("1.5"), Decimal("-0.01"), None], pa.decimal128(10, 2)),
        "DECIMAL(10,2)",
        "numeric",
        [{"stringValue": "1.50"}, {"stringValue": "-0.01"}, NULL_FIELD],
    ),
    (
        "wide decimal",
        pa.array([Decimal("12345678901234567890123456789012345678901.5")], pa.decimal256(50, 1)),
        "numeric",
        "numeric",
        [{"stringValue": "12345678901234567890123456789012345678901.5"}],
    ),
    (
        "unbounded numeric (PostgreSQL sends text)",
        pa.array(["3.14159265358979323846"]),
        "numeric",
        "numeric",
        [{"stringValue": "3.14159265358979323846"}],
    ),
    (
        "varchar",
        pa.array(["a", "", None]),
        "VARCHAR",
        "varchar",
        [{"stringValue": "a"}, {"stringValue": ""}, NULL_FIELD],
    ),
    ("text", pa.array(["x"]), "text", "varchar", [{"stringValue": "x"}]),
    ("large string", pa.array(["x"], pa.large_string()), None, "varchar", [{"stringValue": "x"}]),
    ("bpchar", pa.array(["ab  "]), "bpchar", "bpchar", [{"stringValue": "ab  "}]),
    (
        "uuid",
        pa.array(["0b9e5f0e-4e4e-4c2b-9d6e-0c7f1e0c9a11"]),
        "UUID",
        "varchar",
        [{"stringValue": "0b9e5f0e-4e4e-4c2b-9d6e-0c7f1e0c9a11"}],
    ),
    (
        "enum",
        pa.array(["a", "b", "a"]).dictionary_encode(),
        "ENUM('a', 'b')",
        "varchar",
        [{"stringValue": "a"}, {"stringValue": "b"}, {"stringValue": "a"}],
    ),
    (
        "bool",
        pa.array([True, False, None]),
        "BOOLEAN",
        "bool",
        [{"booleanValue": True}, {"booleanValue": False}, NULL_FIELD],
    ),
    (
        "date",
        pa.array([dt.date(2024, 1, 2)], pa.date32()),
        "DATE",
        "date",
        [{"stringValue": "2024-01-02"}],
    ),
    (
        "date64",
        pa.array([dt.date(2024, 1, 2)], pa.date64()),
        None,
        "date",
        [{"stringValue": "2024-01-02"}],
    ),
    (
        "time",
        pa.array([dt.time(3, 4, 5), dt.time(3, 4, 5, 500000), dt.time(3, 4)], pa.time64("us")),
        "TIME",
        "time",
        [{"stringValue": "03:04:05"}, {"stringValue": "03:04:05.5"}, {"stringValue": "03:04:00"}],
    ),
    (
        "time32",
        pa.array([dt.time(3, 4, 5)], pa.time32("s")),
        None,
        "time",
        [{"stringValue": "03:04:05"}],
    ),
    (
        "timetz",
        pa.array([dt.time(1, 4, 5)], pa.time64("us")),
        "TIME WITH TIME ZONE",
        "timetz",
        [{"stringValue": "01:04:05+00"}],
    ),
    (
        # As the AWS CLI examples show it (JDBC's Timestamp.toString()).
        "timestamp",
        pa.array(
            [dt.datetime(2022, 2, 22), dt.datetime(2020, 8, 21, 17, 33, 51, 887120), None],
            pa.timestamp("us"),
        ),
        "TIMESTAMP",
        "timestamp",
        [
            {"stringValue": "2022-02-22 00:00:00.0"},
            {"stringValue": "2020-08-21 17:33:51.88712"},
            NULL_FIELD,
        ],
    ),
    (
        "timestamp_s",
        pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("s")),
        "TIMESTAMP_S",
        "timestamp",
        [{"stringValue": "2024-01-02 03:04:05.0"}],
    ),
    (
        "timestamp_ns",
        pa.array([1_700_000_000_123_456_789], pa.timestamp("ns")),
        "TIMESTAMP_NS",
        "timestamp",
        [{"stringValue": "2023-11-14 22:13:20.123456789"}],
    ),
    (
        "timestamptz (UTC)",
        pa.array(
            [
                dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
            ],
            pa.timestamp("us", "UTC"),
        ),
        "timestamptz",
        "timestamptz",
        [{"stringValue": "2024-01-02 03:04:05+00"}, {"stringValue": "2024-01-02 03:04:05.12+00"}],
    ),
    (
        "timestamptz in another zone: shown in UTC",
        pa.array(
            [dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)], pa.timestamp("us", "Europe/Berlin")
        ),
        "TIMESTAMP WITH TIME ZONE",
        "timestamptz",
        [{"stringValue": "2024-01-02 01:04:05+00"}],
    ),
    (
        "interval",
        pa.array(
            [(14, 3, 7_200_000_000_000), (0, -1, 0), (0, 0, 0), (0, 0, 1_500_000_000)],
            pa.month_day_nano_interval(),
        ),
        "INTERVAL",
        "interval",
        [
            {"stringValue": "1 year 2 mons 3 days 02:00:00"},
            {"stringValue": "-1 days"},
            {"stringValue": "00:00:00"},
            {"stringValue": "00:00:01.5"},
        ],
    ),
    (
        "duration",
        pa.array([90_000], pa.duration("s")),
        None,
        "interval",
        [{"stringValue": "25:00:00"}],
    ),
    (
        "blob",
        pa.array([b"\x00\xffab", None], pa.binary()),
        "BLOB",
        "varbyte",
        [{"blobValue": "AP9hYg=="}, NULL_FIELD],
    ),
    ("bytea", pa.array([b"ab"], pa.large_binary()), "bytea", "varbyte", [{"blobValue": "YWI="}]),
    (
        "list",
        pa.array([[1, 2], [], None], pa.list_(pa.int64())),
        "BIGINT[]",
        "super",
        [{"stringValue": "[1,2]"}, {"stringValue": "[]"}, NULL_FIELD],
    ),
    (
        "PostgreSQL array",
        pa.array([["a", None]], pa.list_(pa.string())),
        "_text",
        "super",
        [{"stringValue": '["a",null]'}],
    ),
    (
        "struct",
        pa.array([{"a": 1, "b": "x"}], pa.struct([("a", pa.int32()), ("b", pa.string())])),
        "STRUCT(a INTEGER, b VARCHAR)",
        "super",
        [{"stringValue": '{"a":1,"b":"x"}'}],
    ),
    (
        "map",
        pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int32())),
        "MAP(VARCHAR, INTEGER)",
        "super",
        [{"stringValue": '{"k":1}'}],
    ),
    ("DuckDB JSON", pa.array(['{"a":1}']), "JSON", "super", [{"stringValue": '{"a":1}'}]),
    ("PostgreSQL jsonb", pa.array(['{"a": 1}']), "jsonb", "super", [{"stringValue": '{"a": 1}'}]),
    ("NULL column", pa.nulls(2), '"NULL"', "varchar", [NULL_FIELD, NULL_FIELD]),
]


@pytest.mark.parametrize(
    ("name", "arr", "hint", "type_name", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_values_and_type_names(
    name: str, arr: pa.Array, hint: str | None, type_name: str, expected: list[Any]
) -> None:
    batch = pa.record_batch([arr], names=["c"])
    columns = [{"name": "c", "type_name": hint}] if hint else None
    plan = plan_columns(batch.schema, columns)
    assert plan[0].metadata["typeName"] == type_name
    assert records(batch, plan) == [[field] for field in expected]


def _one(arr: pa.Array, hint: dict[str, Any] | None = None) -> dict[str, Any]:
    batch = pa.record_batch([arr], names=["c"])
    return plan_columns(batch.schema, [hint] if hint else None)[0].metadata


def test_column_metadata_is_jdbcs() -> None:
    # Every member of the model, as the AWS CLI example shows an int4 result column.
    assert _one(pa.array([1], pa.int32())) == {
        "isCaseSensitive": False,
        "isCurrency": False,
        "isSigned": True,
        "label": "c",
        "length": 0,
        "name": "c",
        "nullable": 1,
        "precision": 10,
        "scale": 0,
        "schemaName": "",
        "tableName": "",
        "typeName": "int4",
    }
    varchar = _one(pa.array(["a"]), {"type_name": "varchar", "length": 200, "nullable": True})
    assert (varchar["precision"], varchar["length"], varchar["isCaseSensitive"]) == (200, 0, True)
    assert _one(pa.array(["a"]))["precision"] == UNBOUNDED
    timestamp = _one(pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")))
    assert (timestamp["precision"], timestamp["scale"], timestamp["isSigned"]) == (29, 6, False)
    decimal = _one(pa.array([Decimal("1.5")], pa.decimal128(12, 3)))
    assert (decimal["precision"], decimal["scale"], decimal["isSigned"]) == (12, 3, True)
    # NOT NULL (an Arrow field or the engine says so) is 0, as JDBC's columnNoNulls.
    not_null = pa.record_batch(
        [pa.array([1])], schema=pa.schema([pa.field("c", pa.int64(), nullable=False)])
    )
    assert plan_columns(not_null.schema)[0].metadata["nullable"] == 0
    assert _one(pa.array([1]), {"type_name": "int8", "nullable": False})["nullable"] == 0


def test_an_engine_name_that_disagrees_with_the_values_loses() -> None:
    # A type name whose values would go in another Field member than the Arrow type's:
    # the values decide, so a client reading typeName finds the member it expects.
    meta = _one(pa.array(["12"]), {"type_name": "int4"})
    assert meta["typeName"] == "varchar"


@pytest.mark.parametrize(
    ("engine_name", "expected"),
    [
        ("INTEGER", "int4"),
        ("DECIMAL(18,3)", "numeric"),
        ("character varying", "varchar"),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("timestamp without time zone", "timestamp"),
        ("_int4", "super"),
        ("INTEGER[]", "super"),
        ("STRUCT(a INTEGER)", "super"),
        ("bytea", "varbyte"),
        ("jsonb", "super"),
        ("super", "super"),
        ("inet", None),
        ("", None),
    ],
)
def test_redshift_type_names(engine_name: str, expected: str | None) -> None:
    assert redshift_type_name(engine_name) == expected


def test_catalog_columns() -> None:
    assert catalog_column(
        {"name": "v", "type_name": "VARCHAR(20)", "nullable": False}, schema="s", table="t"
    ) == {
        "isCaseSensitive": True,
        "isCurrency": False,
        "isSigned": False,
        "length": 20,
        "name": "v",
        "nullable": 0,
        "precision": 20,
        "scale": 0,
        "schemaName": "s",
        "tableName": "t",
        "typeName": "varchar",
    }
    money = catalog_column(
        {"name": "m", "type_name": "numeric", "precision": 12, "scale": 2}, schema="s", table="t"
    )
    assert (money["typeName"], money["precision"], money["scale"], money["length"]) == (
        "numeric",
        12,
        2,
        0,
    )
    unbounded = catalog_column({"name": "x", "type_name": "text"}, schema="s", table="t")
    assert unbounded["precision"] == unbounded["length"] == UNBOUNDED
    odd = catalog_column({"name": "ip", "type_name": "inet"}, schema="s", table="t")
    assert odd["typeName"] == "varchar"


def test_csv_lines_quote_what_needs_it_and_keep_null_apart_from_empty() -> None:
    batch = pa.record_batch(
        [
            pa.array([1, None, 3]),
            pa.array(["plain", "", 'a,"b"\nc']),
            pa.array([True, None, False]),
            pa.array([dt.datetime(2022, 2, 22), None, None], pa.timestamp("us")),
            pa.array([b"ab", None, b""]),
        ],
        names=["i", "s", "b", "t", "v"],
    )
    lines = csv_lines(batch, plan_columns(batch.schema)).to_pylist()
    assert lines == [
        "1,plain,true,2022-02-22 00:00:00.0,6162\r\n",
        ',"",,,\r\n',
        '3,"a,""b""\nc",false,,""\r\n',
    ]


def test_csv_pieces_are_whole_lines() -> None:
    lines = [f"{i},{'x' * 10}\r\n" for i in range(100)]
    pieces = csv_pieces(lines, piece_bytes=100)
    assert "".join(pieces) == "".join(lines)
    assert all(p.endswith("\r\n") and len(p) <= 100 for p in pieces)
    assert len(pieces) > 10
    assert csv_pieces([], 100) == []


def test_no_rows_and_no_columns() -> None:
    empty = pa.record_batch([pa.array([], pa.int32())], names=["c"])
    assert records(empty, plan_columns(empty.schema)) == []
    assert csv_lines(empty, plan_columns(empty.schema)).to_pylist() == []


def _botocore_model() -> ServiceModel:
    path = os.path.join(
        os.path.dirname(botocore.__file__), "data/redshift-data/2019-12-20/service-2.json.gz"
    )
    with gzip.open(path) as fh:
        return ServiceModel(json.load(fh), service_name="redshift-data")


def test_boto3_reads_the_records_back() -> None:
    batch = pa.record_batch(
        [
            pa.array([1, None]),
            pa.array([2.5, float("nan")]),
            pa.array([b"\x00\x01", None]),
            pa.array(["x", "y"]),
            pa.array([True, None]),
        ],
        names=["i", "f", "b", "s", "t"],
    )
    plans = plan_columns(batch.schema)
    body = orjson.dumps(
        {
            "Records": records(batch, plans),
            "ColumnMetadata": [p.metadata for p in plans],
            "TotalNumRows": 2,
        }
    )
    shape = _botocore_model().operation_model("GetStatementResult").output_shape
    parsed = create_parser("json").parse({"body": body, "headers": {}, "status_code": 200}, shape)
    assert parsed["Records"][0] == [
        {"longValue": 1},
        {"doubleValue": 2.5},
        {"blobValue": b"\x00\x01"},
        {"stringValue": "x"},
        {"booleanValue": True},
    ]
    assert parsed["Records"][1][0] == {"isNull": True}
    assert parsed["Records"][1][1] == {"doubleValue": "NaN"}
    assert parsed["ColumnMetadata"][2]["typeName"] == "varbyte"


def test_a_page_of_1000_rows_by_10_columns_is_fast() -> None:
    n = 1000
    batch = pa.record_batch(
        {
            "a": pa.array(range(n), pa.int64()),
            "b": pa.array([i / 7 for i in range(n)]),
            "c": pa.array([f"name {i}" for i in range(n)]),
            "d": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
            "e": pa.array(
                [dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i * 37.5) for i in range(n)],
                pa.timestamp("us"),
            ),
            "f": pa.array([i % 2 == 0 for i in range(n)]),
            "g": pa.array([dt.date(2024, 1, 1)] * n),
            "h": pa.array(range(n), pa.int32()),
            "i": pa.array([None if i % 3 else f"x{i}" for i in range(n)]),
            "j": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * n, pa.timestamp("us", "UTC")),
        }
    )
    plans = plan_columns(batch.schema)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        orjson.dumps(records(batch, plans))
        best = min(best, time.perf_counter() - start)
    # About 2.5 ms on a laptop; the bound leaves room for a slow CI machine.
    assert best < 0.025, f"{best * 1000:.1f} ms"
