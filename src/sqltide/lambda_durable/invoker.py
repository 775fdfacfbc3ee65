"""Invoking an unchanged AWS durable function, once per claim, as Lambda would.

An execution of a workflow whose function carries the AWS SDK's ``@durable_execution``
(``Workflow.kind == "aws"``, found by the registry) is claimed, leased, heartbeated, recovered
and timed out by the workflow job kind like any other; where a native workflow runs a
:class:`~sqltide.workflows.replay.Replay`, the job kind runs an :class:`Invocation`
(``ExecutionJobs.runners``, set by the runtime). One invocation:

1. writes what the service decides alone (:func:`~.wire.settle`: waits whose time came end,
   callbacks time out, invoked executions' ends), under the lease;
2. calls the handler with the event Lambda sends: the execution's ARN, a checkpoint token
   minted for this claim, and its operations (the EXECUTION operation with the input first; a
   ``NextMarker`` when they do not fit one page), and a small Lambda context object;
3. the SDK checkpoints through the Lambda API (:mod:`.routes`), with its boto3 ``lambda``
   client built from the process environment: ``AWS_ENDPOINT_URL_LAMBDA`` must point at a
   sqltide server on this store, and the AWS credentials there must be a sqltide key's;
4. acts on the handler's answer: ``SUCCEEDED`` / ``FAILED`` end the execution with its result
   or error; ``PENDING`` suspends it until the earliest time anything it waits for is due
   (:func:`~.wire.next_due`); an exception (the SDK raises what Lambda would retry) hands the
   execution back, due again shortly, as a replay that failed unexpectedly does.

Credentials. The SDK makes its ``lambda`` client once per process, from the environment, and
uses it for every execution: so the worker signs with one key's AWS credentials, whatever
principal started the execution, as a Lambda function signs with its role. Any sqltide key with
AWS credentials will do (``sqltide keys create --aws``); what lets an invocation write an
execution's checkpoints is its checkpoint token (:mod:`.tokens`), which only the lease holder
mints. When the environment changes (a test pointing the worker elsewhere), the SDK's cached
client is dropped so that the next invocation builds it again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store import ExecutionRecord, ExecutionStatus, OperationRecord
from . import arns, wire
from .tokens import CheckpointToken

if TYPE_CHECKING:
    from ..store import Store

logger = logging.getLogger(__name__)

#: After the handler raised (Lambda would retry the invocation), invoke again then.
RETRY_AFTER_SECONDS = 5.0
#: After an invocation could not start for the worker's configuration, look again then.
CONFIG_RETRY_SECONDS = 30.0
#: When an invocation ended PENDING with nothing pending that sqltide knows of.
IDLE_RETRY_SECONDS = 5.0
#: Operations in the invocation's event; the SDK reads the rest with GetDurableExecutionState.
EVENT_PAGE = 1000
#: How long an invocation may take, as Lambda's context reports it (Lambda's most, 15 min).
INVOCATION_SECONDS = 900.0
#: The environment the SDK's boto3 client is made from: a change makes it be made again.
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
_client_env_seen: tuple[str | None, ...] | None = None
_client_lock = threading.Lock()


def environment_problem(env: Mapping[str, str]) -> str | None:
    """Why the SDK's client would not reach sqltide from this environment, or None."""
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return (
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true makes boto3 ignore AWS_ENDPOINT_URL_LAMBDA: "
            "the AWS SDK would checkpoint to AWS Lambda itself; unset it"
        )
    if not (env.get("AWS_ENDPOINT_URL_LAMBDA") or env.get("AWS_ENDPOINT_URL")):
        return (
            "AWS_ENDPOINT_URL_LAMBDA is not set in the worker's environment: the AWS SDK would "
            "checkpoint to AWS Lambda itself. Set it to a sqltide server of this store "
            "(http://127.0.0.1:8765), with the AWS credentials of a sqltide key "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and a region (AWS_DEFAULT_REGION)"
        )
    return None


def _refresh_sdk_client() -> None:
    """Have the SDK's boto3 client made, once, from the environment as it is now.

    The SDK makes it on its first invocation in a process and keeps it; made here, under a
    lock, the first invocations running at once do not each make one (boto3 makes clients of
    one session unsafely from several threads). When the environment it was made from changed,
    the kept one is dropped first.
    """
    global _client_env_seen
    seen = tuple(os.environ.get(k) for k in _CLIENT_ENV)
    with _client_lock:
        if seen == _client_env_seen:
            return
        try:
            from aws_durable_execution_sdk_python.lambda_service import LambdaClient
        except ImportError:  # an SDK without it: nothing kept to drop
            return
        if hasattr(LambdaClient, "_cached_boto_client"):
            LambdaClient._cached_boto_client = None
        try:
            LambdaClient.initialize_client()
        except Exception:  # the invocation meets the same error, and reports it
            return
        _client_env_seen = seen


@dataclass
class LambdaContext:
    """What a Lambda handler gets as its context (the attributes the SDK and handlers read)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = arns.VERSION
    memory_limit_in_mb: str = "0"
    log_group_name: str | None = None
    log_stream_name: str | None = None
    tenant_id: str | None = None
    client_context: Any = None
    identity: Any = None
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - self.clock()) * 1000), 0)

    def log(self, msg: Any) -> None:
        logger.info("%s", msg)


class Invocation:
    """One invocation of ``fn`` (an AWS SDK ``@durable_execution`` handler) for ``execution``,
    claimed by ``owner``; built like a :class:`~sqltide.workflows.replay.Replay` (the job kind
    calls either the same way: ``operations`` are the checkpoints read with the claim), plus
    ``key`` (the checkpoint token key) and ``account_id``."""

    def __init__(
        self,
        store: Store,
        execution: ExecutionRecord,
        fn: Callable[[Any, Any], Any],
        *,
        owner: str,
        clock: Callable[[], float],
        retention_seconds: float,
        key: bytes,
        account_id: str,
        operations: list[OperationRecord] | None = None,
        **_: Any,  # what else the job kind gives a Replay (start_child, ...): not needed here
    ):
        self.store = store
        self.execution = execution
        self.fn = fn
        self.owner = owner
        self.clock = clock
        self.retention_seconds = retention_seconds
        self.key = key
        self.account_id = account_id
        self.arn = arns.execution_arn(execution, account_id)
        #: The checkpoints the worker read with its claim, if it did.
        self.operations = operations

    def run(self) -> ExecutionStatus | None:
        """Invoke once; the execution's status after it (RUNNING: suspended), or None when the
        lease was lost (the execution stopped, timed out, or was claimed elsewhere)."""
        rec = self.execution
        problem = environment_problem(os.environ)
        if problem is not None:
            logger.error("execution %s (%s) cannot be invoked: %s", rec.id, rec.workflow, problem)
            return self._suspend(self.clock() + CONFIG_RETRY_SECONDS)
        now = self.clock()
        # The token's time: what changed after the operations were read is in the answer to the
        # first checkpoint (read with the claim, when the job kind read them then).
        read_at = min(now, rec.updated_at) if self.operations is not None else now
        ops = self.operations if self.operations is not None else self.store.get_operations(rec.id)
        ops = sorted(ops, key=lambda op: op.seq)
        settled = wire.settle(ops, now, self.store.get_execution)
        if settled:
            if not self.store.checkpoint(rec.id, self.owner, settled, now):
                return None
            changed = {u.operation.id: u.operation for u in settled}
            ops = [changed.get(op.id, op) for op in ops]
        event = self._event(ops, now, read_at, [u.operation.id for u in settled])
        context = LambdaContext(
            function_name=arns.function_name(rec.workflow),
            invoked_function_arn=f"{arns.function_arn(rec.workflow, self.account_id)}:{arns.VERSION}",
            aws_request_id=str(uuid.uuid4()),
            deadline=now + INVOCATION_SECONDS,
            clock=self.clock,
        )
        _refresh_sdk_client()
        try:
            output = self.fn(event, context)
        except Exception as exc:
            logger.warning(
                "execution %s (%s): the invocation raised %s: %s; invoking again in %.0f s",
                rec.id,
                rec.workflow,
                type(exc).__name__,
                exc,
                RETRY_AFTER_SECONDS,
            )
            return self._suspend(self.clock() + RETRY_AFTER_SECONDS)
        return self._settle_output(output)

    def _event(
        self, ops: list[OperationRecord], now: float, read_at: float, updated: list[str]
    ) -> dict[str, Any]:
        page = [wire.execution_operation(self.execution, millis=True)]
        page.extend(wire.operation(op, now, millis=True) for op in ops[: EVENT_PAGE - 1])
        marker = str(ops[EVENT_PAGE - 2].seq) if len(ops) > EVENT_PAGE - 1 else ""
        token = CheckpointToken(self.execution.id, self.owner, self.execution.replays, 0, read_at)
        return {
            "DurableExecutionArn": self.arn,
            "CheckpointToken": token.encode(self.key),
            "InitialExecutionState": {"Operations": page, "NextMarker": marker},
            "UpdatedOperationIds": updated,
        }

    def _settle_output(self, output: Any) -> ExecutionStatus | None:
        rec = self.execution
        status = output.get("Status") if isinstance(output, dict) else None
        if status == "PENDING":
            now = self.clock()
            due = wire.next_due(self.store.get_operations(rec.id), now, IDLE_RETRY_SECONDS)
            return self._suspend(due)
        if status == "SUCCEEDED":
            result = output.get("Result")
            if not result:
                # An EXECUTION checkpoint carried a result too large for the answer: the
                # checkpoint ended the execution already.
                ended = self.store.get_execution(rec.id)
                if ended is not None and ended.status.is_terminal:
                    return ended.status
            return self._finish(ExecutionStatus.SUCCEEDED, result=result or None, error=None)
        if status == "FAILED":
            error = wire.sqltide_error(output.get("Error")) if output.get("Error") else None
            if error is None:
                ended = self.store.get_execution(rec.id)
                if ended is not None and ended.status.is_terminal:
                    return ended.status
                error = {
                    "type": "ExecutionError",
                    "message": "the handler answered FAILED without an error",
                    "data": None,
                    "stack": None,
                }
            return self._finish(ExecutionStatus.FAILED, result=None, error=error)
        logger.error(
            "execution %s (%s): the handler answered %r, not a durable execution output "
            "(Status SUCCEEDED, FAILED or PENDING); invoking again in %.0f s",
            rec.id,
            rec.workflow,
            str(output)[:200],
            RETRY_AFTER_SECONDS,
        )
        return self._suspend(self.clock() + RETRY_AFTER_SECONDS)

    def _finish(
        self, status: ExecutionStatus, *, result: str | None, error: dict[str, Any] | None
    ) -> ExecutionStatus | None:
        ok = self.store.finish_execution(
            self.execution.id,
            self.owner,
            status,
            result=result,
            error=error,
            now=self.clock(),
            retention_seconds=self.retention_seconds,
        )
        return status if ok else None

    def _suspend(self, next_run_at: float | None) -> ExecutionStatus | None:
        ok = self.store.suspend_execution(self.execution.id, self.owner, next_run_at, self.clock())
        return ExecutionStatus.RUNNING if ok else None


def runners(key: bytes, account_id: str) -> dict[str, Callable[..., Invocation]]:
    """What the runtime gives the workflow job kind (``ExecutionJobs.runners``): how to run a
    workflow of kind ``aws``."""

    def make(*args: Any, **kwargs: Any) -> Invocation:
        return Invocation(*args, key=key, account_id=account_id, **kwargs)

    return {"aws": make}
