from __future__ import annotations

import pytest

from sqltide.events.inputs import InvalidTargetInput, pick, render_input, validate_input

EVENT = {
    "version": "0",
    "id": "e1",
    "source": "aws.redshift-data",
    "detail-type": "Redshift Data Statement Status Change",
    "resources": ["sqltide:warehouse/default"],
    "detail": {"statementId": "s1", "state": "FINISHED", "rows": 7, "statementName": 'say "hi"'},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", EVENT),
        ("$.detail.state", "FINISHED"),
        ("$.resources[0]", "sqltide:warehouse/default"),
        ("$.detail.missing", None),
        ("$.resources[5]", None),
        ("$.detail-type", "Redshift Data Statement Status Change"),
    ],
)
def test_pick(path: str, value: object) -> None:
    assert pick(EVENT, path) == value


def test_whole_event_constant_and_path() -> None:
    assert render_input({}, EVENT) == EVENT
    assert render_input({"input": {"fixed": [1, 2]}}, EVENT) == {"fixed": [1, 2]}
    assert render_input({"input_path": "$.detail"}, EVENT) == EVENT["detail"]


def test_text_template() -> None:
    spec = {
        "input_transformer": {
            "input_paths_map": {"state": "$.detail.state", "rows": "$.detail.rows"},
            "input_template": "Statement <state> with <rows> rows (<missing_ok>)",
        }
    }
    spec["input_transformer"]["input_paths_map"]["missing_ok"] = "$.detail.nope"
    assert render_input(spec, EVENT) == "Statement FINISHED with 7 rows ()"


def test_json_template_quotes_strings_and_keeps_numbers() -> None:
    spec = {
        "input_transformer": {
            "input_paths_map": {
                "state": "$.detail.state",
                "rows": "$.detail.rows",
                "name": "$.detail.statementName",
            },
            "input_template": '{"subject": "ELT <state>", "rows": <rows>, "state": <state>, "name": <name>}',
        }
    }
    assert render_input(spec, EVENT) == {
        "subject": "ELT FINISHED",
        "rows": 7,
        "state": "FINISHED",
        "name": 'say "hi"',
    }


def test_reserved_whole_event_variable() -> None:
    spec = {"input_transformer": {"input_template": '{"event": <aws.events.event>}'}}
    assert render_input(spec, EVENT) == {"event": EVENT}


@pytest.mark.parametrize(
    "spec",
    [
        {"input": 1, "input_path": "$.a"},
        {"input_path": "detail.state"},
        {"input_path": "$..x"},
        {"input_transformer": {"input_paths_map": {}}},
        {"input_transformer": {"input_paths_map": {"a": "$.a"}, "input_template": "<b>"}},
        {"input_transformer": {"input_paths_map": {"a": "a"}, "input_template": "<a>"}},
    ],
)
def test_invalid_inputs(spec: dict) -> None:
    with pytest.raises(InvalidTargetInput):
        validate_input(spec)
