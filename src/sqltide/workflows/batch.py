"""``map`` and ``parallel``: items and branches as child contexts, run in threads.

One CONTEXT operation (``Map`` / ``Parallel``) owns the batch; item ``i`` is the child context
``{op}-{i+1}`` (``MapIteration`` / ``ParallelBranch``), so its operations keep their ids
whatever order the threads run in. A coordinator on the calling thread starts items in index
order while fewer than ``max_concurrency`` are in flight; an item that suspends (a wait, a
retry, a callback) keeps its slot. After every change :class:`CompletionPolicy` decides:

- complete: remaining items are orphaned (each stops at its next operation), the running
  ones are joined, and the :class:`BatchResult` is checkpointed as the batch's result;
- not yet, and nothing is running: the replay suspends until the earliest time a suspended
  item is due (or until an outside event), and the next replay carries on: ended items return
  their checkpoints at once, the others resume.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import (
    ChildContextError,
    OrphanedBranch,
    SuspendExecution,
    TimedSuspendExecution,
    UnrecoverableError,
    ValidationError,
)
from ..store import OperationStatus, OperationType, OperationUpdate
from .config import CompletionConfig, MapConfig, NestingType, ParallelBranch, ParallelConfig
from .serdes import deserialize, round_trip
from .types import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionDecision,
    CompletionItemStatus,
    CompletionOutcome,
    CompletionReason,
    CompletionStatus,
    ErrorObject,
)

if TYPE_CHECKING:
    from .context import DurableContext
    from .serdes import SerDes

S = OperationStatus
#: Items of one batch run on at most this many threads (in flight may be more: a suspended
#: item holds a slot, not a thread).
MAX_THREADS = 32


@dataclass(frozen=True)
class Decision:
    """A batch is complete: why, and whether a should_complete rule failed it."""

    reason: CompletionReason
    failed_by_rule: bool = False


class CompletionPolicy:
    """When a batch of ``total`` items is complete (the AWS SDK's rules).

    With ``min_successful`` or a tolerated-failure limit: complete when that many succeeded
    (``min_successful``, every item when unset), when failures exceed a limit (count, or
    percentage of all items), or when every item ended. With no limit at all, the first
    failure completes it (fail fast). A ``should_complete`` rule decides alone instead, from a
    :class:`CompletionStatus`, and the batch completes anyway once every item ended.
    """

    def __init__(self, config: CompletionConfig, total: int):
        self.config = config
        self.total = total
        self.min_successful = config.min_successful if config.min_successful is not None else total

    def tolerance_exceeded(self, failed: int) -> bool:
        cfg = self.config
        if cfg.tolerated_failure_count is None and cfg.tolerated_failure_percentage is None:
            return failed > 0
        if cfg.tolerated_failure_count is not None and failed > cfg.tolerated_failure_count:
            return True
        pct = cfg.tolerated_failure_percentage
        return pct is not None and self.total > 0 and failed * 100 / self.total > pct

    def decide(
        self,
        succeeded: int,
        failed: int,
        statuses: Sequence[CompletionItemStatus | None] = (),
    ) -> Decision | None:
        """The decision for these counts, or None to go on."""
        completed = succeeded + failed
        rule = self.config.should_complete
        if rule is not None:
            answer = rule(
                CompletionStatus(
                    self.total,
                    succeeded,
                    failed,
                    tuple(statuses) if statuses else (None,) * self.total,
                )
            )
            if isinstance(answer, bool):
                answer = CompletionDecision(answer)
            if answer.complete:
                if answer.outcome is CompletionOutcome.FAILED:
                    return Decision(CompletionReason.FAILURE_TOLERANCE_EXCEEDED, True)
                if completed == self.total:
                    return Decision(CompletionReason.ALL_COMPLETED)
                return Decision(CompletionReason.MIN_SUCCESSFUL_REACHED)
            return Decision(CompletionReason.ALL_COMPLETED) if completed == self.total else None
        if self.tolerance_exceeded(failed):
            return Decision(CompletionReason.FAILURE_TOLERANCE_EXCEEDED)
        if completed == self.total:
            return Decision(CompletionReason.ALL_COMPLETED)
        if succeeded >= self.min_successful:
            return Decision(CompletionReason.MIN_SUCCESSFUL_REACHED)
        return None


@dataclass(frozen=True)
class _Branch:
    index: int
    name: str
    run: Callable[[DurableContext], Any]


def run_map(
    ctx: DurableContext,
    inputs: Sequence[Any],
    func: Callable[..., Any],
    name: str | None,
    config: MapConfig[Any] | None,
) -> BatchResult[Any]:
    from .operations import original_name

    if not callable(func):
        raise ValidationError(f"map needs a function (ctx, item, index, items), not {func!r}")
    config = config or MapConfig()
    items = list(inputs)
    config.completion_config.validate_for_total(len(items))

    def bind(i: int, item: Any) -> Callable[[DurableContext], Any]:
        return lambda c: func(c, item, i, items)

    def branches() -> list[_Branch]:
        namer = config.item_namer
        return [
            _Branch(i, namer(item, i) if namer else f"map-item-{i}", bind(i, item))
            for i, item in enumerate(items)
        ]

    return _run_batch(
        ctx,
        name or original_name(func),
        ("Map", "MapIteration"),
        branches,
        max_concurrency=config.max_concurrency,
        completion=config.completion_config,
        serdes=config.serdes,
        item_serdes=config.item_serdes or config.serdes,
        flat=config.nesting_type is NestingType.FLAT,
    )


def run_parallel(
    ctx: DurableContext,
    functions: Sequence[Callable[[DurableContext], Any] | ParallelBranch[Any]],
    name: str | None,
    config: ParallelConfig | None,
) -> BatchResult[Any]:
    config = config or ParallelConfig()
    funcs = list(functions)
    for f in funcs:
        if not callable(f):
            raise ValidationError(f"parallel takes functions (ctx) -> value, not {f!r}")
    config.completion_config.validate_for_total(len(funcs))

    def branches() -> list[_Branch]:
        out = []
        for i, f in enumerate(funcs):
            label = f.name if isinstance(f, ParallelBranch) else None
            run = f.func if isinstance(f, ParallelBranch) else f
            out.append(_Branch(i, label if label is not None else f"parallel-branch-{i}", run))
        return out

    return _run_batch(
        ctx,
        name,
        ("Parallel", "ParallelBranch"),
        branches,
        max_concurrency=config.max_concurrency,
        completion=config.completion_config,
        serdes=config.serdes,
        item_serdes=config.item_serdes or config.serdes,
        flat=config.nesting_type is NestingType.FLAT,
    )


def _run_batch(
    ctx: DurableContext,
    name: str | None,
    sub_types: tuple[str, str],
    make_branches: Callable[[], list[_Branch]],
    *,
    max_concurrency: int | None,
    completion: CompletionConfig,
    serdes: SerDes[Any] | None,
    item_serdes: SerDes[Any] | None,
    flat: bool,
) -> BatchResult[Any]:
    from .operations import _label, _recorded_error

    state = ctx.state
    sub_type, item_sub_type = sub_types
    with ctx._operation() as op_id:
        rec = state.expect(op_id, OperationType.CONTEXT, sub_type, name)
        where = {
            "operation_id": op_id,
            "execution_id": state.execution_id,
            "what": f"the result of {_label(sub_type.lower(), name, op_id)}",
        }
        if rec is not None and rec.status is S.SUCCEEDED:
            return deserialize(serdes, rec.result, **where)  # type: ignore[no-any-return]
        if rec is not None and rec.status.is_terminal:
            raise _recorded_error(rec, ChildContextError)
        if rec is None:
            state.queue(
                OperationUpdate(
                    state.new_operation(
                        op_id, OperationType.CONTEXT, sub_type, name, ctx._parent_id, S.STARTED
                    ),
                    "started",
                )
            )
        batch_ctx = ctx._child(op_id)
        try:
            branches = make_branches()
            result = _coordinate(
                batch_ctx,
                op_id,
                branches,
                item_sub_type,
                max_concurrency,
                completion,
                item_serdes,
                flat,
            )
            text, value = round_trip(serdes, result, **where)
        except UnrecoverableError:
            raise
        except Exception as exc:
            error = ErrorObject.from_exception(exc)
            current = state.get(op_id)
            assert current is not None
            ctx._commit(
                OperationUpdate(
                    state.changed(current, S.FAILED, error=error.to_dict()),
                    "failed",
                    {"error_type": error.type},
                )
            )
            raise error.to_operation_error(ChildContextError) from exc
        current = state.get(op_id)
        assert current is not None
        # Derived from the items' checkpoints: a replay that lost it decides the same again.
        state.queue(
            OperationUpdate(
                state.changed(current, S.SUCCEEDED, result=text),
                "succeeded",
                {"completion_reason": result.completion_reason.value},
            )
        )
        return value  # type: ignore[no-any-return]


def _coordinate(
    batch_ctx: DurableContext,
    op_id: str,
    branches: list[_Branch],
    item_sub_type: str,
    max_concurrency: int | None,
    completion: CompletionConfig,
    item_serdes: SerDes[Any] | None,
    flat: bool,
) -> BatchResult[Any]:
    from .operations import child_operation

    total = len(branches)
    policy = CompletionPolicy(completion, total)
    limit = max_concurrency or max(total, 1)
    statuses: list[CompletionItemStatus | None] = [None] * total
    results: dict[int, Any] = {}
    errors: dict[int, ErrorObject] = {}
    events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
    orphaned = threading.Event()

    def work(branch: _Branch) -> None:
        try:
            value = child_operation(
                batch_ctx,
                f"{op_id}-{branch.index + 1}",
                branch.run,
                sub_type=item_sub_type,
                name=branch.name,
                serdes=item_serdes,
                virtual=flat,
                guard=orphaned,
            )
        except SuspendExecution as suspended:
            events.put(("suspended", branch.index, getattr(suspended, "scheduled_timestamp", None)))
        except OrphanedBranch:
            events.put(("orphaned", branch.index, None))
        except UnrecoverableError as exc:
            events.put(("fatal", branch.index, exc))
        except Exception as exc:
            events.put(("failed", branch.index, ErrorObject.from_exception(exc)))
        except BaseException as exc:  # the replay was abandoned: pass it on
            events.put(("fatal", branch.index, exc))
        else:
            events.put(("done", branch.index, value))

    pending = deque(branches)
    in_flight = running = succeeded = failed = 0
    due_times: list[float] = []
    decision: Decision | None = None
    futures: dict[int, Future[None]] = {}
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(limit, total, MAX_THREADS)), thread_name_prefix=f"workflow-{op_id}"
    )
    try:
        while True:
            batch_ctx._check_guards()
            decision = policy.decide(succeeded, failed, statuses)
            if decision is not None:
                break
            while pending and in_flight < limit:
                branch = pending.popleft()
                statuses[branch.index] = CompletionItemStatus.STARTED
                futures[branch.index] = pool.submit(work, branch)
                in_flight += 1
                running += 1
            if running == 0:
                # Every item in flight is suspended and no slot is free (or none is left).
                if due_times:
                    raise TimedSuspendExecution(
                        f"the items of operation {op_id} are waiting", min(due_times)
                    )
                raise SuspendExecution(f"the items of operation {op_id} are waiting")
            kind, index, payload = events.get()
            running -= 1
            if kind == "done":
                succeeded += 1
                in_flight -= 1
                statuses[index] = CompletionItemStatus.SUCCEEDED
                results[index] = payload
            elif kind == "failed":
                failed += 1
                in_flight -= 1
                statuses[index] = CompletionItemStatus.FAILED
                errors[index] = payload
            elif kind == "suspended":
                statuses[index] = CompletionItemStatus.SUSPENDED
                if payload is not None:
                    due_times.append(payload)
            elif kind == "orphaned":
                raise OrphanedBranch()
            else:
                raise payload
    finally:
        # Items still running stop at their next operation; none outlives this replay.
        orphaned.set()
        pool.shutdown(wait=True, cancel_futures=True)

    for index, future in futures.items():
        if future.cancelled():  # queued for a thread, never started
            statuses[index] = None
    # Items that ended while the decision was taken are reported as they ended.
    while True:
        try:
            kind, index, payload = events.get_nowait()
        except queue.Empty:
            break
        if kind == "done":
            statuses[index] = CompletionItemStatus.SUCCEEDED
            results[index] = payload
        elif kind == "failed":
            statuses[index] = CompletionItemStatus.FAILED
            errors[index] = payload
    items: list[BatchItem[Any]] = []
    for index, status in enumerate(statuses):
        if status is CompletionItemStatus.SUCCEEDED:
            items.append(BatchItem(index, BatchItemStatus.SUCCEEDED, results[index]))
        elif status is CompletionItemStatus.FAILED:
            items.append(BatchItem(index, BatchItemStatus.FAILED, error=errors[index]))
        elif status is not None:
            items.append(BatchItem(index, BatchItemStatus.STARTED))
    return BatchResult(items, decision.reason, decision.failed_by_rule)
