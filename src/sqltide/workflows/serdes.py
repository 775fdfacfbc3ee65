"""How results, states and inputs become checkpoint text: the AWS SDK's ``serdes`` module.

A :class:`SerDes` turns a value into text and back. The default,
:class:`ExtendedTypeSerDes`, writes plain JSON whenever the value is plain JSON (dicts with
string keys, lists, strings, finite numbers, booleans, ``None``), so checkpoints and results
stay readable; a value holding anything JSON cannot carry exactly (``Decimal``, ``datetime``,
``date``, ``time``, ``UUID``, ``bytes``, tuples, sets, dicts with other keys, non-finite
floats, a ``BatchResult``) is written whole as a tree of type-tagged nodes,
``{"t": tag, "v": value}``, that reads back to an equal value of the same types.
:class:`JsonSerDes` is plain ``json`` and nothing else; :class:`PassThroughSerDes` hands text
through untouched.

Every operation reads back what it wrote before returning it, also on the first run (the AWS
SDK 3.x round trip), so the first run and every replay see the same value. A value that cannot
be written fails the operation with :class:`~sqltide.errors.SerDesError` naming its type, where
it sits in the value and the operation.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from ..errors import RetryableSerDesError, SerDesError
from .types import BatchResult

T = TypeVar("T")

__all__ = [
    "DEFAULT_SERDES",
    "ExtendedTypeSerDes",
    "JsonSerDes",
    "PassThroughSerDes",
    "SerDes",
    "SerDesContext",
    "deserialize",
    "serialize",
]


@dataclass(frozen=True)
class SerDesContext:
    """Where a value is being (de)serialized: the operation and the execution."""

    operation_id: str = ""
    durable_execution_arn: str = ""

    @property
    def execution_id(self) -> str:
        """The execution's id (the AWS SDK calls it the durable execution ARN)."""
        return self.durable_execution_arn


class SerDes(ABC, Generic[T]):
    """Turns values into checkpoint text and back."""

    @abstractmethod
    def serialize(self, value: T, serdes_context: SerDesContext) -> str:
        """The text for ``value``."""

    @abstractmethod
    def deserialize(self, data: str, serdes_context: SerDesContext) -> T:
        """The value for ``data``."""

    @staticmethod
    def is_primitive(obj: Any) -> bool:
        """Whether ``obj`` is JSON scalars and lists of them only."""
        if obj is None or isinstance(obj, str | int | float | bool):
            return True
        if isinstance(obj, list):
            return all(SerDes.is_primitive(x) for x in obj)
        return False


class PassThroughSerDes(SerDes[T]):
    """Hands text through as it is (for values that already are text)."""

    def serialize(self, value: T, serdes_context: SerDesContext) -> str:
        if value is not None and not isinstance(value, str):
            raise SerDesError(
                f"PassThroughSerDes passes text only; got a value of type {_type_name(value)}"
            )
        return value  # type: ignore[return-value]

    def deserialize(self, data: str, serdes_context: SerDesContext) -> T:
        return data  # type: ignore[return-value]


class JsonSerDes(SerDes[T]):
    """Plain JSON (``json.dumps``/``json.loads``): JSON's types only."""

    def serialize(self, value: T, serdes_context: SerDesContext) -> str:
        try:
            return json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            bad = _first_non_json(value, "$")
            where = f" (at {bad[1]})" if bad else ""
            kind = _type_name(bad[0]) if bad else _type_name(value)
            raise SerDesError(
                f"JsonSerDes cannot serialize a value of type {kind}{where}: {exc}"
            ) from None

    def deserialize(self, data: str, serdes_context: SerDesContext) -> T:
        return json.loads(data)  # type: ignore[no-any-return]


# -- the extended types ------------------------------------------------------------------------
_TAG = "t"
_VALUE = "v"


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _is_plain(value: Any) -> bool:
    """Whether ``json`` carries ``value`` exactly (types included)."""
    if value is None or isinstance(value, str | bool | int):
        return type(value) in (str, bool, int) or value is None
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if type(value) is list:
        return all(_is_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


def _first_non_json(value: Any, path: str) -> tuple[Any, str] | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return k, f"{path} (a key)"
            found = _first_non_json(v, f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_non_json(v, f"{path}[{i}]")
            if found:
                return found
        return None
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return None
    return value, path


def _encode(value: Any, path: str) -> dict[str, Any]:
    """``value`` as a tree of tagged nodes; SerDesError naming the type and path otherwise."""
    if value is None:
        return {_TAG: "n", _VALUE: None}
    if isinstance(value, bool):
        return {_TAG: "b", _VALUE: value}
    if isinstance(value, str):
        return {_TAG: "s", _VALUE: str(value)}
    if isinstance(value, int):
        return {_TAG: "i", _VALUE: int(value)}
    if isinstance(value, float):
        return {_TAG: "f", _VALUE: value if math.isfinite(value) else repr(value)}
    if isinstance(value, Decimal):
        return {_TAG: "d", _VALUE: str(value)}
    if isinstance(value, dt.datetime):
        tz = value.tzinfo
        if isinstance(tz, ZoneInfo):
            return {_TAG: "dt", _VALUE: [value.isoformat(), tz.key, value.fold]}
        return {_TAG: "dt", _VALUE: value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "D", _VALUE: value.isoformat()}
    if isinstance(value, dt.time):
        return {_TAG: "T", _VALUE: value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_TAG: "td", _VALUE: [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {_TAG: "u", _VALUE: str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {_TAG: "B", _VALUE: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, BatchResult):
        # Plain when its results are (the usual case), so the checkpoint stays readable; a
        # plain one has an "all" key, so it never reads as a tagged node.
        data = value.to_dict()
        return {_TAG: "br", _VALUE: data if _is_plain(data) else _encode(data, path)}
    if isinstance(value, tuple):
        return {_TAG: "t", _VALUE: [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return {_TAG: "l", _VALUE: [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, frozenset | set):
        tag = "F" if isinstance(value, frozenset) else "S"
        return {_TAG: tag, _VALUE: [_encode(v, f"{path}{{}}") for v in value]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {_TAG: "m", _VALUE: {k: _encode(v, f"{path}.{k}") for k, v in value.items()}}
        return {
            _TAG: "M",
            _VALUE: [
                [_encode(k, f"{path} (a key)"), _encode(v, f"{path}[{k!r}]")]
                for k, v in value.items()
            ],
        }
    raise SerDesError(
        f"ExtendedTypeSerDes cannot serialize a value of type {_type_name(value)} (at {path}); "
        "it takes JSON values, Decimal, datetime, date, time, timedelta, UUID, bytes, tuples, "
        "sets and dicts of them: convert the value, or give the operation a serdes of its own"
    )


def _decode(node: Any) -> Any:
    if not (isinstance(node, dict) and node.keys() == {_TAG, _VALUE}):
        raise SerDesError(f"not a tagged value: {str(node)[:80]!r}")
    tag, v = node[_TAG], node[_VALUE]
    match tag:
        case "n":
            return None
        case "b" | "s" | "i":
            return v
        case "f":
            return float(v)
        case "d":
            return Decimal(v)
        case "dt":
            if isinstance(v, list):
                text, key, fold = v
                return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(key), fold=fold)
            return dt.datetime.fromisoformat(v)
        case "D":
            return dt.date.fromisoformat(v)
        case "T":
            return dt.time.fromisoformat(v)
        case "td":
            return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
        case "u":
            return uuid.UUID(v)
        case "B":
            return base64.b64decode(v)
        case "br":
            return BatchResult.from_dict(v if "all" in v else _decode(v))
        case "t":
            return tuple(_decode(x) for x in v)
        case "l":
            return [_decode(x) for x in v]
        case "S":
            return {_decode(x) for x in v}
        case "F":
            return frozenset(_decode(x) for x in v)
        case "m":
            return {k: _decode(x) for k, x in v.items()}
        case "M":
            return {_decode(k): _decode(x) for k, x in v}
    raise SerDesError(f"unknown type tag {tag!r} in a serialized value")


class ExtendedTypeSerDes(SerDes[T]):
    """JSON, and the Python types JSON cannot carry exactly, written as type-tagged nodes."""

    def serialize(self, value: T, serdes_context: SerDesContext | None = None) -> str:
        # Plain JSON stays plain, unless its top is shaped like a tagged node ({"t", "v"}),
        # which would read back as one: that is tagged too, so reading is never ambiguous.
        if _is_plain(value) and not (isinstance(value, dict) and value.keys() == {_TAG, _VALUE}):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return json.dumps(_encode(value, "$"), separators=(",", ":"), ensure_ascii=False)

    def deserialize(self, data: str, serdes_context: SerDesContext | None = None) -> T:
        obj = json.loads(data)
        if isinstance(obj, dict) and obj.keys() == {_TAG, _VALUE}:
            return _decode(obj)  # type: ignore[no-any-return]
        return obj  # type: ignore[no-any-return]


#: What an operation without a serdes of its own uses.
DEFAULT_SERDES: SerDes[Any] = ExtendedTypeSerDes()


def serialize(
    serdes: SerDes[Any] | None,
    value: Any,
    *,
    operation_id: str = "",
    execution_id: str = "",
    what: str = "the value",
) -> str | None:
    """``value`` as text by ``serdes`` (the default when ``None``).

    Raises :class:`SerDesError` naming ``what`` (``"the result of step 'submit'"``), the
    operation and the value's type; a serializer's :class:`RetryableSerDesError` passes as is.
    """
    active = serdes or DEFAULT_SERDES
    ctx = SerDesContext(operation_id, execution_id)
    try:
        text = active.serialize(value, ctx)
    except RetryableSerDesError:
        raise
    except Exception as exc:
        raise SerDesError(
            f"cannot serialize {what} (operation {operation_id or '-'}): {_reason(exc)}"
        ) from None
    if text is not None and not isinstance(text, str):
        raise SerDesError(
            f"cannot serialize {what} (operation {operation_id or '-'}): "
            f"{type(active).__name__}.serialize returned {_type_name(text)}, not text"
        )
    return text


def deserialize(
    serdes: SerDes[Any] | None,
    data: str | None,
    *,
    operation_id: str = "",
    execution_id: str = "",
    what: str = "the value",
) -> Any:
    """The value for ``data`` by ``serdes`` (``None`` reads as ``None``)."""
    if data is None:
        return None
    active = serdes or DEFAULT_SERDES
    try:
        return active.deserialize(data, SerDesContext(operation_id, execution_id))
    except RetryableSerDesError:
        raise
    except Exception as exc:
        raise SerDesError(
            f"cannot deserialize {what} (operation {operation_id or '-'}): {_reason(exc)}"
        ) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, SerDesError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def round_trip(serdes: SerDes[Any] | None, value: Any, **where: str) -> tuple[str | None, Any]:
    """The text for ``value`` and the value read back from it (what the first run returns)."""
    text = serialize(serdes, value, **where)
    return text, deserialize(serdes, text, **where)
