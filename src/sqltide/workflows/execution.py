"""``durable_execution``, where the AWS SDK keeps it (``aws_durable_execution_sdk_python.execution``)."""

from __future__ import annotations

from .decorators import durable_execution, workflow

__all__ = ["durable_execution", "workflow"]
