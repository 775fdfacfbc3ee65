"""The ``workflow`` target kind: its model (valid and invalid bodies, each problem at its
place) and the execution name a delivery to it derives."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sqltide.events.models import WorkflowTarget, dotted, rule_problems, validated
from sqltide.events.models import rules as rule_models
from sqltide.events.targets import KINDS, TargetFailure, execution_name
from sqltide.store.event_records import DeliveryRecord, DeliveryStatus
from sqltide.workflows import registry, service


def problems(target: Any) -> dict[str, str]:
    """The problems of a schedule rule with this one target: place -> reason."""
    found = rule_problems({"schedule": "rate(1 day)", "targets": [target]})
    return {dotted(p.loc, "r"): p.reason for p in found}


@pytest.mark.parametrize(
    "target",
    [
        {"kind": "workflow", "workflow": "refresh_mart"},
        {"kind": "workflow", "workflow": "a.b-c_1", "timeout_seconds": 1},
        {"kind": "workflow", "workflow": "w", "timeout_seconds": 366 * 86_400},
        {"kind": "workflow", "workflow": "w", "timeout_seconds": 90.5, "id": "start"},
        {"kind": "workflow", "workflow": "w", "input": {"day": "2026-11-23"}},
        {"kind": "workflow", "workflow": "w", "input": "plain text"},
        {"kind": "workflow", "workflow": "w", "input_path": "$.detail"},
        {
            "kind": "workflow",
            "workflow": "w",
            "input_transformer": {
                "input_paths_map": {"id": "$.detail.statementId"},
                "input_template": '{"statement": <id>, "rule": "<aws.events.rule-name>"}',
            },
            "retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age_seconds": 600},
        },
        {"kind": "workflow", "workflow": "w" * 128},
    ],
)
def test_valid_workflow_targets(target: dict[str, Any]) -> None:
    assert problems(target) == {}
    checked, found = validated(WorkflowTarget, target)
    assert found == [] and checked is not None
    assert checked.workflow == target["workflow"]
    assert checked.timeout_seconds == target.get("timeout_seconds")


@pytest.mark.parametrize(
    ("target", "where", "reason"),
    [
        ({"kind": "workflow"}, "r.targets[0]", "a workflow target needs workflow"),
        ({"kind": "workflow", "workflow": ""}, "r.targets[0].workflow", "a workflow name"),
        ({"kind": "workflow", "workflow": None}, "r.targets[0].workflow", "not nothing"),
        ({"kind": "workflow", "workflow": 7}, "r.targets[0].workflow", "not a number"),
        ({"kind": "workflow", "workflow": "a b"}, "r.targets[0].workflow", "not 'a b'"),
        ({"kind": "workflow", "workflow": "_private"}, "r.targets[0].workflow", "a letter"),
        ({"kind": "workflow", "workflow": "w" * 129}, "r.targets[0].workflow", "up to 127"),
        (
            {"kind": "workflow", "workflow": "w", "timeout_seconds": 0},
            "r.targets[0].timeout_seconds",
            "from 1 to 31622400 (366 days), not 0",
        ),
        (
            {"kind": "workflow", "workflow": "w", "timeout_seconds": 366 * 86_400 + 1},
            "r.targets[0].timeout_seconds",
            "from 1 to 31622400",
        ),
        (
            {"kind": "workflow", "workflow": "w", "timeout_seconds": True},
            "r.targets[0].timeout_seconds",
            "not a boolean",
        ),
        (
            {"kind": "workflow", "workflow": "w", "timeout_seconds": "1h"},
            "r.targets[0].timeout_seconds",
            "not '1h'",
        ),
        (
            {"kind": "workflow", "workflow": "w", "input": 1, "input_path": "$.detail"},
            "r.targets[0]",
            "give at most one of input, input_path, input_transformer",
        ),
        (
            {"kind": "workflow", "workflow": "w", "input_path": "detail"},
            "r.targets[0].input_path",
            "not a JSON path",
        ),
        (
            {
                "kind": "workflow",
                "workflow": "w",
                "input_transformer": {"input_template": "<missing>"},
            },
            "r.targets[0].input_transformer.input_template",
            "<missing> is not in input_paths_map",
        ),
        (
            {"kind": "workflow", "workflow": "w", "retry_policy": {"maximum_retry_attempts": -1}},
            "r.targets[0].retry_policy.maximum_retry_attempts",
            "0 to 185",
        ),
        (
            {"kind": "workflows", "workflow": "w"},
            "r.targets[0].kind",
            "kind must be one of sql, topic, webhook, event, workflow, not 'workflows'",
        ),
    ],
)
def test_invalid_workflow_targets_name_the_place(
    target: dict[str, Any], where: str, reason: str
) -> None:
    found = problems(target)
    assert where in found, found
    assert reason in found[where]


def test_every_problem_of_a_workflow_target_at_once() -> None:
    found = problems({"kind": "workflow", "workflow": "a b", "timeout_seconds": -5})
    assert set(found) == {"r.targets[0].workflow", "r.targets[0].timeout_seconds"}


def test_the_model_limits_are_the_services() -> None:
    """The models do not import the workflow SDK: their copies of its limits must agree."""
    assert registry.NAME.pattern == rule_models.WORKFLOW_NAME_PATTERN
    assert rule_models.WORKFLOW_MAX_TIMEOUT_SECONDS == service.MAX_TIMEOUT_SECONDS


def test_the_workflow_kind_is_registered() -> None:
    assert KINDS["workflow"].name == "workflow"


def _delivery(rule: str, target: str, event_id: str) -> DeliveryRecord:
    return DeliveryRecord(
        id="d",
        principal="alice",
        event_id=event_id,
        rule_name=rule,
        target_id=target,
        target={"kind": "workflow", "workflow": "w"},
        payload={},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=0.0,
        created_at=0.0,
        updated_at=0.0,
    )


def test_execution_names_are_derived_from_rule_target_and_event() -> None:
    event_id = "0b7f8a52-64c8-4c58-a7d4-0b1e8d2f9a31"
    name = execution_name(_delivery("nightly-elt", "start", event_id))
    assert name == f"rule:nightly-elt:start:{event_id}"
    assert service.NAME.match(name)
    # the same delivery again: the same name (what makes a redelivery start nothing new)
    assert execution_name(_delivery("nightly-elt", "start", event_id)) == name
    # rule and target ids hold no ':', so '-' inside them cannot make two triples meet
    assert execution_name(_delivery("a-b", "c", event_id)) != execution_name(
        _delivery("a", "b-c", event_id)
    )
    # the longest rule and target names still fit the store's names
    longest = execution_name(_delivery("r" * 64, "t" * 64, event_id))
    assert service.NAME.match(longest) and len(longest) <= 256


def test_an_event_id_a_name_cannot_hold_is_replaced_by_its_digest() -> None:
    odd = execution_name(_delivery("r", "0", "id with spaces/and slashes"))
    assert service.NAME.match(odd)
    assert odd.startswith("rule:r:0:") and len(odd) == len("rule:r:0:") + 32
    assert odd == execution_name(_delivery("r", "0", "id with spaces/and slashes"))
    assert odd != execution_name(_delivery("r", "0", "another odd id"))


def test_a_process_that_starts_no_workflows_fails_the_delivery_retryably() -> None:
    """A runner without a workflow service (a process that loaded none) cannot start one:
    another worker may, so the failure is retried within the target's policy."""
    runner = SimpleNamespace(workflows=None)
    with pytest.raises(TargetFailure) as caught:
        KINDS["workflow"].run(runner, _delivery("r", "0", "e"))  # type: ignore[arg-type]
    assert caught.value.code == "workflow_not_loaded"
    assert caught.value.retryable
    assert "no workflow named 'w' is loaded by this worker (loaded: none)" in caught.value.message
