"""The embedded state store: one SQLite file (``sqlite:///path.db``), WAL mode.

SQLite has one writer at a time. Every write here is one ``BEGIN IMMEDIATE`` transaction taken
under a process-wide lock, so threads of this process queue in Python instead of spinning on
SQLITE_BUSY; other processes (the CLI's ``keys`` commands) wait on the busy timeout.

The state-transition logic is shared with PostgreSQL (``sql/``); this module holds what only
SQLite has: connections, the one-writer transaction, migrations and the few hooks where the
single writer makes things simpler (an upsert looks before it writes; nothing needs locking).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from .. import errors
from ..files import private_file, tighten
from ..urls import path_of
from .migrations import migration_files
from .sql import SqlStore
from .sql.base import Dialect, Params, T, Tx

#: SQLite takes the shared SQL text as written (but for list parameters, expanded).
SQLITE = Dialect()


class SQLiteStore(SqlStore):
    dialect = "sqlite"
    sql_dialect = SQLITE
    reads_never_wait = True

    def __init__(self, url: str):
        self.url = url
        self.path = path_of(url)
        if self.path == ":memory:":
            # One shared in-memory database for every thread of this process.
            self.path = f"file:sqltide-{id(self)}?mode=memory&cache=shared"
        else:
            # Made owner-only before SQLite opens it: SQLite gives its -wal and -shm files
            # the database file's mode.
            private_file(self.path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._keeper = self._connect()  # keeps a shared in-memory database alive
        if not self.path.startswith("file:"):
            for journal in ("-wal", "-shm"):  # left looser by an older sqltide
                tighten(self.path + journal)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path,
                uri=self.path.startswith("file:"),
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            raise errors.ConfigError(f"cannot open SQLite store {self.path}: {exc}") from exc
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        with self._all_lock:
            self._all.append(con)
        return con

    @property
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con
        if getattr(self._local, "holding", False):  # taken by hold_writer() on this thread
            yield from self._transaction(con)
            return
        with self._write_lock:
            yield from self._transaction(con)

    @staticmethod
    def _transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def hold_writer(self) -> bool:
        """Take the writer now if no thread of this process has it (see ``MetaStore``).

        The holding thread's connection never checkpoints the WAL on commit (the other
        threads' connections do, as SQLite does by default), so a write made on an event
        loop is a short append, never a copy of the WAL into the database with its fsyncs.
        """
        if not self._write_lock.acquire(blocking=False):
            return False
        con = self._con
        if not getattr(self._local, "no_checkpoint", False):
            con.execute("PRAGMA wal_autocheckpoint=0")
            self._local.no_checkpoint = True
        self._local.holding = True
        return True

    def release_writer(self) -> None:
        self._local.holding = False
        self._write_lock.release()

    def close(self) -> None:
        with self._all_lock:
            for con in self._all:
                with suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()

    # -- the hooks of the shared logic ---------------------------------------------------------
    def _tx(self, name: str, fn: Callable[[Tx], T]) -> T:
        with self._write() as con:
            return fn(Tx(con, SQLITE))

    def _rows(self, name: str, sql: str, params: Params = ()) -> list[Any]:
        return self._con.execute(*SQLITE.bind(sql, params)).fetchall()

    def _upsert(self, tx: Tx, sql: str, row: Mapping[str, Any], exists: str) -> bool:
        # The single writer makes "look, then write" one step.
        new = tx.one(exists, row) is None
        tx.execute(sql, row)
        return new

    def _update_each(self, tx: Tx, sql: str, params: Sequence[Sequence[Any]]) -> list[bool]:
        cur = tx.cursor.cursor()
        return [cur.execute(sql, values).rowcount > 0 for values in params]

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._write() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in con.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files(self.dialect):
                if version in done:
                    continue
                for stmt in _split_sql(sql):
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))", (version, name)
                )
                applied.append(name)
        return applied


def _split_sql(script: str) -> Iterator[str]:
    """Statements of a migration file (they hold no semicolons inside literals)."""
    for part in script.split(";"):
        lines = [ln for ln in part.splitlines() if not ln.strip().startswith("--")]
        if "\n".join(lines).strip():
            yield part
