"""Serializers: plain JSON stays plain, extended types round-trip exactly, failures are clear."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sqltide.workflows import RetryableSerDesError, SerDesError
from sqltide.workflows.serdes import (
    ExtendedTypeSerDes,
    JsonSerDes,
    PassThroughSerDes,
    SerDes,
    SerDesContext,
    deserialize,
    round_trip,
    serialize,
)
from sqltide.workflows.types import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionReason,
    ErrorObject,
)

CTX = SerDesContext("1", "exec")
EXT = ExtendedTypeSerDes()

EXTENDED: list[Any] = [
    Decimal("12.3400"),
    Decimal("-1E+3"),
    dt.datetime(2026, 1, 7, 9, 30, 1, 250, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    dt.datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    dt.datetime(2026, 1, 7, 9, 30),
    dt.date(2026, 1, 7),
    dt.time(23, 59, 59, 999, tzinfo=dt.UTC),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"\x00\xffbytes",
    bytearray(b"ab"),
    (1, "a", (2.5, None)),
    {1, 2, 3},
    frozenset({"x"}),
    {1: "int key", (1, 2): "tuple key"},
    {"nested": [{"at": dt.date(2026, 1, 1), "amount": Decimal("1.10")}, (True, False)]},
    float("inf"),
    [float("nan")],
    {"t": "s", "v": "looks like a tagged node"},
]


@pytest.mark.parametrize("value", EXTENDED, ids=lambda v: type(v).__name__)
def test_extended_values_round_trip_to_equal_values_of_the_same_types(value: Any) -> None:
    text = EXT.serialize(value, CTX)
    back = EXT.deserialize(text, CTX)
    json.loads(text)  # always JSON text
    if isinstance(value, list) and isinstance(value[0], float):
        assert math.isnan(back[0])
        return
    assert back == value
    assert type(back) is (bytes if isinstance(value, bytearray) else type(value))
    if isinstance(value, dt.datetime):
        assert back.tzinfo == value.tzinfo and back.utcoffset() == value.utcoffset()


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 1.5, "text", "ünïcode", [1, "a", None], {"a": {"b": [1, 2.5]}}, []],
)
def test_plain_json_is_written_as_plain_json(value: Any) -> None:
    text = EXT.serialize(value, CTX)
    assert json.loads(text) == value  # readable by anyone, no type tags
    assert EXT.deserialize(text, CTX) == value


def test_a_batch_result_round_trips_and_stays_readable() -> None:
    result = BatchResult(
        [
            BatchItem(0, BatchItemStatus.SUCCEEDED, {"n": 1}),
            BatchItem(1, BatchItemStatus.FAILED, error=ErrorObject("boom", "ValueError")),
            BatchItem(2, BatchItemStatus.STARTED),
        ],
        CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
    )
    text = EXT.serialize(result, CTX)
    assert json.loads(text)["v"]["completionReason"] == "FAILURE_TOLERANCE_EXCEEDED"
    assert EXT.deserialize(text, CTX) == result
    with_decimal = BatchResult(
        [BatchItem(0, BatchItemStatus.SUCCEEDED, Decimal("2"))], CompletionReason.ALL_COMPLETED
    )
    assert EXT.deserialize(EXT.serialize(with_decimal, CTX), CTX) == with_decimal


class Opaque:
    pass


def test_an_unserializable_value_names_its_type_path_and_operation() -> None:
    with pytest.raises(SerDesError) as caught:
        serialize(None, {"rows": [1, Opaque()]}, operation_id="3-1", what="the result of step 'x'")
    msg = caught.value.message
    assert "the result of step 'x'" in msg and "operation 3-1" in msg
    assert "test_serdes.Opaque" in msg and "$.rows[1]" in msg
    with pytest.raises(SerDesError, match=r"JsonSerDes cannot serialize .*Decimal \(at \$\.a\)"):
        serialize(JsonSerDes(), {"a": Decimal(1)}, operation_id="2")
    with pytest.raises(SerDesError, match=r"unknown type tag 'zz'"):
        deserialize(None, '{"t": "zz", "v": 1}', operation_id="4")


def test_json_and_pass_through() -> None:
    assert JsonSerDes().deserialize(JsonSerDes().serialize({"a": [1]}, CTX), CTX) == {"a": [1]}
    with pytest.raises(SerDesError):
        serialize(JsonSerDes(), float("nan"))
    passthrough = PassThroughSerDes()
    assert round_trip(passthrough, '{"raw": 1}') == ('{"raw": 1}', '{"raw": 1}')
    with pytest.raises(SerDesError, match="text only"):
        serialize(passthrough, 42)
    assert deserialize(None, None) is None


class Flaky(SerDes[Any]):
    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        raise RetryableSerDesError("the offload store timed out")

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        raise KeyError(data)


class NotText(SerDes[Any]):
    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return 42  # type: ignore[return-value]

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return data


def test_custom_serdes_failures() -> None:
    with pytest.raises(RetryableSerDesError):  # passes as it is: the replay is retried
        serialize(Flaky(), 1)
    with pytest.raises(SerDesError, match="KeyError"):
        deserialize(Flaky(), "x", operation_id="5")
    with pytest.raises(SerDesError, match="returned int, not text"):
        serialize(NotText(), 1)
