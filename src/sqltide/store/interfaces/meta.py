"""What every store is: a URL, migrations, meta values, wake-up transport, closing."""

from __future__ import annotations

import abc

from ..wakeups import Notifier, Transport


class MetaStore(abc.ABC):
    """A store's lifecycle and its key/value meta table (``sqltide_meta``)."""

    url: str
    #: True when a read (``get_*``, ``find_*``, ``list_*``) never waits for a writer or the
    #: network (SQLite in WAL mode), so async code may make a point read on its event loop.
    #: Writes never run there (ADR 0006).
    reads_never_wait: bool = False

    @abc.abstractmethod
    def __init__(self, url: str) -> None: ...

    def hold_writer(self) -> bool:
        """Take the store's one writer now, if it is free, for a short write made on an event
        loop; :meth:`release_writer` gives it back. False when it is busy, or when the store
        has no such writer (PostgreSQL): the write then goes to a thread (ADR 0006).

        While held, this thread's writes skip the lock they would otherwise take.
        """
        return False

    def release_writer(self) -> None:
        """Give back the writer taken by :meth:`hold_writer` (on the same thread)."""
        raise RuntimeError(f"{type(self).__name__} has no writer to hold or give back")

    def make_transport(self, notifier: Notifier) -> Transport | None:
        """What carries ``notifier``'s wake-ups to other processes (None: this one only)."""
        return None

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; returns the names applied."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def get_or_set_meta(self, key: str, value: str) -> str:
        """The stored value for ``key``, storing ``value`` first if there is none."""
