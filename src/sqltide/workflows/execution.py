"""``durable_execution`` and ``InvocationStatus``, where the AWS SDK keeps them
(``aws_durable_execution_sdk_python.execution``)."""

from __future__ import annotations

from enum import StrEnum

from ..store import ExecutionStatus
from .decorators import durable_execution, workflow

__all__ = ["InvocationStatus", "durable_execution", "workflow"]


class InvocationStatus(StrEnum):
    """Where an execution stands when a test looks at it (the AWS SDK's invocation status).

    ``PENDING``: still running, waiting for something (on AWS, an invocation that suspended).
    sqltide adds ``TIMED_OUT`` and ``STOPPED``, which AWS reports only on the execution.
    """

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @classmethod
    def of(cls, status: ExecutionStatus) -> InvocationStatus:
        """The invocation status of an execution in ``status`` (RUNNING is PENDING)."""
        return cls.PENDING if status is ExecutionStatus.RUNNING else cls(status.value)
