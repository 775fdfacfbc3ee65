"""The one error tree: every code finds its class, and every class is built the same way."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sqltide import errors

#: Every code a client can meet from the API, with the class that must come back for it.
CODES = {
    "invalid_rule": "InvalidRule",
    "invalid_pattern": "InvalidPattern",
    "invalid_schedule": "InvalidSchedule",
    "invalid_target_input": "InvalidTargetInput",
    "invalid_message": "InvalidMessage",
    "invalid_filter_policy": "InvalidFilterPolicy",
    "invalid_pipeline": "PipelineError",
    "rule_not_found": "RuleNotFound",
    "topic_not_found": "TopicNotFound",
    "delivery_not_found": "DeliveryNotFound",
    "permission_denied": "PermissionDenied",
    "request_timeout": "RequestTimeout",
    "statement_not_found": "StatementNotFound",
    "aws_auth_failure": "AwsAuthFailure",
    "execution_not_found": "ExecutionNotFound",
    "workflow_not_found": "WorkflowNotFound",
    "callback_not_found": "CallbackNotFound",
    "callback_conflict": "CallbackConflict",
    "execution_conflict": "ExecutionConflict",
}


def test_every_code_finds_its_class_with_nothing_else_imported() -> None:
    # A fresh interpreter: only sqltide.errors is imported, as in a client that decodes an
    # answer before it has touched the events or pipeline packages.
    script = (
        "import json, sys\n"
        "from sqltide.errors import error_class_for\n"
        f"codes = {json.dumps(list(CODES))}\n"
        "print(json.dumps({c: error_class_for(c).__name__ for c in codes}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == CODES


def _all_classes() -> list[type[errors.SqltideError]]:
    import sqltide.pipeline.problems  # noqa: F401  (defines PipelineError)

    seen: list[type[errors.SqltideError]] = []
    todo = [errors.SqltideError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


@pytest.mark.parametrize("cls", _all_classes(), ids=lambda c: c.__name__)
def test_every_class_is_built_from_a_message_and_details(cls: type[errors.SqltideError]) -> None:
    exc = cls("what went wrong", details={"reason": "because", "path": "$.a"})
    assert exc.message == "what went wrong"
    assert exc.details.get("reason") == "because"
    assert errors.error_class_for(exc.code) is not None


def test_codes_are_unique() -> None:
    codes: dict[str, str] = {}
    for cls in _all_classes():
        if cls.__name__.startswith("_"):
            continue  # private refinements keep their parent's code
        if "code" in cls.__dict__:
            assert cls.code not in codes, f"{cls.__name__} and {codes[cls.code]} share {cls.code}"
            codes[cls.code] = cls.__name__


def test_filter_policy_errors_keep_reason_and_path() -> None:
    from sqltide.notify import compile_filter_policy

    with pytest.raises(errors.InvalidFilterPolicy) as caught:
        compile_filter_policy({"a": "not an array"})
    assert caught.value.path.startswith("$")
    assert caught.value.reason
    again = errors.error_class_for("invalid_filter_policy")(
        caught.value.message, details=caught.value.details
    )
    assert (again.reason, again.path) == (caught.value.reason, caught.value.path)


@pytest.mark.parametrize(
    ("aws_type", "status"),
    [
        ("UnrecognizedClientException", 400),
        ("InvalidSignatureException", 400),
        ("IncompleteSignatureException", 400),
        ("MissingAuthenticationTokenException", 403),
    ],
)
def test_aws_auth_failures_answer_with_aws_s_status(aws_type: str, status: int) -> None:
    exc = errors.AwsAuthFailure("no", details={"aws_type": aws_type})
    assert (exc.aws_type, exc.http_status) == (aws_type, status)
    assert isinstance(exc, errors.Unauthorized)
    assert errors.Unauthorized("no").http_status == 401  # the class's own status is untouched
