"""Names the Lambda API uses for sqltide's things: execution ARNs, function ARNs, callback ids.

An execution's ARN has the model's form, ``arn:aws:lambda:<region>:<account>:function:<name>:
$LATEST/durable-execution/<execution name>/<execution id>``. The SDK takes its last segment as
the id of the EXECUTION operation, and sqltide finds the execution by it: the execution's uuid.
The other parts are for people reading it (sqltide has no regions; the ARN says
:data:`REGION`, and any region a client signs for is accepted).
"""

from __future__ import annotations

import re
import uuid

from ..errors import LambdaApiError
from ..store import ExecutionRecord

#: The region every ARN names (sqltide has none; any region is accepted on requests).
REGION = "us-east-1"
#: The version part of every function ARN: the code the worker loaded now.
VERSION = "$LATEST"
#: The model's DurableExecutionArn pattern (botocore does not check it; this face does).
_EXECUTION_ARN = re.compile(
    r"^arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+):"
    r"(\$LATEST(?:\.PUBLISHED)?|[0-9]+)/durable-execution/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)$"
)
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def _segment(text: str, limit: int) -> str:
    return _NOT_NAME.sub("-", text)[:limit] or "-"


def function_name(workflow: str) -> str:
    """A workflow's name as a Lambda function name (``.`` is not allowed there: ``-``)."""
    return _segment(workflow, 64)


def function_arn(workflow: str, account_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{account_id}:function:{function_name(workflow)}"


def execution_name(rec: ExecutionRecord) -> str:
    """The execution's name as the principal gave it, in the model's characters (64 at most)."""
    prefix = f"{rec.principal} "
    name = rec.name[len(prefix) :] if rec.name.startswith(prefix) else rec.name
    return _segment(name, 64)


def execution_arn(rec: ExecutionRecord, account_id: str) -> str:
    """The ARN of an execution (of any workflow: native ones have one too)."""
    return (
        f"{function_arn(rec.workflow, account_id)}:{VERSION}/durable-execution/"
        f"{execution_name(rec)}/{rec.id}"
    )


def execution_id(arn: str) -> str:
    """The execution id an ARN names; ``InvalidParameterValueException`` when it is not an
    execution ARN of the model's form ending in a sqltide execution id."""
    match = _EXECUTION_ARN.match(arn)
    if match is not None:
        try:
            return str(uuid.UUID(match.group(7)))
        except ValueError:
            pass
    raise LambdaApiError(
        f"{arn[:300]!r} is not a durable execution ARN sqltide made "
        "(arn:aws:lambda:<region>:<account>:function:<name>:$LATEST/durable-execution/<name>/<id>)",
        details={"aws_type": "InvalidParameterValueException"},
    )


def new_callback_id() -> str:
    """A callback id in the model's alphabet (``[A-Za-z0-9+/]+={0,2}``): 32 hex digits."""
    return uuid.uuid4().hex


def target_workflow(function: str) -> str:
    """The workflow a ``ChainedInvokeOptions.FunctionName`` names: a bare name, or the name in
    a function ARN (``arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]``); a
    qualifier is ignored (workers run the code they loaded)."""
    parts = function.split(":")
    if "function" in parts[:-1]:  # [arn:aws:lambda:<region>:][<account>:]function:<name>[...]
        return parts[parts.index("function") + 1]
    return parts[0]  # <name>[:<qualifier>]
