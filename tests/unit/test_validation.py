"""The input checks every service shares (``sqltide.validation``), table-driven."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sqltide import errors
from sqltide.statements.requests import StatementRequest, validate
from sqltide.validation import check_json_value, check_text


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**63, "signed 64-bit"),
        (-(2**63) - 1, "signed 64-bit"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("\ud800", "lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
        ([["x", "\ud800"]], "lone surrogate"),
        (nested(65), "deeper than 64"),
        ({"k": object()}, "not a JSON value"),
        ({1: "x"}, "keys must be strings"),
    ],
)
def test_check_json_value_refuses_what_an_encoder_cannot_write(value: Any, reason: str) -> None:
    with pytest.raises(errors.UnprocessableEntity) as info:
        check_json_value(value, where="detail")
    assert reason in info.value.message
    assert info.value.details["path"].startswith("detail")


@pytest.mark.parametrize(
    "value",
    [2**63 - 1, -(2**63), 1.5e308, "\u0000 ok in JSON", "😀", nested(64), {"": [None, True]}],
)
def test_check_json_value_accepts_what_every_encoder_writes(value: Any) -> None:
    assert check_json_value(value, where="detail") == len(orjson.dumps(value))


def test_check_json_value_names_the_path_and_measures_the_size() -> None:
    with pytest.raises(errors.UnprocessableEntity) as info:
        check_json_value({"a": [1, {"b": 2**64}]}, where="detail")
    assert info.value.details["path"] == "detail.a[1].b"
    with pytest.raises(errors.UnprocessableEntity, match="larger than 10 bytes"):
        check_json_value({"a": "x" * 100}, where="detail", max_bytes=10)
    with pytest.raises(errors.UnprocessableEntity, match="13 bytes as JSON; the limit is 12"):
        check_json_value({"a": 1, "b": 2}, where="detail", max_bytes=12)


@pytest.mark.parametrize(
    ("value", "identifier", "reason"),
    [
        ("a\x00b", False, "NUL"),
        ("a\ud800", False, "lone surrogate"),
        ("tab\there", True, "control characters"),
        ("bell\x07", True, "control characters"),
        ("c1\x85", True, "control characters"),
        (7, False, "must be a string"),
    ],
)
def test_check_text(value: Any, identifier: bool, reason: str) -> None:
    with pytest.raises(errors.UnprocessableEntity, match=reason):
        check_text(value, where="name", identifier=identifier)


def test_check_text_takes_ordinary_text() -> None:
    assert check_text("select 1\n\t-- é 😀", where="sql") == "select 1\n\t-- é 😀"


def _validate(**fields: Any) -> None:
    validate(
        StatementRequest(**{"sqls": ("select :p",), "parameters": {"p": 1}, **fields}),
        max_sql_bytes=1000,
        max_batch=1,
        max_keep_alive=60,
        max_parameter_bytes=100,
        max_parameters_bytes=150,
    )


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"p": 2**80}, "signed 64-bit"),
        ({"p": float("-inf")}, "finite"),
        ({"p": "\ud800"}, "lone surrogate"),
        ({"p": "x" * 200}, "the limit is 100"),
    ],
)
def test_statement_parameters_are_values_the_engines_take(
    parameters: dict[str, Any], reason: str
) -> None:
    with pytest.raises(errors.ParameterError, match=reason) as info:
        _validate(parameters=parameters)
    assert info.value.details["parameter"] == "p"


def test_statement_parameters_have_a_total_size() -> None:
    with pytest.raises(errors.ParameterError, match="150 bytes together"):
        validate(
            StatementRequest(sqls=("select :a, :b",), parameters={"a": "x" * 90, "b": "y" * 90}),
            max_sql_bytes=1000,
            max_batch=1,
            max_keep_alive=60,
            max_parameter_bytes=100,
            max_parameters_bytes=150,
        )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"sqls": ("select 1 -- \ud800",), "parameters": None}, "lone surrogate"),
        ({"sqls": ("select 1\x00",), "parameters": None}, "NUL"),
        ({"statement_name": "a\nb"}, "control characters"),
        ({"client_token": "\ud800"}, "lone surrogate"),
    ],
)
def test_statement_text_fields_are_servable(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(errors.UnprocessableEntity, match=reason):
        _validate(**fields)
