"""Workflow executions: start, describe (with long-poll), list, history, stop, callbacks.

The service records; it never runs a workflow's code. A started execution is due at once and
the worker processes that loaded its workflow claim it (``workflows/jobs.py``), so an
execution accepted here survives any crash that comes after the answer.

- **Which workflows exist** is what this process loaded (``SQLTIDE_WORKFLOWS``, ``sqltide serve
  --workflows``): an API process must load the same modules as the workers to start their
  executions; any other name answers 404 ``workflow_not_found``.
- **Names.** An execution's name (a new uuid unless given) makes its start idempotent: starting
  the same workflow under the same name again gives back the same execution, and a different
  input under that name is a 409 ``execution_conflict``. Names belong to their principal, like
  statements' client tokens: two principals may use one name without meeting. The store keeps
  ``"<principal> <name>"`` (a principal holds no space) and every record handed out here shows
  the name as it was given.
- **Tenants are walls.** Another principal's execution or callback answers exactly like an
  unknown one (404); an admin key (``is_admin``) may read and act on any.
- **Wake-ups.** Whatever makes an execution runnable (a start, a callback's completion, a
  child's end) publishes ``workflows`` with the workflow's name, which wakes the claim threads
  of the workers that loaded it; an execution's end publishes ``execution`` with its id, which
  wakes the long-polls of :meth:`WorkflowService.describe_wait`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .. import errors
from ..cursors import ListCursors
from ..settings import Settings
from ..store import (
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationRecord,
    Store,
)
from ..store.wakeups import Notifier
from ..validation import check_json_value, check_text
from . import serdes
from .registry import Registry

T = TypeVar("T")

#: What an execution name may hold (the AWS execution name's characters, and ``.`` ``:``).
NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,256}$")
#: The longest timeout an execution may have (AWS: a year of 366 days).
MAX_TIMEOUT_SECONDS = 366 * 86_400.0
#: The list cursors' scope (a statements cursor is no executions cursor).
CURSOR_SCOPE = "executions"
MAX_LIST_RESULTS = 1000
MAX_HISTORY_EVENTS = 1000
#: What a stop records when the caller gives no error of its own.
STOPPED_ERROR: dict[str, Any] = {
    "type": "ExecutionStopped",
    "message": "the execution was stopped on request",
    "data": None,
    "stack": None,
}
_ERROR_KEYS = ("type", "message", "data", "stack")

Outcome = Literal["succeed", "fail", "heartbeat"]


@dataclass(frozen=True, slots=True)
class ExecutionHistory:
    """An execution with its operations (in creation order) and a page of its history."""

    execution: ExecutionRecord
    operations: list[OperationRecord]
    events: list[HistoryRecord]
    #: The ``after_seq`` of the next page of events, or None when this page is the last.
    next_after: int | None = None


def stored_name(principal: str, name: str) -> str:
    """The name the store keeps for ``principal``'s execution ``name``."""
    return f"{principal} {name}"


def shown(rec: ExecutionRecord) -> ExecutionRecord:
    """``rec`` with its name as its principal gave it."""
    prefix = f"{rec.principal} "
    if rec.name.startswith(prefix):
        return dataclasses.replace(rec, name=rec.name[len(prefix) :])
    return rec


def _canonical(text: str | None) -> str | None:
    """Serialized input in one spelling (key order and spacing do not count)."""
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:  # not JSON (a child's payload by a serdes of its own): as written
        return text


def _plausible_id(execution_id: str) -> bool:
    try:
        uuid.UUID(execution_id)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


class WorkflowService:
    """Start, read and control the executions of the workflows this process loaded."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        registry: Registry,
        settings: Settings,
        *,
        cursors: ListCursors | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.notifier = notifier
        self.registry = registry
        self.settings = settings
        self.cursors = cursors or ListCursors()
        self.clock = clock

    def names(self) -> list[str]:
        """The workflows this process loaded."""
        return self.registry.names()

    # -- start ---------------------------------------------------------------------------------
    def start(
        self,
        principal: str,
        workflow: str,
        input: Any,
        *,
        name: str | None = None,
        timeout_seconds: float | None = None,
        is_admin: bool = False,
    ) -> tuple[ExecutionRecord, bool]:
        """Record a new execution of ``workflow`` with ``input`` (a JSON value); returns
        ``(execution, created)``.

        ``name`` (default: a new uuid) makes the start idempotent: the same name gives back
        the principal's execution of that name (``created`` False), unless the input differs
        (``ExecutionConflict``). ``timeout_seconds`` (default ``SQLTIDE_WORKFLOW_TIMEOUT_SECONDS``,
        at most 366 days): still running then, it ends TIMED_OUT. Any principal may start any
        workflow this process loaded (``is_admin`` changes nothing yet).
        """
        if not isinstance(workflow, str) or workflow not in self.registry:
            shown_name = workflow if isinstance(workflow, str) else repr(workflow)
            raise errors.WorkflowNotFound(
                f"no workflow named {shown_name!r} is loaded here (loaded: "
                f"{', '.join(self.registry.names()) or 'none'}); every process that starts "
                "executions loads the workflow modules (SQLTIDE_WORKFLOWS)",
                details={"workflow": shown_name},
            )
        if name is None:
            name = str(uuid.uuid4())
        check_text(name, where="name", identifier=True, allow_empty=False, max_chars=256)
        if not NAME.match(name):
            raise errors.UnprocessableEntity(
                "name: may hold letters, digits and _ . : - (1 to 256 characters)",
                details={"path": "name", "reason": "bad characters"},
            )
        timeout = self._timeout(timeout_seconds)
        text = self._payload(input, "input")
        now = round(self.clock(), 6)
        rec = ExecutionRecord(
            id=str(uuid.uuid4()),
            workflow=workflow,
            name=stored_name(principal, name),
            principal=principal,
            status=ExecutionStatus.RUNNING,
            created_at=now,
            updated_at=now,
            input=text,
            timeout_at=now + timeout,
        )
        stored, created = self.store.start_execution(rec)
        if not created:
            if _canonical(stored.input) != _canonical(text):
                raise errors.ExecutionConflict(
                    f"an execution of {workflow!r} named {name!r} was already started with a "
                    "different input; start it under another name",
                    details={"workflow": workflow, "name": name, "execution_id": stored.id},
                )
            return shown(stored), False
        self.notifier.publish("workflows", workflow)
        return shown(stored), True

    def start_child(
        self,
        workflow: str,
        name: str,
        payload: str | None,
        parent: ExecutionRecord,
        parent_operation_id: str,
    ) -> ExecutionRecord:
        """Start the child execution of ``context.invoke`` (the replay's ``start_child``).

        Idempotent on ``name`` (derived from the parent execution and operation ids by the
        SDK), so a replay that starts it again gets the same child. ``payload`` is already
        serialized by the invoke's serdes. The child belongs to the parent's principal and
        times out with the parent at the latest. Raises ``WorkflowNotFound`` (the invoke then
        fails) for a workflow this process did not load.
        """
        if workflow not in self.registry:
            raise errors.WorkflowNotFound(
                f"no workflow named {workflow!r} is loaded by this worker",
                details={"workflow": workflow},
            )
        now = round(self.clock(), 6)
        timeout_at = now + self.settings.workflow_timeout_seconds
        if parent.timeout_at is not None:
            timeout_at = min(timeout_at, parent.timeout_at)
        rec = ExecutionRecord(
            id=str(uuid.uuid4()),
            workflow=workflow,
            name=stored_name(parent.principal, name),
            principal=parent.principal,
            status=ExecutionStatus.RUNNING,
            created_at=now,
            updated_at=now,
            input=payload,
            timeout_at=timeout_at,
            parent_id=parent.id,
            parent_operation_id=parent_operation_id,
        )
        stored, created = self.store.start_execution(rec)
        if created:
            self.notifier.publish("workflows", workflow)
        return stored

    def _timeout(self, timeout_seconds: Any) -> float:
        if timeout_seconds is None:
            return float(self.settings.workflow_timeout_seconds)
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int | float)
            or not math.isfinite(timeout_seconds)
            or not 1 <= timeout_seconds <= MAX_TIMEOUT_SECONDS
        ):
            raise errors.UnprocessableEntity(
                f"timeout_seconds: must be a number from 1 to {MAX_TIMEOUT_SECONDS:.0f} (366 days)",
                details={"path": "timeout_seconds", "reason": "out of range"},
            )
        return float(timeout_seconds)

    def _payload(self, value: Any, where: str) -> str | None:
        """``value`` checked (a JSON value, at most the payload limit) and serialized by the
        default serdes: plain JSON stays plain JSON text."""
        limit = self.settings.workflow_max_payload_bytes
        size = check_json_value(value, where=where, max_depth=self.settings.max_json_depth)
        if size > limit:
            raise errors.PayloadTooLarge(
                f"{where} is {size} bytes as JSON; the limit is {limit} "
                "(SQLTIDE_WORKFLOW_MAX_PAYLOAD_BYTES)",
                details={"path": where, "size": size, "limit": limit},
            )
        return serdes.serialize(None, value, what=f"the {where}")

    # -- read ----------------------------------------------------------------------------------
    def _get(self, principal: str, execution_id: str, is_admin: bool) -> ExecutionRecord:
        rec = self.store.get_execution(execution_id) if _plausible_id(execution_id) else None
        # Another principal's execution answers exactly like an unknown one.
        if rec is None or (rec.principal != principal and not is_admin):
            raise errors.ExecutionNotFound(
                f"no execution with id {execution_id!r}", details={"id": execution_id}
            )
        return rec

    def describe(
        self, principal: str, execution_id: str, *, is_admin: bool = False
    ) -> ExecutionRecord:
        return shown(self._get(principal, execution_id, is_admin))

    async def describe_wait(
        self, principal: str, execution_id: str, wait: float, *, is_admin: bool = False
    ) -> ExecutionRecord:
        """Describe, waiting up to ``wait`` seconds (at most ``SQLTIDE_MAX_WAIT_SECONDS``) for
        the execution to end; holds no thread while it waits."""
        wait = min(max(wait, 0.0), self.settings.max_wait_seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self.notifier.waiter("execution", execution_id) as waiter:
            while True:
                rec = await self._read(self.describe, principal, execution_id, is_admin)
                remaining = deadline - loop.time()
                if rec.status.is_terminal or remaining <= 0:
                    return rec
                await waiter.wait(remaining)
                waiter.reset()

    async def _read(self, fn: Callable[..., T], principal: str, eid: str, is_admin: bool) -> T:
        """A point read: on the loop when the store's reads never wait, else in a thread."""
        if self.store.reads_never_wait:
            return fn(principal, eid, is_admin=is_admin)
        return await asyncio.to_thread(fn, principal, eid, is_admin=is_admin)

    def list(
        self,
        principal: str,
        filters: ExecutionFilter | None = None,
        max_results: int = 100,
        next_token: str | None = None,
    ) -> tuple[list[ExecutionRecord], str | None]:
        """The principal's executions matching ``filters`` (workflow, status, created
        after/before; its ``principal`` is ignored), newest first; and the next page's token."""
        if not 1 <= max_results <= MAX_LIST_RESULTS:
            raise errors.InvalidRequest(
                f"max_results must be from 1 to {MAX_LIST_RESULTS}",
                details={"max_results": max_results},
            )
        f = dataclasses.replace(filters or ExecutionFilter(), principal=principal)
        after = self.cursors.decode(principal, CURSOR_SCOPE, next_token) if next_token else None
        rows = self.store.list_executions(f, max_results + 1, after)
        token = None
        if len(rows) > max_results:
            rows = rows[:max_results]
            token = self.cursors.encode(principal, CURSOR_SCOPE, rows[-1].created_at, rows[-1].id)
        return [shown(r) for r in rows], token

    def history(
        self,
        principal: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        max_events: int = MAX_HISTORY_EVENTS,
        is_admin: bool = False,
    ) -> ExecutionHistory:
        """The execution, all its operations and up to ``max_events`` history lines after
        ``after_seq``."""
        if not 1 <= max_events <= MAX_HISTORY_EVENTS:
            raise errors.InvalidRequest(
                f"max_events must be from 1 to {MAX_HISTORY_EVENTS}",
                details={"max_events": max_events},
            )
        rec = self._get(principal, execution_id, is_admin)
        operations = self.store.get_operations(rec.id)
        events = self.store.get_history(rec.id, max(after_seq, 0), max_events + 1)
        more = len(events) > max_events
        events = events[:max_events]
        return ExecutionHistory(
            shown(rec), operations, events, events[-1].seq if more and events else None
        )

    # -- control -------------------------------------------------------------------------------
    def stop(
        self,
        principal: str,
        execution_id: str,
        *,
        error: dict[str, Any] | None = None,
        is_admin: bool = False,
    ) -> ExecutionRecord:
        """Stop a running execution now (STOPPED, with ``error`` or :data:`STOPPED_ERROR`). A
        replay running it stops at its next checkpoint. ``ExecutionConflict`` once it ended."""
        rec = self._get(principal, execution_id, is_admin)
        recorded = self._error(error) if error is not None else dict(STOPPED_ERROR)
        stopped = self.store.stop_execution(rec.id, recorded, self.clock())
        self.notifier.publish("execution", rec.id)
        self.wake_parent(stopped)
        return shown(stopped)

    def complete_callback(
        self,
        principal: str,
        callback_id: str,
        outcome: Outcome,
        result: Any = None,
        error: dict[str, Any] | None = None,
        *,
        is_admin: bool = False,
    ) -> tuple[ExecutionRecord, OperationRecord]:
        """Complete (``succeed`` with ``result``, ``fail`` with ``error``) or ``heartbeat`` a
        callback of one of the principal's executions (an admin: anyone's).

        ``result``: a string is handed to the workflow as it is (the AWS callback ``Result``,
        read by the callback's serdes, pass-through by default); any other JSON value as its
        JSON text. ``error``: ``{"type", "message", "data", "stack"}``, each optional. Raises
        ``CallbackNotFound`` (also for someone else's callback) and ``CallbackConflict``
        (completed already, timed out, or its execution ended; ``details.state`` says which).
        """
        if outcome not in ("succeed", "fail", "heartbeat"):
            raise errors.InvalidRequest(
                "a callback's outcome is succeed, fail or heartbeat", details={"outcome": outcome}
            )
        check_text(callback_id, where="callback_id", identifier=True, max_chars=256)
        text = self._result(result) if outcome == "succeed" else None
        recorded = self._error(error) if outcome == "fail" and error is not None else None
        found = self.store.find_callback(callback_id)
        if found is None or (found[0].principal != principal and not is_admin):
            raise errors.CallbackNotFound(
                f"no callback with id {callback_id!r}", details={"callback_id": callback_id}
            )
        ex, op = self.store.complete_callback(
            callback_id, outcome, result=text, error=recorded, now=self.clock()
        )
        if outcome != "heartbeat":
            self.notifier.publish("workflows", ex.workflow)
        return shown(ex), op

    def wake_parent(self, child: ExecutionRecord) -> None:
        """A child execution ended (the store woke its parent): wake the parent's workers."""
        if child.parent_id is None:
            return
        parent = self.store.get_execution(child.parent_id)
        if parent is not None and parent.status is ExecutionStatus.RUNNING:
            self.notifier.publish("workflows", parent.workflow)

    def _result(self, result: Any) -> str | None:
        if result is None:
            return None
        limit = self.settings.workflow_max_payload_bytes
        if isinstance(result, str):
            check_text(result, where="result")
            size = len(result.encode("utf-8"))
            if size > limit:
                raise errors.PayloadTooLarge(
                    f"result is {size} bytes; the limit is {limit}",
                    details={"path": "result", "size": size, "limit": limit},
                )
            return result
        check_json_value(result, where="result", max_depth=self.settings.max_json_depth)
        text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode("utf-8"))
        if size > limit:
            raise errors.PayloadTooLarge(
                f"result is {size} bytes as JSON; the limit is {limit}",
                details={"path": "result", "size": size, "limit": limit},
            )
        return text

    def _error(self, error: Any) -> dict[str, Any]:
        """An error object a caller gives (``{"type", "message", "data", "stack"}``)."""
        if not isinstance(error, dict):
            raise errors.UnprocessableEntity(
                "error: must be an object with type, message, data and stack (each optional)",
                details={"path": "error", "reason": "not an object"},
            )
        unknown = sorted(str(k) for k in error if k not in _ERROR_KEYS)
        if unknown:
            raise errors.UnprocessableEntity(
                f"error: unknown field(s) {', '.join(unknown)}; give type, message, data, stack",
                details={"path": "error", "reason": "unknown fields", "fields": unknown},
            )
        out: dict[str, Any] = {k: error.get(k) for k in _ERROR_KEYS}
        for key in ("type", "message", "data"):
            if out[key] is not None and not isinstance(out[key], str):
                raise errors.UnprocessableEntity(
                    f"error.{key}: must be a string",
                    details={"path": f"error.{key}", "reason": "must be a string"},
                )
        stack = out["stack"]
        if isinstance(stack, str):
            out["stack"] = stack.splitlines()
        elif stack is not None and not (
            isinstance(stack, list) and all(isinstance(s, str) for s in stack)
        ):
            raise errors.UnprocessableEntity(
                "error.stack: must be a list of strings (or one string)",
                details={"path": "error.stack", "reason": "must be a list of strings"},
            )
        limit = self.settings.workflow_max_payload_bytes
        size = check_json_value(out, where="error", max_depth=self.settings.max_json_depth)
        if size > limit:
            raise errors.PayloadTooLarge(
                f"error is {size} bytes as JSON; the limit is {limit}",
                details={"path": "error", "size": size, "limit": limit},
            )
        if out["type"] is not None:
            check_text(out["type"], where="error.type", identifier=True, max_chars=256)
        return out
