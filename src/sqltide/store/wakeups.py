"""Wake-ups between the parts of sqltide, so nothing polls in a tight loop.

Channels: ``work`` (key: a warehouse with new statements), ``statement`` (key: a statement id
that ended: long-polls wait for that, so non-terminal changes are not sent) and ``cancel`` (key:
a statement asked to stop); ``workflows`` (key: a workflow with an execution made runnable) and
``execution`` (key: an execution id that ended). In one process this is all in memory; a store shared by many
processes brings its own :class:`Transport` (PostgreSQL ``LISTEN/NOTIFY``): set as
``notifier.transport``, it gets every publish after local delivery, and hands what other
processes published to :meth:`Notifier.deliver`.

Async waiters hold no thread: each is an ``asyncio.Future`` resolved from the publishing
thread with ``call_soon_threadsafe``. Register the waiter *before* reading the state you wait
on, so a change between the read and the wait is never missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from ..errors import TooManyRequests

Callback = Callable[[str], None]


class Waiter:
    """One async wait for a (channel, key); use as a context manager around read-then-wait."""

    def __init__(self, notifier: Notifier, channel: str, key: str):
        self._notifier = notifier
        self._channel = channel
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()

    def __enter__(self) -> Waiter:
        self._notifier._add_waiter(self._channel, self._key, self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._notifier._remove_waiter(self._channel, self._key, self)

    def _fire(self) -> None:
        def resolve() -> None:
            if not self._future.done():
                self._future.set_result(None)

        self._loop.call_soon_threadsafe(resolve)

    def reset(self) -> None:
        if self._future.done():
            self._future = self._loop.create_future()

    async def wait(self, timeout: float) -> bool:
        """True when notified before ``timeout`` seconds passed."""
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout)
            return True
        except TimeoutError:
            return False


class Transport(Protocol):
    """Carries wake-ups to other processes sharing the store."""

    def send(self, channel: str, key: str) -> None:
        """Publish to the other processes; must not raise (wake-ups are best effort)."""

    def close(self) -> None: ...


class Notifier:
    def __init__(self, max_waiters: int = 10_000):
        self.max_waiters = max_waiters
        #: Also sends every publish to other processes when set (see :class:`Transport`).
        self.transport: Transport | None = None
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], set[Waiter]] = defaultdict(set)
        self._count = 0
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Call ``callback(key)`` (on the publishing thread) for every publish on ``channel``."""
        with self._lock:
            self._callbacks[channel].append(callback)

    def publish(self, channel: str, key: str) -> None:
        """Wake this process's waiters and subscribers, then other processes' (if any)."""
        self.deliver(channel, key)
        transport = self.transport
        if transport is not None:
            transport.send(channel, key)

    def deliver(self, channel: str, key: str) -> None:
        """Wake this process's waiters and subscribers only (a transport's way in)."""
        with self._lock:
            waiters = list(self._waiters.get((channel, key), ()))
            callbacks = list(self._callbacks.get(channel, ()))
        for waiter in waiters:
            waiter._fire()
        for callback in callbacks:
            callback(key)

    def waiter(self, channel: str, key: str) -> Waiter:
        return Waiter(self, channel, key)

    def _add_waiter(self, channel: str, key: str, waiter: Waiter) -> None:
        with self._lock:
            if self._count >= self.max_waiters:
                raise TooManyRequests(
                    f"too many requests are waiting ({self._count}); retry without wait or later",
                    details={"limit": self.max_waiters},
                )
            self._waiters[(channel, key)].add(waiter)
            self._count += 1

    def _remove_waiter(self, channel: str, key: str, waiter: Waiter) -> None:
        with self._lock:
            bucket = self._waiters.get((channel, key))
            if bucket and waiter in bucket:
                bucket.discard(waiter)
                self._count -= 1
                if not bucket:
                    del self._waiters[(channel, key)]

    @property
    def waiting(self) -> int:
        return self._count

    def waited_keys(self, channel: str) -> list[str]:
        """The keys someone waits on in ``channel`` now."""
        with self._lock:
            return [k for (c, k) in self._waiters if c == channel]

    def close(self) -> None:
        """Stop the transport, if any (nothing else to do in memory)."""
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()
