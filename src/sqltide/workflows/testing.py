"""Test durable workflows in-process, on a clock that skips waits: the AWS testing library's
``DurableFunctionTestRunner``.

A runner replays a workflow the way a worker does (the same :class:`~sqltide.workflows.replay.Replay`
over the same store code: every checkpoint written, every replay from the top) but on the
test's own thread and, by default, on a clock that jumps to the next due time whenever the
execution only waits for one. An hour of polling every 10 seconds takes 360 replays and no
waiting::

    from sqltide.workflows.execution import InvocationStatus
    from sqltide.workflows.testing import DurableFunctionTestRunner

    def test_refresh():
        with DurableFunctionTestRunner(handler=lambda_handler) as runner:
            result = runner.run(input={"table": "orders"})
        assert result.status is InvocationStatus.SUCCEEDED
        assert result.value == {"statusCode": 200, ...}
        assert result.get_step("execute_batch_query").attempt == 1

- :meth:`~DurableFunctionTestRunner.run` runs an execution until it ends, or until it waits
  only for something from outside (a callback without a timeout): then its status is
  ``PENDING``. Every timer on the way (waits, retries, polls, callback timeouts, the
  execution's own timeout when a timer would pass it) is skipped to.
- :meth:`~DurableFunctionTestRunner.run_async` starts it and runs what is due at once; then
  :meth:`~DurableFunctionTestRunner.wait_for_callback` gives the id of a callback it created,
  :meth:`~DurableFunctionTestRunner.send_callback_success` (``_failure``, ``_heartbeat``)
  answers it and :meth:`~DurableFunctionTestRunner.wait_for_result` runs it to its end.
- ``context.invoke`` starts workflows registered with
  :meth:`~DurableFunctionTestRunner.register_durable_function` (or in the ``registry`` given).

Every runner has a store of its own (a SQLite file in a temporary folder, removed by
:meth:`~DurableFunctionTestRunner.close`) and no global state, so tests run in parallel.
The execution advances only inside the runner's calls, on the thread that makes them, so a
test's events happen in the order it makes them. docs/workflows.md ("Testing") lists where
this differs from the AWS library.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from ..errors import (
    CallbackNotFound,
    DurableFunctionsTestError,
    ExecutionNotFound,
    WorkflowNotFound,
)
from ..store import (
    ExecutionFilter,
    ExecutionRecord,
    ExecutionStatus,
    HistoryRecord,
    OperationStatus,
    OperationType,
    Store,
    store_from_url,
)
from .decorators import workflow_mark
from .execution import InvocationStatus
from .registry import NAME, Registry
from .replay import Replay
from .testing_results import (
    CallbackOperation,
    ContextOperation,
    DurableFunctionTestResult,
    InvokeOperation,
    Operation,
    OperationSubType,
    StepOperation,
    WaitOperation,
    callback_text,
    check_seconds,
    error_dict,
    input_text,
)

__all__ = [
    "CallbackOperation",
    "ContextOperation",
    "DurableChildContextTestRunner",
    "DurableFunctionTestResult",
    "DurableFunctionTestRunner",
    "DurableFunctionsTestError",
    "InvocationStatus",
    "InvokeOperation",
    "Operation",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "SkipClock",
    "StepOperation",
    "WaitOperation",
]

#: An execution's timeout when none is given: sqltide's default (SQLTIDE_WORKFLOW_TIMEOUT_SECONDS).
DEFAULT_EXECUTION_TIMEOUT = 86_400.0
#: How long (real seconds) ``run`` and the ``wait_for_*`` calls may take by default.
DEFAULT_TIMEOUT = 60.0
#: The lease of a replay (on the runner's clock): a replay that dies (a BaseException out of
#: the workflow's code) leaves its execution leased this long, as a killed worker would.
LEASE_SECONDS = 300.0
_STOPPED = {
    "type": "ExecutionStopped",
    "message": "the execution was stopped by the test",
    "data": None,
    "stack": None,
}

Handler = Callable[[Any, Any], Any]


class SkipClock:
    """The runner's clock when it skips time: it stands still while code runs, and the runner
    moves it to the next due time when nothing is due before.

    ``t`` is the time now (epoch seconds; the real time when the clock was made, to the
    second, unless ``start`` is given). Call it for the time, like ``time.time``.
    """

    def __init__(self, start: float | None = None):
        self.t = float(int(time.time()) if start is None else start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead."""
        with self._lock:
            self.t += seconds

    def advance_to(self, t: float) -> None:
        """Move the clock to ``t`` (never back)."""
        with self._lock:
            self.t = max(self.t, t)


class DurableFunctionTestRunner:
    """Runs a workflow's executions in-process over a store of its own (a context manager).

    ``handler``: the workflow, ``handler(event, context)`` (decorated with
    ``@durable_execution`` or not), registered under ``function_name`` (default: its
    ``@workflow`` name or ``__name__``). ``skip_time``: jump over waits and retry delays
    (default); with False the runner keeps real time and really waits. ``execution_timeout``:
    each execution's timeout, in seconds of the runner's clock (default a day, as
    ``SQLTIDE_WORKFLOW_TIMEOUT_SECONDS``). ``store_url``: a store to use instead of a private
    SQLite file (``postgresql://...``; give each runner its own database, since runners claim
    executions by workflow name); ``store``: an open store, which the runner neither migrates
    nor closes. ``registry``: workflows ``context.invoke`` may start (a
    :class:`~sqltide.workflows.Registry` loaded from modules); more with
    :meth:`register_durable_function`. ``clock``: a :class:`SkipClock` of your own, to read or
    move time from the test. ``poll_interval``: how often a wait re-reads the store for a
    change made by another process. ``logger``: where ``context.logger`` writes.
    ``principal`` and ``owner``: who the executions and the replays are recorded as.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        skip_time: bool = True,
        execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
        store_url: str | None = None,
        store: Store | None = None,
        registry: Registry | None = None,
        function_name: str | None = None,
        clock: SkipClock | None = None,
        poll_interval: float = 0.1,
        logger: logging.Logger | None = None,
        principal: str = "test",
        owner: str = "test-runner",
        retention_seconds: float = 14 * 86_400.0,
    ):
        if not callable(handler):
            raise DurableFunctionsTestError(
                f"the handler must be a function (event, context), not {handler!r}"
            )
        check_seconds(execution_timeout, "execution_timeout")
        if store is not None and store_url is not None:
            raise DurableFunctionsTestError("give store_url or store, not both")
        if clock is not None and not skip_time:
            raise DurableFunctionsTestError("a SkipClock is for skip_time=True")
        self.skip_time = skip_time
        self.execution_timeout = float(execution_timeout)
        self.poll_interval = poll_interval
        self.principal = principal
        self.owner = owner
        self.retention_seconds = retention_seconds
        #: The lease of a replay, on the runner's clock.
        self.lease_seconds = LEASE_SECONDS
        self.logger = logger
        self.registry = Registry()
        self._timeouts: dict[str, float] = {}
        if registry is not None:
            for name in registry.names():
                wf = registry.get(name)
                if wf is not None:
                    self.registry.add(wf.fn, name)
        self.function_name = self._register(handler, function_name)
        self.clock: Callable[[], float] = (clock or SkipClock()) if skip_time else time.time
        self._closed = False
        self._folder: str | None = None
        self._owns_store = False
        if store is not None:
            self.store, self._owns_store = store, False
        else:
            if store_url is None:
                self._folder = tempfile.mkdtemp(prefix="sqltide-test-")
                store_url = f"sqlite:///{self._folder}/state.db"
            self.store, self._owns_store = store_from_url(store_url), True
            try:
                self.store.migrate()
            except BaseException:
                self.close()
                raise
        #: Notified on every change a runner call makes (a replay, a callback, the clock).
        self._changed = threading.Condition()
        self._changes = 0
        self._driving = threading.RLock()

    # -- workflows -------------------------------------------------------------------------------
    def _register(self, handler: Handler, name: str | None) -> str:
        if name is None:
            mark = workflow_mark(handler)
            name = mark.name if mark else getattr(handler, "__name__", "")
            if not NAME.match(name or ""):
                name = "handler"  # a lambda, a partial
        return self.registry.add(handler, name).name

    def register_durable_function(
        self,
        function_name: str,
        handler: Handler,
        execution_timeout: float | None = None,
        retention_period_days: float | None = None,
    ) -> DurableFunctionTestRunner:
        """Make ``handler`` the workflow ``context.invoke(function_name, ...)`` starts (with
        its own ``execution_timeout``, at most its parent's). Returns the runner."""
        del retention_period_days  # kept so tests written for AWS run; nothing expires here
        self._register(handler, function_name)
        if execution_timeout is not None:
            check_seconds(execution_timeout, "execution_timeout")
            self._timeouts[function_name] = float(execution_timeout)
        return self

    def register_function(self, function_name: str, handler: Handler) -> DurableFunctionTestRunner:
        """The AWS library's plain (non-durable) invoke target: here every target is a
        workflow, so ``handler(event, context)`` runs as one without durable operations."""
        return self.register_durable_function(function_name, handler)

    # -- starting and running ----------------------------------------------------------------------
    def start(
        self,
        input: Any = None,
        *,
        execution_name: str | None = None,
        execution_timeout: float | None = None,
        function_name: str | None = None,
    ) -> str:
        """Record a new execution and return its id, without running anything.

        ``input``: a ``str`` (or ``bytes``) is the input's JSON text, as the AWS runner takes
        it; any other value is serialized (JSON, or the SDK's extended types). The same
        ``execution_name`` twice gives the same execution (the idempotent start).
        """
        self._check_open()
        workflow = function_name or self.function_name
        if workflow not in self.registry:
            raise WorkflowNotFound(
                f"no workflow named {workflow!r} is registered with this runner (registered: "
                f"{', '.join(self.registry.names())})",
                details={"workflow": workflow},
            )
        timeout = self.execution_timeout if execution_timeout is None else execution_timeout
        check_seconds(timeout, "execution_timeout")
        now = self.clock()
        rec = ExecutionRecord(
            id=str(uuid.uuid4()),
            workflow=workflow,
            name=execution_name or str(uuid.uuid4()),
            principal=self.principal,
            status=ExecutionStatus.RUNNING,
            created_at=now,
            updated_at=now,
            input=input_text(input),
            timeout_at=now + timeout,
        )
        stored, _ = self.store.start_execution(rec)
        self._changed_now()
        return stored.id

    def run(
        self,
        input: Any = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        execution_timeout: float | None = None,
        execution_name: str | None = None,
        function_name: str | None = None,
    ) -> DurableFunctionTestResult:
        """Start an execution and run it until it ends or waits only for an outside event
        (its status is then ``PENDING``: answer its callbacks and call
        :meth:`wait_for_result`).

        ``timeout``: real seconds this may take (TimeoutError after); ``execution_timeout``:
        the execution's own timeout on the runner's clock (TIMED_OUT after).
        """
        eid = self.start(
            input,
            execution_name=execution_name,
            execution_timeout=execution_timeout,
            function_name=function_name,
        )
        self._drive(eid, _ended, timeout, on_idle="return")
        return self.get_result(eid)

    def run_async(
        self,
        input: Any = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        execution_timeout: float | None = None,
        execution_name: str | None = None,
        function_name: str | None = None,
    ) -> str:
        """Start an execution, run what is due at once (its first replay, up to its first
        wait or callback), and return its id; the clock does not move."""
        eid = self.start(
            input,
            execution_name=execution_name,
            execution_timeout=execution_timeout,
            function_name=function_name,
        )
        self._drive(eid, _ended, timeout, on_idle="return", move_clock=False)
        return eid

    def wait_for_result(
        self, execution_id: str, timeout: float | None = DEFAULT_TIMEOUT
    ) -> DurableFunctionTestResult:
        """Run the execution to its end (skipping time) and return it.

        When it waits only for an outside event, waits up to ``timeout`` real seconds for one
        (a callback answered from another thread), then raises TimeoutError saying what the
        execution waits for.
        """
        self._drive(execution_id, _ended, timeout, on_idle="wait")
        return self.get_result(execution_id)

    def wait_for_callback(
        self, execution_id: str, name: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> str:
        """Run the execution until it has created a callback that is not answered yet, and
        return that callback's id: the one named ``name`` (a ``create_callback`` name, or
        the name of a ``wait_for_callback``), else the latest one.

        Raises DurableFunctionsTestError when that callback was answered or timed out already,
        or the execution ends without one; TimeoutError as :meth:`wait_for_result`.
        """
        found: list[str] = []

        def ready(ex: ExecutionRecord) -> bool:
            callback_id = self._open_callback(execution_id, name)
            if callback_id is not None:
                found.append(callback_id)
                return True
            return ex.status.is_terminal

        self._drive(execution_id, ready, timeout, on_idle="wait")
        if not found:
            ex = self._execution(execution_id)
            what = f"a callback named {name!r}" if name else "a callback"
            raise DurableFunctionsTestError(
                f"execution {execution_id} ended {ex.status} without waiting for {what}",
                details={"execution_id": execution_id, "status": str(ex.status), "name": name},
            )
        return found[0]

    # -- outside events ------------------------------------------------------------------------------
    def send_callback_success(self, callback_id: str, result: Any = None) -> None:
        """Answer a callback with ``result``: ``bytes`` or ``str`` as they are (the callback's
        serdes reads them; without one, the workflow gets the text), any other value as its
        JSON text."""
        self._complete(callback_id, "succeed", result=callback_text(result))

    def send_callback_failure(self, callback_id: str, error: Any = None) -> None:
        """Fail a callback: the workflow's ``callback.result()`` raises CallbackExternalError.
        ``error``: an :class:`~sqltide.workflows.ErrorObject`, an exception, a message, or a
        dict of ``type``, ``message``, ``data``, ``stack``."""
        self._complete(callback_id, "fail", error=error_dict(error))

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """Keep a callback with a heartbeat timeout alive for another such timeout."""
        self._complete(callback_id, "heartbeat")

    def _complete(
        self,
        callback_id: str,
        outcome: Literal["succeed", "fail", "heartbeat"],
        *,
        result: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        self._check_open()
        found = self.store.find_callback(callback_id)
        if found is None or found[0].principal != self.principal:
            raise CallbackNotFound(
                f"no callback with id {callback_id!r}", details={"callback_id": callback_id}
            )
        self.store.complete_callback(
            callback_id, outcome, result=result, error=error, now=self.clock()
        )
        self._changed_now()

    def stop_execution(self, execution_id: str, error: Any = None) -> DurableFunctionTestResult:
        """Stop a running execution (STOPPED), as ``sqltide workflows stop`` does."""
        self._check_open()
        self._execution(execution_id)
        self.store.stop_execution(
            execution_id, error_dict(error) if error is not None else dict(_STOPPED), self.clock()
        )
        self._changed_now()
        return self.get_result(execution_id)

    def advance_time(self, seconds: float) -> None:
        """Move the runner's clock ``seconds`` ahead (with ``skip_time``), for example past a
        callback's heartbeat timeout; the execution runs on at the next runner call."""
        if not isinstance(self.clock, SkipClock):
            raise DurableFunctionsTestError("advance_time needs skip_time=True")
        self.clock.advance(seconds)
        self._changed_now()

    # -- reading -------------------------------------------------------------------------------------
    def get_result(self, execution_id: str) -> DurableFunctionTestResult:
        """The execution as it is now (PENDING while it runs)."""
        ex = self._execution(execution_id)
        return DurableFunctionTestResult.create(ex, self.store.get_operations(execution_id))

    def get_execution_history(self, execution_id: str) -> list[HistoryRecord]:
        """Every change of the execution, in order (what ``sqltide workflows history`` shows)."""
        self._execution(execution_id)
        return self.store.get_history(execution_id, 0, 1_000_000)

    def _execution(self, execution_id: str) -> ExecutionRecord:
        rec = self.store.get_execution(execution_id)
        if rec is None or rec.principal != self.principal:
            raise ExecutionNotFound(
                f"no execution with id {execution_id!r} in this runner",
                details={"id": execution_id},
            )
        return rec

    # -- one replay ----------------------------------------------------------------------------------
    def replay(self, execution_id: str, *, owner: str | None = None) -> ExecutionStatus | None:
        """Claim the execution now and run one replay of it (it must be due); its status
        after (RUNNING: suspended), or None when the replay was abandoned.

        For tests of the replay itself (a crash between two replays, another worker taking
        over as ``owner``); :meth:`run` and the ``wait_for_*`` calls do this as needed.
        """
        self._check_open()
        who = owner or self.owner
        workflow = self._execution(execution_id).workflow
        with self._driving:
            claimed = self.store.claim_executions(
                [workflow], who, 64, self.lease_seconds, self.clock()
            )
            mine = [rec for rec in claimed if rec.id == execution_id]
            others = [rec for rec in claimed if rec.id != execution_id]
            for rec in others:  # claimed along: handed back as they were, due now
                self.store.suspend_execution(rec.id, who, self.clock(), self.clock())
            if not mine:
                raise DurableFunctionsTestError(
                    f"execution {execution_id} is not due at {self.clock()}: "
                    f"{self.store.get_execution(execution_id)}",
                    details={"execution_id": execution_id},
                )
            try:
                return self._replay(mine[0], who)
            finally:
                self._changed_now()

    def _replay(self, rec: ExecutionRecord, owner: str) -> ExecutionStatus | None:
        wf = self.registry.get(rec.workflow)
        assert wf is not None  # claims take registered workflows only
        return Replay(
            self.store,
            rec,
            wf.fn,
            owner=owner,
            clock=self.clock,
            retention_seconds=self.retention_seconds,
            start_child=self._start_child,
            logger=self.logger,
        ).run()

    def _start_child(
        self,
        workflow: str,
        name: str,
        payload: str | None,
        parent: ExecutionRecord,
        parent_operation_id: str,
    ) -> ExecutionRecord:
        """``context.invoke``: start ``workflow`` as a child execution (idempotent on
        ``name``), timing out with its parent at the latest."""
        if workflow not in self.registry:
            raise WorkflowNotFound(
                f"no workflow named {workflow!r} is registered with the test runner "
                "(runner.register_durable_function)",
                details={"workflow": workflow},
            )
        now = self.clock()
        timeout_at = now + self._timeouts.get(workflow, self.execution_timeout)
        if parent.timeout_at is not None:
            timeout_at = min(timeout_at, parent.timeout_at)
        rec = ExecutionRecord(
            id=str(uuid.uuid4()),
            workflow=workflow,
            name=name,
            principal=parent.principal,
            status=ExecutionStatus.RUNNING,
            created_at=now,
            updated_at=now,
            input=payload,
            timeout_at=timeout_at,
            parent_id=parent.id,
            parent_operation_id=parent_operation_id,
        )
        return self.store.start_execution(rec)[0]

    # -- driving -------------------------------------------------------------------------------------
    def _drive(
        self,
        execution_id: str,
        done: Callable[[ExecutionRecord], bool],
        timeout: float | None,
        *,
        on_idle: Literal["return", "wait"],
        move_clock: bool = True,
    ) -> None:
        """Replay whatever is due, moving the clock to the next due time, until
        ``done(execution)``; when nothing is timed any more (only outside events are awaited)
        return, or wait for such an event, as ``on_idle`` says."""
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if done(self._execution(execution_id)):
                return
            with self._changed:
                seen = self._changes
            with self._driving:
                moved, due = self._tick(move_clock)
            if moved:
                self._changed_now()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"execution {execution_id} did not finish within {timeout} s (real "
                        f"time): {self._waits_for(execution_id)}"
                    )
                continue
            if on_idle == "return" and (due is None or not move_clock):
                return
            pause = self.poll_interval
            if due is not None and not self.skip_time:  # real time: until it falls due
                pause = min(pause, max(due - self.clock(), 0.0))
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"execution {execution_id} is still waiting after {timeout} s: "
                        f"{self._waits_for(execution_id)}"
                    )
                pause = min(pause, left)
            with self._changed:
                if self._changes == seen:
                    self._changed.wait(timeout=pause)

    def _tick(self, move_clock: bool) -> tuple[bool, float | None]:
        """One step of progress: (whether something changed, the next time something falls
        due when nothing is due now; None: only outside events are awaited)."""
        now = self.clock()
        names = self.registry.names()
        claimed = self.store.claim_executions(names, self.owner, 64, self.lease_seconds, now)
        if claimed:
            for rec in claimed:
                self._replay(rec, self.owner)
            return True, None
        running = [
            r
            for r in self.store.list_executions(
                ExecutionFilter(principal=self.principal, status=ExecutionStatus.RUNNING), 10_000
            )
            if r.workflow in self.registry
        ]
        timed_out = any(r.timeout_at is not None and r.timeout_at <= now for r in running)
        if timed_out and self.store.time_out_executions(now):
            return True, None
        # A replay that died here (a BaseException out of the workflow's code) left its
        # execution leased: it is recovered once the lease has run out, as the worker loop
        # recovers one whose worker was killed.
        leased = [
            math.nextafter(r.lease_expires_at, math.inf)
            for r in running
            if r.lease_owner and r.lease_expires_at is not None
        ]
        if any(t <= now for t in leased) and self.store.recover_executions(now):
            return True, None
        timers = [r.next_run_at for r in running if r.next_run_at is not None] + leased
        if not timers:
            return False, None
        due = min(timers + [r.timeout_at for r in running if r.timeout_at is not None])
        if due <= now or not move_clock or not isinstance(self.clock, SkipClock):
            return False, due
        self.clock.advance_to(due)
        return True, None

    def _changed_now(self) -> None:
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def _open_callback(self, execution_id: str, name: str | None) -> str | None:
        """The id of the callback :meth:`wait_for_callback` looks for, if it is open now."""
        ops = self.store.get_operations(execution_id)
        by_id = {op.id: op for op in ops}
        callbacks = [op for op in ops if op.type is OperationType.CALLBACK and op.callback_id]
        if name is not None:

            def named(op: Any) -> bool:
                parent = by_id.get(op.parent_id) if op.parent_id else None
                return op.name == name or (
                    parent is not None
                    and parent.sub_type == OperationSubType.WAIT_FOR_CALLBACK
                    and parent.name == name
                )

            callbacks = [op for op in callbacks if named(op)]
            if callbacks and all(op.status.is_terminal for op in callbacks):
                raise DurableFunctionsTestError(
                    f"the callback named {name!r} of execution {execution_id} has ended "
                    f"already ({callbacks[-1].status})",
                    details={"name": name, "status": str(callbacks[-1].status)},
                )
        open_ = [op for op in callbacks if not op.status.is_terminal]
        return open_[-1].callback_id if open_ else None

    def _waits_for(self, execution_id: str) -> str:
        """What the execution waits for, in words (for a TimeoutError)."""
        ex = self._execution(execution_id)
        if ex.status.is_terminal:
            return f"it ended {ex.status}"
        parts = []
        for op in self.store.get_operations(execution_id):
            if op.status.is_terminal:
                continue
            label = f"{op.name!r}" if op.name else f"operation {op.id}"
            if op.type is OperationType.CALLBACK:
                parts.append(f"callback {label} (id {op.callback_id}) is not answered")
            elif op.type is OperationType.CHAINED_INVOKE:
                parts.append(f"invoked execution {op.child_execution_id} ({label}) runs")
        if not parts:
            due = ex.next_run_at
            parts.append(f"it is due at {due}" if due is not None else "it waits")
        return "; ".join(parts)

    # -- lifecycle ------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DurableFunctionsTestError("the test runner is closed")

    def close(self) -> None:
        """Close the runner's store (unless it was given one) and remove its folder."""
        if self._closed:
            return
        self._closed = True
        if self._owns_store:
            self.store.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> DurableFunctionTestRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DurableChildContextTestRunner(DurableFunctionTestRunner):
    """Test a ``@durable_with_child_context`` function alone: ``context_function(*args,
    **kwargs)`` runs on the root context of an execution of its own (``run()`` takes no
    input that it would see)."""

    def __init__(
        self,
        context_function: Callable[..., Any],
        *args: Any,
        skip_time: bool = True,
        **kwargs: Any,
    ):
        def handler(event: Any, context: Any) -> Any:
            return context_function(*args, **kwargs)(context)

        super().__init__(
            handler, skip_time=skip_time, function_name=getattr(context_function, "__name__", None)
        )


def _ended(ex: ExecutionRecord) -> bool:
    return ex.status.is_terminal
