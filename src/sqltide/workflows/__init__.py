"""Durable workflows: the AWS durable execution SDK's names and semantics, on sqltide's store.

A handler written for ``aws_durable_execution_sdk_python`` runs with its imports swapped for
``sqltide.workflows`` (the submodules ``config``, ``retries``, ``waits``, ``serdes``,
``types``, ``context``, ``execution`` and ``exceptions`` mirror the AWS SDK's)::

    from sqltide.workflows import DurableContext, StepContext, durable_execution, durable_step
    from sqltide.workflows.config import Duration

Every step is checkpointed in the store before its result is used; every wait, pending retry
and callback suspends the execution, which holds no thread, connection or process until it is
due again; a crash resumes where the checkpoints end (docs/adr/0008-durable-workflows.md).
"""

from __future__ import annotations

from .config import (
    CallbackConfig,
    ChildConfig,
    CompletionConfig,
    Duration,
    InvokeConfig,
    JitterStrategy,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
)
from .context import Callback, DurableContext, ExecutionContext
from .decorators import (
    durable_execution,
    durable_parallel_branch,
    durable_step,
    durable_wait_for_callback,
    durable_with_child_context,
    workflow,
)
from .exceptions import (
    BatchCompletionError,
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    DurableExecutionsError,
    DurableOperationError,
    ExecutionError,
    InvocationError,
    InvokeError,
    NonDeterministicExecutionError,
    RetryableSerDesError,
    SerDesError,
    StepError,
    StepInterruptedError,
    SuspendExecution,
    UnrecoverableError,
    ValidationError,
    WaitForConditionError,
)
from .registry import LoadProblem, Registry, Workflow
from .replay import Replay
from .retries import WithRetryConfig, with_retry
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
    StepContext,
    WaitForCallbackContext,
    WaitForConditionCheckContext,
    complete_batch,
    continue_batch,
)

__version__ = "3.0.0+sqltide"

__all__ = [
    "BatchCompletionError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackExternalError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionReason",
    "CompletionStatus",
    "DurableContext",
    "DurableExecutionsError",
    "DurableOperationError",
    "Duration",
    "ErrorObject",
    "ExecutionContext",
    "ExecutionError",
    "InvocationError",
    "InvokeConfig",
    "InvokeError",
    "JitterStrategy",
    "LoadProblem",
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelBranch",
    "ParallelConfig",
    "Registry",
    "Replay",
    "RetryableSerDesError",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "SuspendExecution",
    "UnrecoverableError",
    "ValidationError",
    "WaitForCallbackConfig",
    "WaitForCallbackContext",
    "WaitForConditionCheckContext",
    "WaitForConditionError",
    "WithRetryConfig",
    "Workflow",
    "__version__",
    "complete_batch",
    "continue_batch",
    "durable_execution",
    "durable_parallel_branch",
    "durable_step",
    "durable_wait_for_callback",
    "durable_with_child_context",
    "with_retry",
    "workflow",
]
