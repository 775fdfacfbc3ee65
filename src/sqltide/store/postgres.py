"""The shared state store: PostgreSQL (``postgresql://user:password@host:port/dbname``).

Many processes (API servers, workers) share one database. Each method is one transaction on a
pooled connection (``psycopg_pool``), at READ COMMITTED; where SQLite relies on having one
writer, this store says what it serializes on:

- claiming locks the rows it takes with ``FOR UPDATE SKIP LOCKED``, so two workers never get
  the same statement and never wait on each other;
- a statement for an existing session locks the session row (``SELECT … FOR UPDATE``) before
  checking that the session is open and idle;
- the active-statement limit takes a per-principal advisory lock, so two concurrent submits
  cannot both see room for one more;
- the client-token check relies on the unique index: the loser of a race catches the unique
  violation and returns the winner;
- migrations run under a transaction-scoped advisory lock, so processes starting together
  apply each migration once.

Lost connections (the server restarting, a connection killed) are retried with backoff and
jitter for up to :attr:`PostgresStore.retry_seconds`, then the driver's error is raised. Reads
and idempotent writes simply run again. A retry must not turn a commit whose answer was lost
into a failure: ``create_statement``, ``insert_api_key``, ``revoke_api_key``,
``start_statement``, ``finish_statement``, ``request_cancel``, ``upsert_rule``,
``upsert_topic``, ``upsert_grant``, ``record_firing``, ``route_event``, ``finish_delivery``,
``redrive_delivery`` and the execution transitions (``start_execution``, ``checkpoint``,
``suspend_execution``, ``finish_execution``, ``complete_callback``, ``stop_execution``) look
for their own first attempt's effect and report success; ``delete_rule``, ``delete_topic``
and ``delete_grant`` report success when the row is gone on a retry. Some do not: a lost
``claim_statements`` leaves its statements PICKED until their lease expires (then recovery
hands them out again; never twice), a lost ``claim_deliveries`` or ``claim_executions``
leaves its items leased until then, and a lost ``recover_statements`` (or
``recover_executions``, ``time_out_executions``) returns only what is still left to settle.

The state-transition logic is shared with SQLite (``sql/``); this module holds what only
PostgreSQL has: the pool, the retrying transaction, migrations, the SQL dialect and the hooks
that stand in for SQLite's single writer (the advisory submit lock, ``xmax`` upserts, the
client-token race settled by the unique index).
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import ClientCursor
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed

from .. import errors
from ..urls import redact_url
from .migrations import migration_files
from .pg_connect import conninfo_for
from .sql import SqlStore
from .sql.base import BatchResult, Dialect, Params, T, Tx

if TYPE_CHECKING:
    from .pg_wakeups import PostgresNotifyTransport
    from .wakeups import Notifier

__all__ = ["PostgresStore", "conninfo_for"]

logger = logging.getLogger(__name__)

Cursor = psycopg.Cursor[DictRow]

#: First key of the two-key advisory locks this store takes (per-principal submit lock).
_LOCK_CLASS = 0x5174_0001
#: Errors after which the transaction surely or possibly did not happen and may be retried.
_RETRYABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # connection lost, server shutting down, pool timeout
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)

_LIST = re.compile(r"IN \(:(\w+)\)")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class PostgresDialect(Dialect):
    """PostgreSQL's phrases, and the shared text in psycopg's placeholders."""

    name = "postgres"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"
    is_distinct = "IS DISTINCT FROM"
    starts_with = "starts_with(statement_name, :prefix)"

    def bind(self, sql: str, params: Params) -> tuple[str, Params]:
        return _translate(sql), params

    batches = True

    def run_batch(
        self, cursor: Any, items: Sequence[tuple[str, Params, BatchResult]], commit: bool
    ) -> None:
        # One query text of several statements sent by the simple query protocol: one round
        # trip for all. Each statement is a server-side prepared one (PREPARE'd by the first
        # batch that uses it on this connection), run by EXECUTE with its values bound here
        # (psycopg's client-side binding, which quotes every value): psycopg's pipeline mode
        # measured 1.7 times the client CPU, and plain statements re-planned each time 1.7
        # times the server's. With the commit, and no transaction begun yet, BEGIN and COMMIT
        # go in the text too (the connection in autocommit meanwhile).
        conn = cursor.connection
        client = ClientCursor(conn)
        prepared = _session_statements(conn, cursor)
        texts: list[str] = []
        preparing: set[str] = set()
        for text, params, _ in items:
            name, body, names = _batch_statement(text)
            if name not in prepared and name not in preparing:
                texts.append(f"PREPARE {name} AS {body}")
                preparing.add(name)
            if not isinstance(params, Mapping):
                raise TypeError("a batch statement takes named parameters")
            values = client.mogrify(", ".join(["%s"] * len(names)), [params[n] for n in names])
            texts.append(f"EXECUTE {name} ({values})" if names else f"EXECUTE {name}")
        own = commit and conn.info.transaction_status == TransactionStatus.IDLE
        if own:
            conn.autocommit = True
            texts = ["BEGIN", *texts, "COMMIT"]
        try:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute("; ".join(texts), prepare=False)
            results: list[tuple[int, list[Any]]] = []
            while True:
                results.append((cur.rowcount, cur.fetchall() if cur.description else []))
                if not cur.nextset():
                    break
        except BaseException:
            # Which PREPAREs ran is unknown now: the next batch here asks the session.
            with _BATCH_LOCK:
                _SESSION_STATEMENTS.pop(conn, None)
            if own:
                with suppress(Exception):  # the transaction the text began, failed midway
                    conn.rollback()
            raise
        finally:
            if own:
                with suppress(Exception):  # a broken connection: the pool replaces it
                    conn.autocommit = False
        prepared.update(preparing)
        results = [r for r, t in zip(results, texts, strict=True) if t.startswith("EXECUTE ")]
        for (_, _, result), (rowcount, rows) in zip(items, results, strict=True):
            result.rowcount, result.rows = rowcount, rows

    def own_cursor(self, cursor: Any) -> Any:
        return cursor.connection.cursor(row_factory=dict_row)


@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    """``:name`` → ``%(name)s``, ``?`` → ``%s``, ``IN (:list)`` → ``= ANY(%(list)s)``."""
    sql = sql.replace("%", "%%")
    sql = _LIST.sub(r"= ANY(:\1)", sql)
    sql = _NAMED.sub(r"%(\1)s", sql)
    return sql.replace("?", "%s")


POSTGRES = PostgresDialect()

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: The batch statements: query text -> (prepared name, body with $n, parameter names).
_BATCH_STATEMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {}
_BATCH_LOCK = threading.Lock()
#: The batch statements each connection's session has prepared (absent: not known, ask).
_SESSION_STATEMENTS: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _batch_statement(text: str) -> tuple[str, str, tuple[str, ...]]:
    """The prepared name, the body (``$1``… for ``%(name)s``) and the parameter names of a
    batch statement (named parameters only)."""
    found = _BATCH_STATEMENTS.get(text)
    if found is not None:
        return found
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = _PLACEHOLDER.sub(number, text)
    if re.search(r"%s", body.replace("%%", "")):
        raise ValueError("a batch statement takes named parameters only")
    with _BATCH_LOCK:
        found = _BATCH_STATEMENTS.get(text)
        if found is None:
            name = f"sqltide_batch_{len(_BATCH_STATEMENTS) + 1}"
            found = _BATCH_STATEMENTS[text] = (name, body.replace("%%", "%"), tuple(names))
    return found


def _session_statements(conn: Any, cursor: Any) -> set[str]:
    """The batch statements prepared on ``conn``'s session (asked of the server when not
    known: a new connection, or after a batch that failed)."""
    with _BATCH_LOCK:
        known = _SESSION_STATEMENTS.get(conn)
    if known is None:
        rows = cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'sqltide\\_batch\\_%'"
        ).fetchall()
        known = {r["name"] for r in rows}
        with _BATCH_LOCK:
            _SESSION_STATEMENTS[conn] = known
    return known


class PostgresStore(SqlStore):
    dialect = "postgres"
    sql_dialect = POSTGRES
    reads_never_wait = False
    #: How long a call keeps retrying after losing its connection before giving up.
    retry_seconds: float = 30.0
    #: First and longest pause between retries (exponential in between, with jitter).
    retry_initial: float = 0.05
    retry_max_delay: float = 2.0

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10):
        self.url = url
        self.safe_url = redact_url(url)
        self.conninfo = conninfo_for(url, connect_timeout=5, application_name="sqltide")
        # One plain connection first: it fails at once, with libpq's reason (refused, unknown
        # database, bad password), where the pool would retry quietly until its timeout.
        try:
            psycopg.connect(self.conninfo).close()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise errors.ConfigError(
                f"cannot connect to the PostgreSQL store at {self.safe_url}: {reason}",
                details={"url": self.safe_url},
            ) from exc
        self._pool: ConnectionPool = ConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name="sqltide-store",
            timeout=10.0,
            # Give up reconnecting soon: the next call starts a fresh attempt at once, where
            # the pool's own backoff would leave a server that is back unused for seconds.
            # _call's retry loop is what waits out an outage.
            reconnect_timeout=2.0,
        )
        try:
            self._pool.open(wait=True, timeout=10.0)
        except psycopg.Error as exc:
            self._pool.close()
            raise errors.ConfigError(
                f"cannot open connections to the PostgreSQL store at {self.safe_url}: {exc}",
                details={"url": self.safe_url},
            ) from exc

    def close(self) -> None:
        self._pool.close()

    def make_transport(self, notifier: Notifier) -> PostgresNotifyTransport:
        """A ``LISTEN/NOTIFY`` transport carrying ``notifier``'s wake-ups to other processes.

        Attach it with ``notifier.transport = store.make_transport(notifier)``; from then on
        ``notifier.publish`` reaches every process on this database, and ``notifier.close()``
        stops it (close the notifier before the store: sending uses the store's pool).
        """
        from .pg_wakeups import PostgresNotifyTransport

        return PostgresNotifyTransport(self.url, notifier, pool=self._pool)

    # -- transactions ----------------------------------------------------------------------------
    def _call(self, name: str, fn: Callable[[Cursor, bool], T]) -> T:
        """Run ``fn(cursor, retried)`` in one transaction, retrying on a lost connection.

        ``retried`` is True on every attempt after the first. A write that is not naturally
        idempotent uses it to look for its own earlier effect: the previous attempt may have
        committed and only lost its answer.
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = self.retry_initial
        attempt = 0
        while True:
            try:
                # short, so a call whose connection attempt is waiting out the pool's backoff
                # comes back here and asks again
                timeout = max(0.5, min(3.0, deadline - time.monotonic()))
                with (
                    self._pool.connection(timeout=timeout) as conn,
                    conn.cursor(row_factory=dict_row) as cur,
                ):
                    return fn(cur, attempt > 0)
            except PoolClosed:
                raise
            except _RETRYABLE as exc:
                attempt += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.error(
                        "store call %s failed after %d attempts over %.0f s: %s",
                        name,
                        attempt,
                        self.retry_seconds,
                        exc,
                    )
                    raise
                pause = min(remaining, delay * (0.5 + random.random() / 2))
                logger.warning(
                    "store call %s failed (%s: %s); retry %d in %.2f s",
                    name,
                    type(exc).__name__,
                    " ".join(str(exc).split()),
                    attempt,
                    pause,
                )
                # Throw away every idle connection that died with the one that failed, so the
                # retry does not pick up the next dead one.
                with suppress(Exception):
                    self._pool.check()
                time.sleep(pause)
                delay = min(delay * 2, self.retry_max_delay)

    # -- the hooks of the shared logic ---------------------------------------------------------
    def _tx(self, name: str, fn: Callable[[Tx], T]) -> T:
        return self._call(name, lambda cur, retried: fn(Tx(cur, POSTGRES, retried)))

    def _rows(self, name: str, sql: str, params: Params = ()) -> list[Any]:
        text, bound = POSTGRES.bind(sql, params)
        return self._call(name, lambda cur, _: cur.execute(text, bound).fetchall())

    def _upsert(self, tx: Tx, sql: str, row: Mapping[str, Any], exists: str) -> bool:
        # xmax = 0 only for a row this statement inserted (an update sets it).
        got = tx.one(sql + " RETURNING (xmax = 0) AS inserted, created_at", row)
        assert got is not None
        # Created by our own first attempt? Then the stored row carries our created_at (a
        # replace keeps the older one; callers stamp a new record's created_at with now).
        return bool(got["inserted"]) or (tx.retried and got["created_at"] == row["created_at"])

    def _update_each(self, tx: Tx, sql: str, params: Sequence[Sequence[Any]]) -> list[bool]:
        # Pipelined: the updates run one by one, in order, without a round trip each (10,000
        # firings on loopback: 0.5 s, not 3.4 s).
        cur = tx.cursor
        cur.executemany(POSTGRES.bind(sql + " RETURNING 1", ())[0], params, returning=True)
        won = []
        while True:
            won.append(cur.fetchone() is not None)
            if not cur.nextset():
                break
        return won

    def _serialize_submits(self, tx: Tx, principal: str) -> None:
        # Count and insert as one step per principal (SQLite has a single writer).
        tx.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_LOCK_CLASS, principal))

    def _is_client_token_conflict(self, exc: Exception) -> bool:
        return (
            isinstance(exc, pg_errors.UniqueViolation)
            and exc.diag.constraint_name == "statements_client_token"
        )

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        def run(cur: Cursor, _retried: bool) -> list[str]:
            applied: list[str] = []
            # Held to the end of the transaction: a second process starting now waits here,
            # then finds everything applied.
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('sqltide.migrate', 0))")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in cur.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files(self.dialect):
                if version in done:
                    continue
                cur.execute(sql.encode())  # a whole file, several statements, no parameters
                cur.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(name)
            return applied

        return self._call("migrate", run)
