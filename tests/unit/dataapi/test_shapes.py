"""shapes.py against botocore's redshift-data model: the same operations, members, required
members and constraints, so the face validates exactly as the model says; and how ``check``
words what it finds."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from sqltide.dataapi import exceptions, shapes
from sqltide.errors import DataApiError

_SESSION = botocore.session.get_session()
MODEL = _SESSION.get_service_model("redshift-data")
#: The model as botocore ships it (its Shape objects leave out ``fault``).
RAW_SHAPES = _SESSION.get_component("data_loader").load_service_model("redshift-data", "service-2")[
    "shapes"
]


def _compare(ours: shapes.Shape, theirs: Any, path: str) -> None:
    kind = theirs.type_name
    meta = theirs.metadata
    if kind == "structure":
        assert isinstance(ours, shapes.Struct), path
        assert set(ours.members) == set(theirs.members), path
        assert set(ours.required) == set(theirs.required_members), path
        for name, member in theirs.members.items():
            _compare(ours.members[name], member, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(ours, shapes.List), path
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), path
        _compare(ours.member, theirs.member, f"{path}[]")
    elif kind == "string":
        assert isinstance(ours, shapes.Str), path
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), path
        assert ours.pattern == meta.get("pattern"), path
        assert ours.enum == (tuple(meta["enum"]) if "enum" in meta else None), path
    elif kind in ("integer", "long"):
        assert isinstance(ours, shapes.Int), path
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), path
    elif kind == "boolean":
        assert isinstance(ours, shapes.Bool), path
    else:  # pragma: no cover - the inputs use no other kind today
        raise AssertionError(f"{path}: a {kind} input is not in shapes.py")


def test_every_operation_of_the_model_and_no_other() -> None:
    assert set(shapes.INPUTS) == set(MODEL.operation_names)


@pytest.mark.parametrize("name", sorted(MODEL.operation_names))
def test_input_shape_matches_the_model(name: str) -> None:
    _compare(shapes.INPUTS[name], MODEL.operation_model(name).input_shape, name)


def test_every_modeled_exception_has_a_status() -> None:
    modeled = {
        e.name for op in MODEL.operation_names for e in MODEL.operation_model(op).error_shapes
    }
    assert modeled <= set(exceptions.STATUS)
    for name in modeled:
        shape = MODEL.shape_for(name)
        # What the model requires beside the message is sent (ResourceId, StatementId).
        extra = set(shape.required_members) - {"Message"}
        assert extra == set(exceptions.MEMBERS.get(name, ())), name
        # Faults are 500 (the SDKs retry them), client errors 400.
        assert (exceptions.STATUS[name] == 500) == bool(RAW_SHAPES[name].get("fault")), name


def _error(body: Any, operation: str = "DescribeStatement") -> DataApiError:
    with pytest.raises(DataApiError) as caught:
        shapes.check(operation, body)
    return caught.value


def test_check_drops_nulls_and_returns_what_it_took() -> None:
    body = {"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766:2", "WaitTimeSeconds": None}
    assert shapes.check("DescribeStatement", body) == {"Id": body["Id"]}


def test_check_words_problems_as_aws_does() -> None:
    one = _error({})
    assert one.aws_type == "ValidationException"
    assert one.message == (
        "1 validation error detected: Value null at 'id' failed to satisfy constraint: "
        "Member must not be null"
    )
    long_sql = _error({"Sqls": ["x" * 500] * 41}, "BatchExecuteStatement")
    assert (
        "at 'sqls' failed to satisfy constraint: Member must have length less than or equal to 40"
        in long_sql.message
    )
    assert len(long_sql.message) < 400  # a huge value is not echoed whole
    nested = _error(
        {"Sql": "x", "Parameters": [{"name": "ok"}, {"name": "bad name", "value": "v"}]},
        "ExecuteStatement",
    )
    assert nested.message.startswith("2 validation errors detected: ")
    assert "Value null at 'parameters.1.member.value'" in nested.message
    assert "Value 'bad name' at 'parameters.2.member.name' failed" in nested.message


@pytest.mark.parametrize(
    "body",
    [
        {"Id": 1},
        {"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766", "WaitTimeSeconds": True},
        {"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766", "WaitTimeSeconds": 1.5},
        [],
    ],
)
def test_wrong_json_types_are_serialization_errors(body: Any) -> None:
    assert _error(body).aws_type == "SerializationException"


def test_unknown_members_are_refused() -> None:
    error = _error({"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766", "Wait": 3})
    assert error.aws_type == "ValidationException" and "Unknown member 'Wait'" in error.message
