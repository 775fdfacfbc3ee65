"""Holding the store's one writer for a short write on an event loop (``hold_writer``)."""

from __future__ import annotations

import threading

from sqltide.store import Store

from .conftest import S, add, stmt


def test_hold_writer_takes_the_sqlite_writer_only_when_free(store: Store) -> None:
    if store.dialect != "sqlite":  # PostgreSQL has no writer to hold: writes go to a thread
        assert store.hold_writer() is False
        return
    assert store.hold_writer() is True
    try:
        # The holder writes without taking the lock again (no deadlock) ...
        rec = add(store, stmt())
        assert store.get_statement(rec.id).status is S.SUBMITTED
        # ... while another thread can neither hold the writer nor write until it is back.
        seen: list[bool] = []
        other = threading.Thread(target=lambda: seen.append(store.hold_writer()))
        other.start()
        other.join(5)
        assert seen == [False]
        wrote = threading.Event()

        def write_elsewhere() -> None:
            add(store, stmt())
            wrote.set()

        writer = threading.Thread(target=write_elsewhere)
        writer.start()
        assert not wrote.wait(0.2)  # waits for the writer
    finally:
        store.release_writer()
    assert wrote.wait(5)
    writer.join(5)
    # Given back: the next hold succeeds.
    assert store.hold_writer() is True
    store.release_writer()
