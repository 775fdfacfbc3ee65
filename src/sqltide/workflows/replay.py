"""One replay of an execution: run the workflow function over its checkpoints.

:class:`Replay` is what the worker calls, once per claimed execution, on a pool thread: it
loads the execution's operations, runs ``fn(input, context)`` from the top, and then either
finishes the execution (SUCCEEDED with the serialized result, FAILED with the error) or
suspends it until the earliest time anything it waits for is due (``next_run_at``; None when
only an outside event can wake it). Every operation of the function goes through
:class:`ExecutionState`, which holds the checkpoints of this replay:

- ``expect`` finds the checkpoint at an operation's deterministic id and checks that it is
  the same operation (type, sub-type, name), else :class:`NonDeterministicExecutionError`,
  which fails the execution whatever the workflow's code does with it;
- ``commit`` writes checkpoints in one transaction, before their result is used; ``queue``
  holds the ones nothing reads back (a child context's start, a wait that ended) until the
  next commit, so they cost no transaction of their own;
- a checkpoint the store refuses (the lease was lost, the execution was stopped or timed out)
  abandons the replay at once (:class:`~sqltide.errors.ExecutionAbandoned`) and
  :meth:`Replay.run` returns None.

A replay holds nothing between its calls; replays of different executions share nothing but
the store, so any number run at once on different threads.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import (
    DurableExecutionsError,
    ExecutionAbandoned,
    ExecutionError,
    InvocationError,
    NonDeterministicExecutionError,
    OrphanedBranch,
    SuspendExecution,
)
from ..store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from . import serdes
from .logs import USER_LOGGER
from .types import ErrorObject

if TYPE_CHECKING:
    from ..store import Store
    from .context import DurableContext

logger = logging.getLogger(__name__)

#: Signature of the service's hook that starts a child execution for ``context.invoke``:
#: ``(workflow, execution name, serialized input, parent execution, parent operation id)``.
StartChild = Callable[[str, str, "str | None", ExecutionRecord, str], ExecutionRecord]

#: After an InvocationError (a passing failure: a retryable serializer's), replay again then.
INVOCATION_RETRY_SECONDS = 5.0


class ExecutionState:
    """The checkpoints of one replay and the writer of new ones (thread-safe)."""

    def __init__(
        self,
        store: Store,
        execution: ExecutionRecord,
        *,
        owner: str,
        clock: Callable[[], float],
        start_child: StartChild | None = None,
        user_logger: logging.Logger | None = None,
        stop: threading.Event | None = None,
    ):
        self.store = store
        self.execution = execution
        self.execution_id = execution.id
        self.owner = owner
        self.clock = clock
        self.start_child = start_child
        self.user_logger: Any = user_logger or USER_LOGGER
        self._lock = threading.RLock()
        self._ops: dict[str, OperationRecord] = {}
        self._loaded: dict[str, OperationRecord] = {}
        self._queued: list[OperationUpdate] = []
        #: The first non-determinism found: the execution fails with it whatever the code did.
        self.fatal: NonDeterministicExecutionError | None = None
        self.abandoned = False
        #: Set from outside (Replay.abandon): stop at the next operation or checkpoint.
        self.stop = stop or threading.Event()

    # -- reading -------------------------------------------------------------------------------
    def load(self, operations: list[OperationRecord] | None = None) -> None:
        """Read the execution's checkpoints (once, at the start of the replay), or take
        ``operations``, read by the worker with its claim."""
        ops = self.store.get_operations(self.execution_id) if operations is None else operations
        with self._lock:
            self._ops = {op.id: op for op in ops}
            self._loaded = dict(self._ops)

    def now(self) -> float:
        return self.clock()

    def get(self, op_id: str) -> OperationRecord | None:
        """The operation as this replay knows it (loaded, or written since)."""
        with self._lock:
            return self._ops.get(op_id)

    def loaded(self, op_id: str) -> OperationRecord | None:
        """The operation as it was when this replay started."""
        return self._loaded.get(op_id)

    def expect(
        self, op_id: str, op_type: OperationType, sub_type: str, name: str | None
    ) -> OperationRecord | None:
        """The checkpoint at ``op_id`` if there is one, after checking it is this operation."""
        rec = self.get(op_id)
        if rec is None:
            return None
        if rec.type != op_type or rec.sub_type != sub_type or rec.name != name:
            err = NonDeterministicExecutionError(
                f"operation {op_id} is {_describe(op_type, sub_type, name)} in the code now, "
                f"but the execution's checkpoint at {op_id} is "
                f"{_describe(rec.type, rec.sub_type, rec.name)}: the workflow's code changed "
                "while this execution was in flight, or it is not deterministic (wrap time, "
                "randomness and I/O in steps)",
                op_id,
                details={
                    "operation_id": op_id,
                    "expected": {"type": str(op_type), "sub_type": sub_type, "name": name},
                    "checkpoint": {
                        "type": str(rec.type),
                        "sub_type": rec.sub_type,
                        "name": rec.name,
                    },
                },
            )
            with self._lock:
                if self.fatal is None:
                    self.fatal = err
            raise err
        return rec

    # -- writing -------------------------------------------------------------------------------
    def new_operation(
        self,
        op_id: str,
        op_type: OperationType,
        sub_type: str,
        name: str | None,
        parent_id: str | None,
        status: OperationStatus,
        **fields: Any,
    ) -> OperationRecord:
        """A new operation's record (the store gives it its ``seq``)."""
        now = self.now()
        return OperationRecord(
            execution_id=self.execution_id,
            id=op_id,
            type=op_type,
            sub_type=sub_type,
            status=status,
            parent_id=parent_id,
            name=name,
            started_at=fields.pop("started_at", now),
            updated_at=now,
            **fields,
        )

    def changed(
        self, rec: OperationRecord, status: OperationStatus, **fields: Any
    ) -> OperationRecord:
        """``rec`` in a new status (ended statuses get ``ended_at = now``)."""
        now = self.now()
        if status.is_terminal:
            fields.setdefault("ended_at", now)
        return dataclasses.replace(rec, status=status, updated_at=now, **fields)

    def queue(self, update: OperationUpdate) -> None:
        """Write ``update`` with the next commit (nothing may read it back before)."""
        with self._lock:
            self._queued.append(update)
            self._ops[update.operation.id] = update.operation

    def commit(self, *updates: OperationUpdate) -> None:
        """Write the queued checkpoints and ``updates`` now, in one transaction."""
        with self._lock:
            if self.abandoned or self.stop.is_set():
                self.abandoned = True
                raise ExecutionAbandoned(self.execution_id)
            batch = [*self._queued, *updates]
            if not batch:
                return
            try:
                ok = self.store.checkpoint(self.execution_id, self.owner, batch, self.now())
            except Exception as exc:
                # Whether it committed is unknown: stop here rather than fail the execution
                # for the store's trouble; the lease expires and a later replay goes on.
                logger.warning(
                    "execution %s: checkpoint failed (%s); abandoning the replay",
                    self.execution_id,
                    exc,
                )
                self.abandoned = True
                raise ExecutionAbandoned(self.execution_id) from exc
            if not ok:
                self.abandoned = True
                raise ExecutionAbandoned(self.execution_id)
            self._queued.clear()
            for update in updates:
                self._ops[update.operation.id] = update.operation

    def flush(self) -> None:
        """Write what is queued."""
        with self._lock:
            if self._queued:
                self.commit()


def _describe(op_type: Any, sub_type: str, name: str | None) -> str:
    label = f"a {op_type} ({sub_type})"
    return f"{label} named {name!r}" if name is not None else f"{label} without a name"


def execution_error(exc: BaseException) -> dict[str, Any]:
    """The error an execution ends with: the escaping exception's class, message and stack."""
    stack = [
        line
        for line in traceback.format_exception(type(exc), exc, exc.__traceback__)
        if line.strip()
    ]
    if isinstance(exc, DurableExecutionsError):
        return {
            "type": type(exc).__name__,
            "message": exc.message,
            "data": exc.data,
            "stack": stack,
        }
    return ErrorObject(str(exc), type(exc).__name__, None, stack).to_dict()


class Replay:
    """One replay of ``execution`` by ``fn(input, context)``; :meth:`run` does it.

    ``owner`` holds the execution's lease (the worker claimed it); ``clock`` is the time
    source of every checkpoint and due time (injectable: tests skip waits with it);
    ``retention_seconds`` how long the execution is kept once it ends; ``start_child`` the
    service's hook that starts the child execution of ``context.invoke``; ``logger`` where the
    workflow's ``context.logger`` lines go; ``operations`` the execution's checkpoints when
    the caller read them already (read after the claim: anything changed since by an outside
    event also made the execution due again, so a replay that misses it replays once more).
    """

    def __init__(
        self,
        store: Store,
        execution: ExecutionRecord,
        fn: Callable[[Any, DurableContext], Any],
        *,
        owner: str,
        clock: Callable[[], float],
        retention_seconds: float,
        start_child: StartChild | None = None,
        logger: logging.Logger | None = None,
        operations: list[OperationRecord] | None = None,
    ):
        self.store = store
        self.execution = execution
        self.operations = operations
        self.fn = fn
        self.owner = owner
        self.clock = clock
        self.retention_seconds = retention_seconds
        self.start_child = start_child
        self.user_logger = logger
        self._stop = threading.Event()

    def abandon(self) -> None:
        """Make the replay stop at its next operation or checkpoint, writing nothing more
        (from any thread: the worker calls it when the execution's lease is no longer its
        own); :meth:`run` then returns None."""
        self._stop.set()

    def run(self) -> ExecutionStatus | None:
        """Replay once; the execution's status after it (RUNNING: suspended), or None when
        the replay was abandoned (the lease was lost, or the execution stopped or timed out)."""
        from .context import DurableContext

        state = ExecutionState(
            self.store,
            self.execution,
            owner=self.owner,
            clock=self.clock,
            start_child=self.start_child,
            user_logger=self.user_logger,
            stop=self._stop,
        )
        try:
            if self._stop.is_set():
                raise ExecutionAbandoned(self.execution.id)
            state.load(self.operations)
            self.operations = None  # one replay each
            try:
                event = serdes.deserialize(
                    None, self.execution.input, execution_id=self.execution.id, what="the input"
                )
                context = DurableContext.root(state)
                value = self.fn(event, context)
            except SuspendExecution as suspended:
                if state.fatal is not None:
                    return self._fail(state, state.fatal)
                state.flush()
                return self._suspend(state, getattr(suspended, "scheduled_timestamp", None))
            except ExecutionAbandoned:
                raise
            except OrphanedBranch:
                return self._fail(
                    state,
                    ExecutionError(
                        "an operation was started on the context of a map item or parallel "
                        "branch after its batch had completed: use the context a batch hands "
                        "to an item only inside that item"
                    ),
                )
            except InvocationError as exc:
                if state.fatal is not None:
                    return self._fail(state, state.fatal)
                logger.warning(
                    "execution %s: the replay ended with %s (%s); replaying again in %.0f s",
                    self.execution.id,
                    type(exc).__name__,
                    exc.message,
                    INVOCATION_RETRY_SECONDS,
                )
                state.flush()
                return self._suspend(state, state.now() + INVOCATION_RETRY_SECONDS)
            except Exception as exc:
                return self._fail(state, state.fatal or exc)
            if state.fatal is not None:
                return self._fail(state, state.fatal)
            try:
                text = serdes.serialize(
                    None, value, execution_id=self.execution.id, what="the workflow's result"
                )
            except Exception as exc:
                return self._fail(state, exc)
            state.flush()
            ok = self.store.finish_execution(
                self.execution.id,
                self.owner,
                ExecutionStatus.SUCCEEDED,
                result=text,
                error=None,
                now=state.now(),
                retention_seconds=self.retention_seconds,
            )
            return ExecutionStatus.SUCCEEDED if ok else None
        except ExecutionAbandoned:
            logger.info(
                "execution %s: replay abandoned (lease lost, stopped or timed out)",
                self.execution.id,
            )
            return None

    def _suspend(self, state: ExecutionState, next_run_at: float | None) -> ExecutionStatus | None:
        ok = self.store.suspend_execution(self.execution.id, self.owner, next_run_at, state.now())
        return ExecutionStatus.RUNNING if ok else None

    def _fail(self, state: ExecutionState, exc: BaseException) -> ExecutionStatus | None:
        state.flush()
        ok = self.store.finish_execution(
            self.execution.id,
            self.owner,
            ExecutionStatus.FAILED,
            result=None,
            error=execution_error(exc),
            now=state.now(),
            retention_seconds=self.retention_seconds,
        )
        return ExecutionStatus.FAILED if ok else None
