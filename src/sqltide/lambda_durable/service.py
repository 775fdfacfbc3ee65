"""The Lambda durable execution operations, over sqltide's store and workflow service.

:class:`DurableApi` does what each operation asks and answers the model's output shape; it
blocks (store reads and writes), so the HTTP face (:mod:`.routes`) calls it off the event loop.
Who may do what:

- **CheckpointDurableExecution** and **GetDurableExecutionState** are the invocation's own
  calls: what allows them is the checkpoint token (:mod:`.tokens`), which only the worker
  holding the execution's lease mints and which binds the call to that execution, lease and
  claim. The request must also be signed by a sqltide key with AWS credentials (any principal's:
  on AWS too, the function's own role signs these calls, not the caller who started the
  execution).
- **GetDurableExecution**, **StopDurableExecution** and the three **callback** operations are
  anyone's calls on an execution: they are scoped to the signer's principal as the rest of
  sqltide is (another principal's execution or callback answers like an unknown one; an admin
  key may act on any), and they go through the workflow service, so they work on native
  workflows' executions too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .. import errors
from ..keys import server_secret
from ..store import ExecutionRecord, ExecutionStatus
from . import arns, wire
from .tokens import CheckpointToken, TokenLedger, invalid, token_key
from .updates import Translator, bad, parse_client_token, parse_error, parse_updates

if TYPE_CHECKING:
    from ..runtime import Runtime

logger = logging.getLogger(__name__)

#: Operations an answer lists beyond those it wrote: changed this long before the token was
#: issued (the token's time is the issuing process's clock; another process's may lag).
CLOCK_MARGIN_SECONDS = 5.0
#: The model's ItemCount: at most 1000 operations a page.
MAX_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who signed the request, as the rest of sqltide knows them."""

    principal: str
    is_admin: bool


class DurableApi:
    """The operations of one runtime; one per process (it holds the token ledger)."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] | None = None):
        self.runtime = runtime
        self.store = runtime.store
        self.workflows = runtime.workflows
        self.clock = clock or runtime.clock
        self.account_id = runtime.settings.aws_account_id
        self.retention_seconds = runtime.settings.workflow_retention_seconds
        self.key = token_key(server_secret(runtime.store))
        self.ledger = TokenLedger()

    # -- the invocation's calls ------------------------------------------------------------------
    def _held(self, arn: str, token_text: Any) -> tuple[CheckpointToken, ExecutionRecord]:
        """The token, and its execution, if the token's invocation still holds it."""
        execution_id = arns.execution_id(arn)
        if not isinstance(token_text, str) or not token_text:
            raise bad("CheckpointToken is required")
        token = CheckpointToken.decode(self.key, token_text)
        if token.execution_id != execution_id:
            raise invalid("it belongs to another execution")
        rec = self.store.get_execution(execution_id)
        if rec is None or rec.status is not ExecutionStatus.RUNNING:
            state = "gone" if rec is None else rec.status.value
            raise invalid(f"the execution is {state}")
        if rec.lease_owner != token.owner or rec.replays != token.claim:
            raise invalid(
                "the invocation it was issued to no longer holds the execution (its lease was "
                "lost, or the execution was claimed again)"
            )
        return token, rec

    def checkpoint(self, caller: Caller, arn: str, body: dict[str, Any]) -> dict[str, Any]:
        """CheckpointDurableExecution: write the updates, answer a new token and what changed."""
        unknown = sorted(set(body) - {"CheckpointToken", "Updates", "ClientToken"})
        if unknown:
            raise bad(f"CheckpointDurableExecution has no member {unknown[0]!r}")
        updates = parse_updates(body.get("Updates"))  # checked before anything is written
        client_token = parse_client_token(body.get("ClientToken"))
        text = body.get("CheckpointToken")
        if isinstance(text, str) and text:
            known = self.ledger.answered(CheckpointToken.decode(self.key, text), text, client_token)
            if known is not None:
                return known  # a retry of the request answered last (botocore's own retry)
        token, _ = self._held(arn, text)
        assert isinstance(text, str)

        def run() -> dict[str, Any]:
            return self._checkpoint(token, updates)

        return self.ledger.consume(token, text, client_token, run)

    def _checkpoint(self, token: CheckpointToken, updates: list[Any]) -> dict[str, Any]:
        now = self.clock()
        rec = self.store.get_execution(token.execution_id)
        if rec is None:
            raise invalid("the execution is gone")
        ops = {op.id: op for op in self.store.get_operations(rec.id)}
        settled = wire.settle(ops.values(), now, self.store.get_execution)
        for s in settled:
            ops[s.operation.id] = s.operation
        translator = Translator(rec, ops, now, self.workflows.start_child)
        written = translator.apply(updates)
        batch = [*settled, *written]
        if batch and not self.store.checkpoint(rec.id, token.owner, batch, now):
            raise invalid("the invocation it was issued to no longer holds the execution")
        finish = translator.finish
        if finish is not None:
            ok = self.store.finish_execution(
                rec.id,
                token.owner,
                finish.status,
                result=finish.result if finish.status is ExecutionStatus.SUCCEEDED else None,
                error=finish.error if finish.status is ExecutionStatus.FAILED else None,
                now=now,
                retention_seconds=self.retention_seconds,
            )
            if not ok:
                raise invalid("the invocation it was issued to no longer holds the execution")
            self.runtime.notifier.publish("execution", rec.id)
            self.workflows.wake_parent(rec)
        since = token.issued_at - CLOCK_MARGIN_SECONDS
        changed = [
            wire.operation(op, now)
            for op in self.store.get_operations(rec.id)
            if (op.updated_at or 0.0) >= since
        ]
        answer: dict[str, Any] = {"NewExecutionState": {"Operations": changed}}
        if finish is None:  # Lambda answers no token once the execution has ended
            answer["CheckpointToken"] = token.following(now).encode(self.key)
        return answer

    def state(
        self, caller: Caller, arn: str, token_text: Any, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        """GetDurableExecutionState: the execution's operations, a page at a time."""
        if max_items is not None and not 0 <= max_items <= MAX_ITEMS:
            raise bad(f"MaxItems must be from 0 to {MAX_ITEMS}")
        limit = max_items or MAX_ITEMS
        # A marker is the ``seq`` of the last operation of the page before; the first page
        # (no marker) starts with the EXECUTION operation.
        first = not marker
        if marker and not marker.isdigit():
            raise bad(f"Marker {marker[:100]!r} is not a marker this API answered")
        after = int(marker) if marker else 0
        token, rec = self._held(arn, token_text)
        self.ledger.check_current(token)
        now = self.clock()
        page: list[dict[str, Any]] = [wire.execution_operation(rec)] if first else []
        ops = [op for op in self.store.get_operations(rec.id) if op.seq > after]
        shown = ops[: max(limit - len(page), 0)]
        page.extend(wire.operation(op, now) for op in shown)
        answer: dict[str, Any] = {"Operations": page}
        if len(shown) < len(ops):
            answer["NextMarker"] = str(shown[-1].seq if shown else after)
        return answer

    # -- anyone's calls --------------------------------------------------------------------------
    def _execution(self, caller: Caller, arn: str) -> ExecutionRecord:
        execution_id = arns.execution_id(arn)
        try:
            return self.workflows.describe(caller.principal, execution_id, is_admin=caller.is_admin)
        except errors.ExecutionNotFound:
            raise errors.LambdaApiError(
                f"no durable execution {arn!r}",
                details={"aws_type": "ResourceNotFoundException"},
            ) from None

    def describe(self, caller: Caller, arn: str, include_data: bool) -> dict[str, Any]:
        """GetDurableExecution."""
        rec = self._execution(caller, arn)
        out: dict[str, Any] = {
            "DurableExecutionArn": arns.execution_arn(rec, self.account_id),
            "DurableExecutionName": arns.execution_name(rec),
            "FunctionArn": arns.function_arn(rec.workflow, self.account_id),
            "StartTimestamp": rec.created_at,
            "Status": rec.status.value,
            "Version": arns.VERSION,
            "ExecutionDataIncluded": include_data,
        }
        if rec.ended_at is not None:
            out["EndTimestamp"] = rec.ended_at
        if rec.timeout_at is not None:
            out["ExpectedExecutionTimeoutTimestamp"] = rec.timeout_at
        if include_data:
            if rec.input is not None:
                out["InputPayload"] = rec.input
            if rec.result is not None:
                out["Result"] = rec.result
        error = wire.aws_error(rec.error)
        if error is not None:
            out["Error"] = error
        return out

    def stop(self, caller: Caller, arn: str, body: dict[str, Any]) -> dict[str, Any]:
        """StopDurableExecution (the body is the ``Error`` it ends with, if any)."""
        error = parse_error(body or None, "Error")
        rec = self._execution(caller, arn)
        stopped = self.workflows.stop(
            caller.principal, rec.id, error=error, is_admin=caller.is_admin
        )
        return {"StopTimestamp": stopped.ended_at or self.clock()}

    def callback(
        self, caller: Caller, callback_id: str, outcome: str, body: bytes
    ) -> dict[str, Any]:
        """SendDurableExecutionCallbackSuccess (``body`` is the result), ...Failure (an
        ``ErrorObject``) or ...Heartbeat."""
        result: str | None = None
        error: dict[str, Any] | None = None
        if outcome == "succeed" and body:
            try:
                result = body.decode("utf-8")
            except UnicodeDecodeError:
                raise bad(
                    "Result must be UTF-8 text (sqltide keeps callback results as text)"
                ) from None
        elif outcome == "fail" and body.strip():
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise bad("the body must be an ErrorObject (JSON)") from None
            error = parse_error(parsed, "Error")
        self.workflows.complete_callback(
            caller.principal,
            callback_id,
            outcome,  # type: ignore[arg-type]
            result,
            error,
            is_admin=caller.is_admin,
        )
        return {}
