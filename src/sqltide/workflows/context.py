"""``DurableContext``: the operations a workflow's code calls (the AWS SDK's ``context`` module).

Every operation gets a deterministic id, its 1-based position among the operations started in
its context, prefixed by the context's id (``3``, ``3-1``, ``3-2-4``), and goes through the
replay's :class:`~sqltide.workflows.replay.ExecutionState`: a checkpointed operation returns
its recorded result (or raises its recorded error) without running, a new one runs and is
checkpointed before its result is used. The operations themselves are in ``operations.py``
(step, wait, callbacks, conditions, child contexts, invoke) and ``batch.py`` (map, parallel).

Operations of one context run one after the other; concurrency comes only from child contexts
(``map`` and ``parallel`` run theirs in threads), each with ids of its own, so the order in
which threads run never changes an id. A context is *replaying* while its operations are found
ended in the checkpoints loaded at the start of the replay; its logger is quiet meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ExecutionAbandoned, OrphanedBranch
from . import batch, operations
from .decorators import (
    durable_parallel_branch,
    durable_step,
    durable_wait_for_callback,
    durable_with_child_context,
)
from .logs import ReplayAwareLogger
from .types import Callback as CallbackProtocol
from .types import LoggerInterface, StepContext, WaitForCallbackContext

if TYPE_CHECKING:
    from ..store import OperationUpdate
    from .config import (
        CallbackConfig,
        ChildConfig,
        Duration,
        InvokeConfig,
        MapConfig,
        ParallelBranch,
        ParallelConfig,
        StepConfig,
        WaitForCallbackConfig,
    )
    from .replay import ExecutionState
    from .serdes import SerDes
    from .types import BatchResult
    from .waits import WaitForConditionCheckContext, WaitForConditionConfig

T = TypeVar("T")
U = TypeVar("U")

__all__ = [
    "Callback",
    "DurableContext",
    "ExecutionContext",
    "StepContext",
    "WaitForCallbackContext",
    "durable_parallel_branch",
    "durable_step",
    "durable_wait_for_callback",
    "durable_with_child_context",
]


@dataclass(frozen=True)
class ExecutionContext:
    """What the code may know of its execution: its id (the AWS SDK's ``durable_execution_arn``)."""

    durable_execution_arn: str

    @property
    def execution_id(self) -> str:
        return self.durable_execution_arn


class Callback(CallbackProtocol[T]):
    """A callback created by ``context.create_callback``: hand ``callback_id`` to the outside
    system, which completes it (``POST /v1/callbacks/{id}/succeed``); ``result()`` waits."""

    def __init__(
        self,
        context: DurableContext,
        operation_id: str,
        callback_id: str,
        serdes: SerDes[Any] | None,
        name: str | None,
    ):
        self._context = context
        self.operation_id = operation_id
        self.callback_id = callback_id
        self.serdes = serdes
        self.name = name

    def result(self) -> T | None:
        """The result sent (the text as sent, or read by the config's serdes).

        Suspends the execution until the callback completes; raises CallbackTimeoutError when
        its timeout or heartbeat timeout passes first, CallbackExternalError when the outside
        system reports a failure.
        """
        return operations.callback_result(self._context, self)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Callback(callback_id={self.callback_id!r}, operation_id={self.operation_id!r})"


class _OperationScope:
    """The ``with`` of one operation (a class, not a generator: a replay enters one per
    operation it finds, and this costs half as much)."""

    __slots__ = ("context", "flip_after", "op_id")

    def __init__(self, context: DurableContext, op_id: str, flip_after: bool):
        self.context = context
        self.op_id = op_id
        self.flip_after = flip_after

    def __enter__(self) -> str:
        return self.op_id

    def __exit__(self, *exc: object) -> None:
        ctx = self.context
        if self.flip_after or (
            ctx._replaying and ctx.state.loaded(ctx._make_id(ctx._count + 1)) is None
        ):
            ctx._replaying = False


class DurableContext:
    """The durable operations of a workflow, handed to it as its second argument."""

    def __init__(
        self,
        state: ExecutionState,
        *,
        parent_id: str | None,
        prefix: str | None,
        replaying: bool,
        logger: ReplayAwareLogger,
        guards: tuple[threading.Event, ...] = (),
    ):
        self.state = state
        self.execution_context = ExecutionContext(state.execution_id)
        #: Always None here (there is no Lambda); kept so code that reads it runs.
        self.lambda_context: Any = None
        #: The parent id of the operations created in this context.
        self._parent_id = parent_id
        #: The prefix of their ids (the id of the operation that owns this context).
        self._prefix = prefix
        self._count = 0
        self._lock = threading.Lock()
        self._replaying = replaying
        #: Set when an enclosing map or parallel has completed: stop at the next operation.
        self._guards = guards
        self.logger: ReplayAwareLogger = logger.bound(is_replaying=self.is_replaying)

    @classmethod
    def root(cls, state: ExecutionState) -> DurableContext:
        """The context a workflow function is called with."""
        logger = ReplayAwareLogger(
            state.user_logger,
            lambda: False,
            {"execution_id": state.execution_id, "workflow": state.execution.workflow},
        )
        return cls(
            state,
            parent_id=None,
            prefix=None,
            replaying=state.loaded("1") is not None,
            logger=logger,
        )

    # -- ids, replay status, guards ------------------------------------------------------------
    def _make_id(self, n: int) -> str:
        return f"{self._prefix}-{n}" if self._prefix else str(n)

    def _next_id(self) -> str:
        with self._lock:
            self._count += 1
            return self._make_id(self._count)

    def is_replaying(self) -> bool:
        """Whether this context is replaying operations that already ran."""
        return self._replaying

    def _operation(self, *, runs_code: bool = False) -> _OperationScope:
        """Allocate the next operation id and keep the replay status right around it (``with
        ctx._operation() as op_id``).

        An operation not in the loaded checkpoints, or a step about to run its code again (a
        retry), ends the replay before it runs; one found pending (a wait now due, a child
        context in progress) ends it after; one found ended keeps it while the next one is
        found too.
        """
        self._check_guards()
        op_id = self._next_id()
        flip_after = False
        if self._replaying:
            rec = self.state.loaded(op_id)
            if rec is None or (runs_code and not rec.status.is_terminal):
                self._replaying = False
            else:
                flip_after = not rec.status.is_terminal
        return _OperationScope(self, op_id, flip_after)

    def _check_guards(self) -> None:
        if self.state.stop.is_set():
            raise ExecutionAbandoned(self.state.execution_id)
        for guard in self._guards:
            if guard.is_set():
                raise OrphanedBranch()

    def _commit(self, *updates: OperationUpdate) -> None:
        """Checkpoint now, unless an enclosing map or parallel already completed."""
        self._check_guards()
        self.state.commit(*updates)

    def _child(
        self, op_id: str, *, virtual: bool = False, guard: threading.Event | None = None
    ) -> DurableContext:
        """The context of the child operation ``op_id`` (a virtual one reports to ours)."""
        return DurableContext(
            self.state,
            parent_id=self._parent_id if virtual else op_id,
            prefix=op_id,
            replaying=self._replaying and self.state.loaded(f"{op_id}-1") is not None,
            logger=self.logger,
            guards=(*self._guards, guard) if guard is not None else self._guards,
        )

    # -- logging ---------------------------------------------------------------------------------
    def set_logger(self, new_logger: LoggerInterface) -> None:
        """Send this context's log lines to ``new_logger`` (still quiet while replaying)."""
        self.logger = self.logger.bound(base=new_logger)

    # -- operations ------------------------------------------------------------------------------
    def step(
        self,
        func: Callable[[StepContext], T],
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> T:
        """Run ``func(step_context)`` once and checkpoint its result (retrying per config)."""
        return operations.step(self, func, name, config)  # type: ignore[no-any-return]

    def wait(self, duration: Duration, name: str | None = None) -> None:
        """Wait ``duration`` (at least one second) without holding anything: the execution is
        suspended and replayed when the time has come."""
        operations.wait(self, duration, name)

    def create_callback(
        self, name: str | None = None, config: CallbackConfig | None = None
    ) -> Callback[Any]:
        """A callback for an outside system to complete; ``.result()`` waits for it."""
        return operations.create_callback(self, name, config)

    def wait_for_callback(
        self,
        submitter: Callable[[str, WaitForCallbackContext], Any],
        name: str | None = None,
        config: WaitForCallbackConfig | None = None,
    ) -> Any:
        """Create a callback, run ``submitter(callback_id, ctx)`` as a step, wait for it."""
        return operations.wait_for_callback(self, submitter, name, config)

    def wait_for_condition(
        self,
        check: Callable[[T, WaitForConditionCheckContext], T],
        config: WaitForConditionConfig[T],
        name: str | None = None,
    ) -> T:
        """Poll ``check(state, ctx)`` until the config's strategy stops; one operation."""
        return operations.wait_for_condition(self, check, config, name)  # type: ignore[no-any-return]

    def run_in_child_context(
        self,
        func: Callable[[DurableContext], T],
        name: str | None = None,
        config: ChildConfig[T] | None = None,
    ) -> T:
        """Run ``func(child_context)``: its operations are grouped under one operation."""
        return operations.run_in_child_context(self, func, name, config)  # type: ignore[no-any-return]

    def invoke(
        self,
        function_name: str,
        payload: Any,
        name: str | None = None,
        config: InvokeConfig[Any, Any] | None = None,
    ) -> Any:
        """Start the workflow ``function_name`` with ``payload`` as a child execution and wait
        for its result (InvokeError when it does not succeed)."""
        return operations.invoke(self, function_name, payload, name, config)

    def map(
        self,
        inputs: Sequence[U],
        func: Callable[[DurableContext, U, int, Sequence[U]], T],
        name: str | None = None,
        config: MapConfig[U] | None = None,
    ) -> BatchResult[T]:
        """Run ``func(ctx, item, index, inputs)`` for every item, concurrently, each in a child
        context; complete by the config's completion rule (fail fast by default)."""
        return batch.run_map(self, inputs, func, name, config)

    def parallel(
        self,
        functions: Sequence[Callable[[DurableContext], T] | ParallelBranch[T]],
        name: str | None = None,
        config: ParallelConfig | None = None,
    ) -> BatchResult[T]:
        """Run every ``function(ctx)`` concurrently, each in a child context; complete by the
        config's completion rule (all must succeed by default)."""
        return batch.run_parallel(self, functions, name, config)
