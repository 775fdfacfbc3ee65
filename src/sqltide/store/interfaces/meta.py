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
