"""Calling the (blocking) services from async endpoints.

A store whose calls are quick local I/O (SQLite: tens of microseconds) is called on the event
loop directly; a hop to a worker thread would cost more than the call. Any other store is
called from the thread pool so a slow query never stalls the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


async def call(request: Request, fn: Callable[..., T], *args: Any) -> T:
    if getattr(request.app.state.runtime.store, "fast_calls", False):
        return fn(*args)
    return await run_in_threadpool(fn, *args)
