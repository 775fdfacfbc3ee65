"""What each Data API operation accepts: the input shapes of the 2019-12-20 service model.

Written out here rather than read from botocore at run time (botocore is an optional extra);
``tests/unit/dataapi/test_shapes.py`` checks this table against the model botocore ships, so a
change in the model fails a test instead of drifting.

:func:`check` validates a decoded JSON body the way the service does and raises
:class:`~sqltide.errors.DataApiError`:

- a value of the wrong JSON type (a number where a string belongs) is a
  ``SerializationException``, as AWS's JSON front end answers;
- broken constraints (a required member missing, a length, a range, an enum, a pattern) are one
  ``ValidationException`` listing them all in AWS's words ("2 validation errors detected:
  Value '41' at 'sqls' failed to satisfy constraint: ...");
- a member the model does not have is a ``ValidationException`` too. AWS ignores those; sqltide
  refuses them so that an option it does not know is never silently dropped.

A JSON ``null`` counts as an absent member, as in AWS's decoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataApiError


@dataclass(frozen=True, slots=True)
class Str:
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern))


@dataclass(frozen=True, slots=True)
class Int:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Bool:
    pass


@dataclass(frozen=True, slots=True)
class List:
    member: Shape
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Struct:
    members: Mapping[str, Shape]
    required: tuple[str, ...] = ()


Shape = Str | Int | Bool | List | Struct

# -- the model's named shapes ------------------------------------------------------------------
STRING = Str()
BOOLEAN = Bool()
CLIENT_TOKEN = Str(min=1, max=64)
CLUSTER_IDENTIFIER = Str(min=1, max=63, pattern=r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
WORKGROUP_NAME = Str(
    min=3,
    max=128,
    pattern=(
        r"([a-z0-9-]{3,63}|arn:(aws(-[a-z]+)*):redshift-serverless:"
        r"([a-z]{2}(-gov|(-iso[a-z]?))?|eusc-[a-z]+)-[a-z]+-\d{1}:\d{12}:workgroup/"
        r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        r"|[a-z0-9-]{1,63}/[a-z0-9-]{1,63}))"
    ),
)
UUID = Str(pattern=r"[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d{0,2})?")
STATEMENT_NAME = Str(min=0, max=2048)
RESULT_FORMAT = Str(enum=("JSON", "CSV"))
EXECUTION_MODE = Str(enum=("TRANSACTION", "AUTO_COMMIT"))
STATUS = Str(enum=("SUBMITTED", "PICKED", "STARTED", "FINISHED", "ABORTED", "FAILED", "ALL"))
SESSION_STATUS = Str(enum=("AVAILABLE", "BUSY", "CLOSED"))
SESSION_ALIVE_SECONDS = Int(min=0, max=86400)
WAIT_TIME_SECONDS = Int(min=1, max=30)
LIST_LIMIT = Int(min=0, max=100)
PAGE_SIZE = Int(min=0, max=1000)
SQL_PARAMETERS = List(
    Struct(
        {"name": Str(pattern=r"[0-9a-zA-Z_]+"), "value": Str(min=1)},
        required=("name", "value"),
    ),
    min=1,
)

# Where a statement runs: shared by the operations that connect to a warehouse.
_CONNECTION: dict[str, Shape] = {
    "ClusterIdentifier": CLUSTER_IDENTIFIER,
    "SecretArn": STRING,
    "DbUser": STRING,
    "Database": STRING,
    "WorkgroupName": WORKGROUP_NAME,
}
_SUBMIT: dict[str, Shape] = {
    **_CONNECTION,
    "WithEvent": BOOLEAN,
    "StatementName": STATEMENT_NAME,
    "Parameters": SQL_PARAMETERS,
    "ClientToken": CLIENT_TOKEN,
    "ResultFormat": RESULT_FORMAT,
    "SessionKeepAliveSeconds": SESSION_ALIVE_SECONDS,
    "SessionId": UUID,
    "WaitTimeSeconds": WAIT_TIME_SECONDS,
}
_CATALOG: dict[str, Shape] = {
    **_CONNECTION,
    "ConnectedDatabase": STRING,
    "NextToken": STRING,
    "MaxResults": PAGE_SIZE,
}
_RESULT = Struct(
    {"Id": UUID, "NextToken": STRING, "WaitTimeSeconds": WAIT_TIME_SECONDS}, required=("Id",)
)

#: Every operation's input shape, by the name it has in ``X-Amz-Target: RedshiftData.<name>``.
INPUTS: dict[str, Struct] = {
    "BatchExecuteStatement": Struct(
        {
            "Sqls": List(STRING, min=1, max=40),
            **_SUBMIT,
            "ExecutionMode": EXECUTION_MODE,
        },
        required=("Sqls",),
    ),
    "CancelStatement": Struct({"Id": UUID}, required=("Id",)),
    "DescribeStatement": Struct(
        {"Id": UUID, "WaitTimeSeconds": WAIT_TIME_SECONDS}, required=("Id",)
    ),
    "DescribeTable": Struct(
        {**_CATALOG, "Schema": STRING, "Table": STRING}, required=("Database",)
    ),
    "ExecuteStatement": Struct({"Sql": STRING, **_SUBMIT}, required=("Sql",)),
    "GetStatementResult": _RESULT,
    "GetStatementResultV2": _RESULT,
    "ListDatabases": Struct(
        {**_CONNECTION, "NextToken": STRING, "MaxResults": PAGE_SIZE},
    ),
    "ListSchemas": Struct({**_CATALOG, "SchemaPattern": STRING}, required=("Database",)),
    "ListSessions": Struct(
        {
            "NextToken": STRING,
            "MaxResults": LIST_LIMIT,
            "SessionId": UUID,
            "Status": SESSION_STATUS,
            "RoleLevel": BOOLEAN,
            "ClusterIdentifier": CLUSTER_IDENTIFIER,
            "WorkgroupName": WORKGROUP_NAME,
            "Database": STRING,
        }
    ),
    "ListStatements": Struct(
        {
            "NextToken": STRING,
            "MaxResults": LIST_LIMIT,
            "StatementName": STATEMENT_NAME,
            "Status": STATUS,
            "RoleLevel": BOOLEAN,
            "Database": STRING,
            "ClusterIdentifier": CLUSTER_IDENTIFIER,
            "WorkgroupName": WORKGROUP_NAME,
        }
    ),
    "ListTables": Struct(
        {**_CATALOG, "SchemaPattern": STRING, "TablePattern": STRING}, required=("Database",)
    ),
}

#: How much of a value an error message repeats (a 100 KB statement is not echoed whole).
_SHOWN = 200


def check(operation: str, body: Any) -> dict[str, Any]:
    """``body`` (decoded JSON) checked against ``operation``'s input; returns it without nulls.

    Raises ``DataApiError`` (``SerializationException`` or ``ValidationException``).
    """
    shape = INPUTS[operation]
    if not isinstance(body, dict):
        raise _serialization("the request body must be a JSON object")
    problems: list[str] = []
    cleaned = _struct(shape, body, "", problems)
    if problems:
        count = len(problems)
        noun = "validation error" if count == 1 else "validation errors"
        raise DataApiError(
            f"{count} {noun} detected: {'; '.join(problems)}",
            details={"aws_type": "ValidationException"},
        )
    return cleaned


def _serialization(message: str) -> DataApiError:
    return DataApiError(message, details={"aws_type": "SerializationException"})


def _path(parent: str, name: str) -> str:
    # AWS names members in messages in lower camel case ("sqls", "clusterIdentifier").
    member = name[:1].lower() + name[1:]
    return f"{parent}.{member}" if parent else member


def _shown(value: Any) -> str:
    if isinstance(value, list):
        text = "[" + ", ".join(_shown(v) for v in value) + "]"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _struct(shape: Struct, body: dict[str, Any], path: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        if value is None:
            continue
        member = shape.members.get(name)
        if member is None:
            where = f" of {path}" if path else ""
            known = ", ".join(sorted(shape.members))
            problems.append(f"Unknown member '{name}'{where}: it must be one of {known}")
            continue
        out[name] = _value(member, value, _path(path, name), problems)
    for name in shape.required:
        if name not in out:
            problems.append(
                f"Value null at '{_path(path, name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    return out


def _value(shape: Shape, value: Any, path: str, problems: list[str]) -> Any:
    if isinstance(shape, Str):
        if not isinstance(value, str):
            raise _serialization(f"'{path}' must be a string, not {_json_type(value)}")
        _string(shape, value, path, problems)
    elif isinstance(shape, Bool):
        if not isinstance(value, bool):
            raise _serialization(f"'{path}' must be a boolean, not {_json_type(value)}")
    elif isinstance(shape, Int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _serialization(f"'{path}' must be an integer, not {_json_type(value)}")
        if shape.min is not None and value < shape.min:
            problems.append(
                _broken(value, path, f"have value greater than or equal to {shape.min}")
            )
        if shape.max is not None and value > shape.max:
            problems.append(_broken(value, path, f"have value less than or equal to {shape.max}"))
    elif isinstance(shape, List):
        if not isinstance(value, list):
            raise _serialization(f"'{path}' must be a list, not {_json_type(value)}")
        _length(shape.min, shape.max, len(value), value, path, problems)
        # AWS numbers list items from 1 ("parameters.1.member.name").
        value = [
            _value(shape.member, item, f"{path}.{n}.member", problems)
            for n, item in enumerate(value, start=1)
        ]
    else:
        if not isinstance(value, dict):
            raise _serialization(f"'{path}' must be an object, not {_json_type(value)}")
        value = _struct(shape, value, path, problems)
    return value


def _string(shape: Str, value: str, path: str, problems: list[str]) -> None:
    _length(shape.min, shape.max, len(value), value, path, problems)
    if shape.enum is not None and value not in shape.enum:
        problems.append(_broken(value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]"))
    if shape._regex is not None and not shape._regex.fullmatch(value):
        problems.append(
            _broken(value, path, f"satisfy regular expression pattern: {shape.pattern}")
        )


def _length(
    low: int | None, high: int | None, size: int, value: Any, path: str, problems: list[str]
) -> None:
    if low is not None and size < low:
        problems.append(_broken(value, path, f"have length greater than or equal to {low}"))
    if high is not None and size > high:
        problems.append(_broken(value, path, f"have length less than or equal to {high}"))


def _broken(value: Any, path: str, rule: str) -> str:
    return f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must {rule}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
