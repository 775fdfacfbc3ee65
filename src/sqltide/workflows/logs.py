"""Replay-aware logging: ``context.logger`` and ``step_context.logger``.

A workflow's code runs again from the top on every replay; its log lines would repeat each
time. The logger a context hands out says nothing while its context is replaying operations
that already ran, and speaks again from the first operation that runs for real. Each line
carries the execution and operation it comes from as ``extra`` fields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .types import LoggerInterface

#: Where a workflow's own log lines go unless ``Replay(logger=...)`` or ``set_logger`` says.
USER_LOGGER = logging.getLogger("sqltide.workflows.user")


class ReplayAwareLogger:
    """A logger that is quiet while ``is_replaying()`` holds.

    ``debug``/``info``/``warning``/``error``/``exception``/``critical`` as on
    ``logging.Logger``; the ``extra`` given is merged over the execution's own fields.
    """

    def __init__(
        self,
        base: LoggerInterface,
        is_replaying: Callable[[], bool],
        extra: Mapping[str, Any] | None = None,
    ):
        self._base = base
        self._is_replaying = is_replaying
        self._extra = dict(extra or {})

    @property
    def base(self) -> LoggerInterface:
        """The logger lines go to."""
        return self._base

    def bound(
        self,
        *,
        is_replaying: Callable[[], bool] | None = None,
        base: LoggerInterface | None = None,
        **extra: Any,
    ) -> ReplayAwareLogger:
        """The same logger with other replay status, base logger or more fields."""
        return ReplayAwareLogger(
            base if base is not None else self._base,
            is_replaying or self._is_replaying,
            {**self._extra, **{k: v for k, v in extra.items() if v is not None}},
        )

    def _log(
        self, method: str, msg: object, args: tuple[object, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._is_replaying():
            return
        given = kwargs.get("extra")
        kwargs["extra"] = {**self._extra, **(given or {})}
        if isinstance(self._base, logging.Logger | logging.LoggerAdapter):
            # Point the record at the workflow's line, not at this wrapper.
            kwargs.setdefault("stacklevel", 3)
        getattr(self._base, method)(msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("debug", msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("info", msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("warning", msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("error", msg, args, kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("exception", msg, args, kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("critical", msg, args, kwargs)
