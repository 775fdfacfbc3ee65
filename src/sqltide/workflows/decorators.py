"""Decorators: mark workflows, and bind arguments to steps, child contexts and submitters.

``@durable_execution`` marks a function ``handler(event, context)`` as a workflow (the
:class:`~sqltide.workflows.registry.Registry` collects it under its ``__name__``, or under the
name given by ``@workflow(name=...)``) and leaves it as it was: calling it calls it. The
others are the AWS SDK's binders: ``@durable_step`` turns ``f(step_ctx, *args)`` into
``f(*args) -> step function`` for ``context.step``, and so on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .config import ParallelBranch

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

#: The attribute a workflow function carries.
MARK = "__sqltide_workflow__"

__all__ = [
    "WorkflowMark",
    "durable_execution",
    "durable_parallel_branch",
    "durable_step",
    "durable_wait_for_callback",
    "durable_with_child_context",
    "workflow",
    "workflow_mark",
]


@dataclass(frozen=True)
class WorkflowMark:
    """What ``@durable_execution`` / ``@workflow`` record on a function."""

    name: str


def workflow_mark(obj: Any) -> WorkflowMark | None:
    """The mark of a workflow function, or None."""
    mark = getattr(obj, MARK, None)
    return mark if isinstance(mark, WorkflowMark) else None


def _mark(func: F, name: str | None) -> F:
    if not callable(func):
        raise TypeError(f"a workflow must be a function (event, context), not {func!r}")
    current = workflow_mark(func)
    chosen = name or (current.name if current else None) or getattr(func, "__name__", None)
    if not chosen:
        raise TypeError(f"give the workflow {func!r} a name: @workflow(name=...)")
    setattr(func, MARK, WorkflowMark(chosen))
    return func


@overload
def durable_execution(func: F, /) -> F: ...
@overload
def durable_execution(
    func: None = None, /, *, boto3_client: Any = None, plugins: Any = None, **kwargs: Any
) -> Callable[[F], F]: ...
def durable_execution(
    func: F | None = None, /, *, boto3_client: Any = None, plugins: Any = None, **kwargs: Any
) -> F | Callable[[F], F]:
    """Mark ``func(event, context)`` as a durable workflow (bare, or with arguments).

    ``boto3_client`` and ``plugins`` (the AWS SDK's Lambda client and instrumentation plugins)
    are accepted so that a handler runs unchanged, and ignored: sqltide checkpoints to its own
    store and has no plugin hooks.
    """
    if boto3_client is not None or plugins or kwargs:
        logger.debug(
            "durable_execution: %s ignored (sqltide checkpoints to its own store)",
            ", ".join(
                k
                for k, v in {"boto3_client": boto3_client, "plugins": plugins, **kwargs}.items()
                if v
            ),
        )
    if func is None:
        return lambda f: _mark(f, None)
    return _mark(func, None)


def workflow(name: str) -> Callable[[F], F]:
    """Register the decorated workflow under ``name`` instead of its ``__name__``.

    ``@workflow(name="nightly-refresh")`` marks the function as a workflow by itself; with
    ``@durable_execution`` above or below it, the name still holds.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a workflow name is a non-empty string, not {name!r}")

    def decorate(func: F) -> F:
        return _mark(func, name.strip())

    return decorate


def _named(inner: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    # context.step(f(...)) names the operation after the decorated function.
    inner._original_name = original.__name__  # type: ignore[attr-defined]
    return inner


def durable_step(func: Callable[..., Any]) -> Callable[..., Callable[[Any], Any]]:
    """``f(step_context, *args)`` → ``f(*args)`` gives the function ``context.step`` runs,
    named after ``f``."""

    @functools.wraps(func)
    def bind(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        def run(step_context: Any) -> Any:
            return func(step_context, *args, **kwargs)

        return _named(run, func)

    return bind


def durable_with_child_context(func: Callable[..., Any]) -> Callable[..., Callable[[Any], Any]]:
    """``f(child_ctx, *args)`` → ``f(*args)`` gives the function ``run_in_child_context`` runs."""

    @functools.wraps(func)
    def bind(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        def run(child_context: Any) -> Any:
            return func(child_context, *args, **kwargs)

        return _named(run, func)

    return bind


def durable_parallel_branch(
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., ParallelBranch[Any]]]:
    """``@durable_parallel_branch(name=...)``: ``f(ctx, *args)`` → ``f(*args)`` gives a
    :class:`ParallelBranch` for ``context.parallel``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., ParallelBranch[Any]]:
        @functools.wraps(func)
        def bind(*args: Any, **kwargs: Any) -> ParallelBranch[Any]:
            def run(ctx: Any) -> Any:
                return func(ctx, *args, **kwargs)

            return ParallelBranch(func=run, name=name)

        return bind

    return decorate


def durable_wait_for_callback(func: Callable[..., Any]) -> Callable[..., Callable[[str, Any], Any]]:
    """``f(callback_id, ctx, *args)`` → ``f(*args)`` gives a ``wait_for_callback`` submitter."""

    @functools.wraps(func)
    def bind(*args: Any, **kwargs: Any) -> Callable[[str, Any], Any]:
        def submit(callback_id: str, context: Any) -> Any:
            return func(callback_id, context, *args, **kwargs)

        return _named(submit, func)

    return bind
