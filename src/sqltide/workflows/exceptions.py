"""The SDK's errors where the AWS SDK keeps them (``aws_durable_execution_sdk_python.exceptions``).

They are defined in :mod:`sqltide.errors`, sqltide's one error tree; this module only names them.
"""

from __future__ import annotations

from ..errors import (
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
    TerminationReason,
    TimedSuspendExecution,
    UnrecoverableError,
    ValidationError,
    WaitForConditionError,
)

__all__ = [
    "BatchCompletionError",
    "CallbackError",
    "CallbackExternalError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "ChildContextError",
    "DurableExecutionsError",
    "DurableOperationError",
    "ExecutionError",
    "InvocationError",
    "InvokeError",
    "NonDeterministicExecutionError",
    "RetryableSerDesError",
    "SerDesError",
    "StepError",
    "StepInterruptedError",
    "SuspendExecution",
    "TerminationReason",
    "TimedSuspendExecution",
    "UnrecoverableError",
    "ValidationError",
    "WaitForConditionError",
]
