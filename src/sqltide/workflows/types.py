"""The values a workflow's code is handed or gets back: the AWS SDK's ``types`` and batch models.

:class:`StepContext` (a step's logger and attempt), the contexts of callback submitters and
condition checks, :class:`ErrorObject` (an error as a checkpoint records it), the results of
``map`` and ``parallel`` (:class:`BatchResult` of :class:`BatchItem`) and the pieces of a
custom completion rule (:class:`CompletionStatus`, :func:`complete_batch`, …).
"""

from __future__ import annotations

import builtins
import traceback
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from .. import errors
from ..errors import (
    BatchCompletionError,
    ChildContextError,
    DurableExecutionsError,
    DurableOperationError,
    SerDesError,
)

T = TypeVar("T")
R = TypeVar("R")
C_co = TypeVar("C_co", covariant=True)

__all__ = [
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionReason",
    "CompletionStatus",
    "ErrorObject",
    "LoggerInterface",
    "OperationContext",
    "StepContext",
    "WaitForCallbackContext",
    "WaitForConditionCheckContext",
    "complete_batch",
    "continue_batch",
]


class LoggerInterface(Protocol):
    """What a logger given to ``set_logger`` must offer (a ``logging.Logger`` does)."""

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: object, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class OperationContext:
    """What every operation's user function is handed: a replay-aware logger."""

    logger: LoggerInterface


@dataclass(frozen=True)
class StepContext(OperationContext):
    """Handed to a step's function: its logger and the attempt number (1 the first time)."""

    attempt: int


@dataclass(frozen=True)
class WaitForCallbackContext(OperationContext):
    """Handed to a ``wait_for_callback`` submitter, with the callback id."""


@dataclass(frozen=True)
class WaitForConditionCheckContext(OperationContext):
    """Handed to a ``wait_for_condition`` check: its logger and the attempt number."""

    attempt: int


class Callback(Protocol[C_co]):
    """A callback the workflow waits on: give ``callback_id`` to the outside system."""

    callback_id: str

    @abstractmethod
    def result(self) -> C_co | None:
        """The result the outside system sent; suspends the execution until it arrives."""


# -- errors as recorded ------------------------------------------------------------------------
#: Our own classes recorded by qualified name, so a replay rebuilds the same class.
_OWN_ERRORS: dict[str, type[DurableExecutionsError]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (
        errors.StepError,
        errors.InvokeError,
        errors.ChildContextError,
        errors.WaitForConditionError,
        errors.BatchCompletionError,
        errors.CallbackError,
        errors.CallbackExternalError,
        errors.CallbackTimeoutError,
        errors.CallbackSubmitterError,
        errors.SerDesError,
    )
}


@dataclass(frozen=True)
class ErrorObject:
    """An error as a checkpoint records it: ``{"type", "message", "data", "stack"}``.

    ``type`` is the escaping error's class name (``"ValueError"``), or for an error the SDK
    already typed (a ``StepError`` escaping a child context) the type it carries.
    """

    message: str | None = None
    type: str | None = None
    data: str | None = None
    stack_trace: list[str] | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorObject:
        """Record ``exc``: its type, message and stack (without the frames of the SDK)."""
        stack = [
            line
            for line in traceback.format_exception(type(exc), exc, exc.__traceback__)
            if line.strip()
        ]
        if isinstance(exc, DurableOperationError | SerDesError):
            # Typed already: keep the type it carries (the original error's, or its own
            # qualified name, which a replay rebuilds it from).
            return cls(exc.message, exc.error_type, exc.data, exc.stack_trace or stack)
        if isinstance(exc, DurableExecutionsError):
            return cls(exc.message, type(exc).__name__, exc.data, exc.stack_trace or stack)
        return cls(str(exc), type(exc).__name__, None, stack)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ErrorObject:
        """Read a recorded error (``None`` reads as an error without fields)."""
        data = data or {}
        stack = data.get("stack")
        if isinstance(stack, str):
            stack = stack.splitlines()
        return cls(data.get("message"), data.get("type"), data.get("data"), stack)

    def to_dict(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "type": self.type,
            "message": self.message,
            "data": self.data,
            "stack": self.stack_trace,
        }

    def rebuild(self) -> DurableExecutionsError:
        """The recorded error as an exception: one of the SDK's own typed errors when the
        record is of one (a callback's timeout, a serializer's failure), else a
        :class:`~sqltide.errors.DurableOperationError` carrying the fields."""
        own = _OWN_ERRORS.get(self.type or "", DurableOperationError)
        if issubclass(own, SerDesError):
            return own(self.message, self.type, self.data, self.stack_trace)
        assert issubclass(own, DurableOperationError)
        return own(self.message, self.type, self.data, self.stack_trace)

    def to_operation_error(
        self, cls: builtins.type[DurableOperationError]
    ) -> DurableExecutionsError:
        """The error a workflow's code sees for a failed operation of kind ``cls``.

        ``cls`` with these fields, its ``__cause__`` the recorded error rebuilt
        (:meth:`rebuild`): the same on the first run and on every replay. A serializer's
        failure is raised as the :class:`~sqltide.errors.SerDesError` it is.
        """
        cause = self.rebuild()
        if isinstance(cause, SerDesError):
            return cause
        exc = cls(self.message, self.type, self.data, self.stack_trace)
        exc.__cause__ = cause
        return exc


def qualified_name(cls: type) -> str:
    """The name an SDK error class is recorded by (``sqltide.errors.CallbackTimeoutError``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


# -- map and parallel results ------------------------------------------------------------------
class BatchItemStatus(Enum):
    """What became of one item of a map or branch of a parallel."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: Started but not ended when the batch completed (it completed early).
    STARTED = "STARTED"


class CompletionReason(Enum):
    """Why a map or parallel completed."""

    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"


@dataclass(frozen=True)
class BatchItem(Generic[R]):
    """One item's outcome: its index among the inputs, status, result or error."""

    index: int
    status: BatchItemStatus
    result: R | None = None
    error: ErrorObject | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status.value,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchItem[Any]:
        return cls(
            index=int(data["index"]),
            status=BatchItemStatus(data["status"]),
            result=data.get("result"),
            error=ErrorObject.from_dict(data["error"]) if data.get("error") else None,
        )


@dataclass(frozen=True)
class BatchResult(Generic[R]):
    """The result of a map or parallel: one :class:`BatchItem` per started item, in order.

    The operation itself succeeds whatever its items did; ``throw_if_error()`` raises the
    first item's failure as a :class:`~sqltide.errors.ChildContextError` (or a
    :class:`~sqltide.errors.SerDesError`), or a :class:`~sqltide.errors.BatchCompletionError`
    when a ``should_complete`` rule completed the batch as failed.
    """

    all: list[BatchItem[R]]
    completion_reason: CompletionReason
    #: Set when a should_complete rule decided the batch failed (no item needs to have).
    failed_by_rule: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "all": [item.to_dict() for item in self.all],
            "completionReason": self.completion_reason.value,
        }
        if self.failed_by_rule:
            out["failedByRule"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchResult[Any]:
        return cls(
            [BatchItem.from_dict(item) for item in data["all"]],
            CompletionReason(data["completionReason"]),
            bool(data.get("failedByRule", False)),
        )

    def succeeded(self) -> list[BatchItem[R]]:
        """The items that succeeded with a result (as the AWS SDK, ``None`` results are left out)."""
        return [
            i for i in self.all if i.status is BatchItemStatus.SUCCEEDED and i.result is not None
        ]

    def failed(self) -> list[BatchItem[R]]:
        return [i for i in self.all if i.status is BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem[R]]:
        return [i for i in self.all if i.status is BatchItemStatus.STARTED]

    @property
    def status(self) -> BatchItemStatus:
        """FAILED when any item failed (or a rule failed the batch), else SUCCEEDED."""
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    @property
    def has_failure(self) -> bool:
        return self.failed_by_rule or any(i.status is BatchItemStatus.FAILED for i in self.all)

    def throw_if_error(self) -> None:
        """Raise the first failed item's error, or BatchCompletionError for a failing rule."""
        for item in self.all:
            if item.status is BatchItemStatus.FAILED:
                error = item.error or ErrorObject("the item failed")
                raise error.to_operation_error(ChildContextError)
        if self.failed_by_rule:
            raise BatchCompletionError("the batch's should_complete rule completed it as failed")

    def get_results(self) -> list[R]:
        """The results of the items that succeeded, in item order (``None`` results left out)."""
        return [i.result for i in self.succeeded()]  # type: ignore[misc]

    def get_errors(self) -> list[ErrorObject]:
        """The errors of the items that failed, in item order."""
        return [i.error for i in self.all if i.status is BatchItemStatus.FAILED and i.error]

    @property
    def success_count(self) -> int:
        return sum(1 for i in self.all if i.status is BatchItemStatus.SUCCEEDED)

    @property
    def failure_count(self) -> int:
        return len(self.failed())

    @property
    def started_count(self) -> int:
        return len(self.started())

    @property
    def total_count(self) -> int:
        return len(self.all)


# -- custom completion rules -------------------------------------------------------------------
class CompletionItemStatus(Enum):
    """An item's state as a ``should_complete`` rule sees it (``None``: not started)."""

    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class CompletionOutcome(Enum):
    """How a ``should_complete`` rule completes the batch."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class CompletionStatus:
    """A snapshot for a ``should_complete`` rule: the counts and every item's status."""

    total_count: int
    success_count: int
    failure_count: int
    item_statuses: tuple[CompletionItemStatus | None, ...]

    @property
    def completed_count(self) -> int:
        return self.success_count + self.failure_count

    @property
    def started_count(self) -> int:
        return sum(1 for s in self.item_statuses if s is not None) - self.completed_count


@dataclass(frozen=True)
class CompletionDecision:
    """A rule's answer: go on, or complete with an outcome."""

    complete: bool
    outcome: CompletionOutcome = CompletionOutcome.SUCCEEDED


def complete_batch(outcome: CompletionOutcome = CompletionOutcome.SUCCEEDED) -> CompletionDecision:
    """Complete the batch now (as succeeded unless told)."""
    return CompletionDecision(True, outcome)


def continue_batch() -> CompletionDecision:
    """Keep going."""
    return CompletionDecision(False)
