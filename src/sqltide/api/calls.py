"""Calling the (blocking) services from async endpoints without blocking the event loop.

Two ways in (ADR 0006):

- :func:`off_loop` runs a call in a worker thread. Every write goes here (it may wait for
  SQLite's one writer behind a 10,000-firing ``record_firings`` or a retention sweep, or for a
  PostgreSQL connection and its ``NOTIFY``), and so does anything else that may take more than
  a millisecond: lists, DNS lookups (the webhook guard), reading result files.
- :func:`read` is for a *point read* (one row by its key: a statement, a rule, an API key).
  When the store's reads never wait for a writer (``Store.reads_never_wait``: SQLite in WAL
  mode, where a reader sees the last commit without taking a lock) it runs on the loop: a
  hop to a thread costs ~50 µs of CPU, more than the read. Any other store: :func:`off_loop`.

- :func:`write` is for a *short write* (one statement's submit): on the loop when the
  store's one writer is free this very moment (``Store.hold_writer``: SQLite, whose writer is
  a lock of this process), since the write is then a short append to the WAL (~100 µs) and
  the thread hop would cost as much again and two thread switches; in a thread otherwise
  (the writer is busy with a 10,000-firing ``record_firings`` or a sweep, or the store is
  PostgreSQL, whose commit and ``NOTIFY`` cross the network).

The threads are this module's own pool (``loop.run_in_executor``), not Starlette's
``run_in_threadpool``: anyio's hop measured 84 µs of CPU against 48 µs for a plain executor.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import Request

from ..store import Store

T = TypeVar("T")

#: As many as Starlette's thread pool allowed: a PostgreSQL call may wait for a pooled
#: connection, and calls waiting there must not keep quick ones from a thread.
MAX_THREADS = 40

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="sqltide-api")
    return _pool


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; the event loop serves others meanwhile."""
    loop = asyncio.get_running_loop()
    if kwargs:
        return await loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))
    return await loop.run_in_executor(_executor(), fn, *args)


async def read(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """A point read: on the loop when the store's reads never wait, else in a thread.

    Only for calls that read a row or two by key and write nothing (no ``NOTIFY`` either).
    """
    return await point_read(request.app.state.runtime.store, fn, *args)


async def point_read(store: Store, fn: Callable[..., T], *args: Any) -> T:
    """:func:`read` for callers that hold the store rather than a request."""
    if store.reads_never_wait:
        return fn(*args)
    return await off_loop(fn, *args)


async def write(store: Store, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A short write: on the loop when the store's writer is free right now, else in a thread.

    Only for calls made of a few point reads and one small transaction (a submit), never a
    list, a sweep or anything that waits for the network.
    """
    if store.hold_writer():
        try:
            return fn(*args, **kwargs)
        finally:
            store.release_writer()
    return await off_loop(fn, *args, **kwargs)
