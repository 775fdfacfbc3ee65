"""Grants on a DuckDB warehouse: read-only connections.

DuckDB has no users or roles: every connection of the process is the same. A ``read_only``
grant is kept by running each of the principal's statements inside
``BEGIN TRANSACTION READ ONLY`` (a write raises DuckDB's "transaction is launched in read-only
mode", reported as ``permission_denied``, SQLSTATE 42501), and by refusing before they run
the statements that would end that transaction or reach past it:

- transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``, ``ABORT``, ``END``): would end the
  read-only transaction, and the next statement would write in autocommit;
- ``CHECKPOINT`` (and ``checkpoint()``): ``FORCE CHECKPOINT`` aborts every other connection's
  transaction;
- ``ATTACH`` / ``DETACH``, ``LOAD`` / ``INSTALL``, ``VACUUM``, ``EXPORT DATABASE``,
  ``COPY FROM DATABASE``: they act on the whole database instance, not in a transaction.

A database role cannot be honoured (DuckDB has none), so a grant naming one fails its
statements with ``permission_denied`` instead of running them unrestricted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import EngineError
from .base import Access, ExecResult
from .duckdb import DuckDBConnection
from .params import code_only, rewrite_parameters
from .transpile import Translator

#: Statement kinds (``duckdb.extract_statements``) a read-only principal may not run.
_REFUSED_KINDS = {
    "TRANSACTION": "transaction control (BEGIN, COMMIT, ROLLBACK, ABORT, END)",
    "ATTACH": "ATTACH",
    "DETACH": "DETACH",
    "LOAD": "LOAD / INSTALL",
    "EXTENSION": "extension management",
    "VACUUM": "VACUUM",
    "EXPORT": "EXPORT DATABASE",
    "COPY_DATABASE": "COPY FROM DATABASE",
}
# CHECKPOINT parses as a CALL; checkpoint() and force_checkpoint() are table functions.
_CHECKPOINT = re.compile(
    r"^\s*(?:force\s+)?checkpoint\b|\b(?:force_)?checkpoint\s*\(", re.IGNORECASE
)
_READ_ONLY_MODE = "transaction is launched in read-only mode"


def permission_denied(what: str) -> EngineError:
    return EngineError(
        f"{what} is not allowed: this principal's grant on the warehouse is read_only",
        sqlstate="42501",
        code="permission_denied",
    )


def _as_permission_error(exc: EngineError) -> EngineError:
    """DuckDB's refusal to write in a read-only transaction, said as a permission error."""
    if _READ_ONLY_MODE in exc.message:
        return EngineError(
            f"{exc.message} (this principal's grant on the warehouse is read_only)",
            sqlstate="42501",
            position=exc.position,
            code="permission_denied",
        )
    return exc


def refusal(sql: str, params: Mapping[str, Any] | None) -> EngineError | None:
    """Why a read-only principal may not run ``sql`` (None: it may try)."""
    text = rewrite_parameters(sql, lambda name: f"${name}") if params is not None else sql
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error:
        return None  # the connection reports the syntax error itself
    for statement in statements:
        what = _REFUSED_KINDS.get(statement.type.name)
        if what is not None:
            return permission_denied(what)
    if _CHECKPOINT.search(code_only(sql)):
        return permission_denied("CHECKPOINT")
    return None


class ReadOnlyDuckDBConnection(DuckDBConnection):
    """A DuckDB connection whose every statement runs in a read-only transaction."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        batch_rows: int,
        wal: str | None = None,
        translator: Translator | None = None,
    ):
        super().__init__(con, batch_rows, wal, translator)
        self._in_transaction = False  # begin() opened one (a transactional batch)

    def _statement(self, sql: str, params: Mapping[str, Any] | None) -> ExecResult:
        # After any translation (?dialect=): the check sees exactly what runs.
        refused = refusal(sql, params)
        if refused is not None:
            raise refused
        own = not self._in_transaction
        if own:
            self._run("BEGIN TRANSACTION READ ONLY")
        try:
            result = super()._statement(sql, params)
        except EngineError as exc:
            if own:
                self._end(commit=False)
            raise _as_permission_error(exc) from exc
        except BaseException:
            if own:
                self._end(commit=False)
            raise
        if not own:
            return result
        if result.batches is None:
            self._end(commit=True)
        else:  # the transaction lasts as long as its result is being read
            result.batches = self._then_end(result.batches)
        return result

    def _then_end(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        read = False
        try:
            yield from batches
            read = True
        except EngineError as exc:
            raise _as_permission_error(exc) from exc
        finally:
            self._end(commit=read)

    def _end(self, *, commit: bool) -> None:
        if commit:
            self._run("COMMIT")  # nothing was written: this only ends the snapshot
        else:
            with contextlib.suppress(duckdb.Error):
                self._con.execute("ROLLBACK")

    def begin(self) -> None:
        self._run("BEGIN TRANSACTION READ ONLY")
        self._in_transaction = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._in_transaction = False

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._in_transaction = False


def granted_connection(
    con: duckdb.DuckDBPyConnection,
    batch_rows: int,
    wal: str | None,
    access: Access,
    translator: Translator | None = None,
) -> DuckDBConnection:
    """A connection limited to ``access`` (``con`` is closed if it cannot be)."""
    if access.db_role is not None:
        con.close()
        raise EngineError(
            f"the grant names database role {access.db_role!r}, but DuckDB has no roles; an "
            "operator should remove db_role from the grant (sqltide grants add ... without "
            "--db-role)",
            sqlstate="42501",
            code="permission_denied",
        )
    if access.read_only:
        return ReadOnlyDuckDBConnection(con, batch_rows, wal, translator)
    return DuckDBConnection(con, batch_rows, wal, translator)
