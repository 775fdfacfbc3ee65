"""The registry collects handlers decorated by the AWS SDK itself, as workflows of kind aws."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sqltide.workflows import Registry
from sqltide.workflows.registry import is_aws_handler

pytest.importorskip("aws_durable_execution_sdk_python")

MODULE = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution, durable_step
from sqltide.workflows import durable_execution as sqltide_durable_execution


@durable_execution
def plain(event, context: DurableContext):
    \"\"\"An AWS handler.\"\"\"
    return 1


@durable_execution(boto3_client=None)
def with_arguments(event, context):
    return 2


@sqltide_durable_execution
def native(event, context):
    return 3


@durable_step
def not_a_workflow(step_context):
    return 4


def helper(event, context):
    return 5
"""


def test_aws_handlers_are_workflows_of_kind_aws(tmp_path: Path) -> None:
    path = tmp_path / "mixed.py"
    path.write_text(textwrap.dedent(MODULE))
    registry = Registry()
    assert registry.load([str(path)]) == []
    assert registry.names() == ["native", "plain", "with_arguments"]
    kinds = {name: registry.get(name).kind for name in registry.names()}  # type: ignore[union-attr]
    assert kinds == {"native": "sqltide", "plain": "aws", "with_arguments": "aws"}
    plain = registry.get("plain")
    assert plain is not None and plain.fn.__doc__ == "An AWS handler."
    assert plain.origin.endswith(":plain")
    assert is_aws_handler(plain.fn) and not is_aws_handler(plain.fn.__wrapped__)  # type: ignore[attr-defined]
