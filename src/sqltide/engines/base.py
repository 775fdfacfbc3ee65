"""The one interface for running SQL on a warehouse.

An :class:`Engine` is a configured warehouse; an :class:`EngineConnection` is one connection to
it. Workers run statements on connections (one per statement, or a session's own), stream each
result as Arrow record batches and can interrupt a running statement from another thread.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .transpile import split_dialect, translator_for


@dataclass(frozen=True, slots=True)
class ColumnMeta:
    """One result column, as the Data API's ColumnMetadata describes it."""

    name: str
    type_name: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type_name": self.type_name,
            "nullable": self.nullable,
            "precision": self.precision,
            "scale": self.scale,
            "length": self.length,
        }


@dataclass(slots=True)
class ExecResult:
    """What one executed statement gives back.

    ``batches`` streams the rows when ``has_result_set`` is true; it must be consumed (or
    closed) before the next statement runs on the same connection.
    """

    has_result_set: bool
    columns: list[ColumnMeta] = field(default_factory=list)
    schema: pa.Schema | None = None
    batches: Iterator[pa.RecordBatch] | None = None
    rows_affected: int | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """What a principal's grant lets its SQL do on a warehouse (``sqltide.grants``).

    ``read_only``: each statement runs in a read-only transaction, and statements that could
    end that transaction (``COMMIT``, ``ROLLBACK``, ``BEGIN``...) are refused before they run.
    ``db_role``: the database role statements and catalog calls run as (PostgreSQL), so the
    database's own privileges and row-level security apply.
    """

    read_only: bool = False
    db_role: str | None = None

    @classmethod
    def of(cls, access: str | None, db_role: str | None) -> Access:
        """From what a statement recorded (``access`` None: recorded before grants)."""
        return cls(read_only=access == "read_only", db_role=db_role)


#: No restriction: the warehouse URL's own user, reading and writing (admin keys).
FULL_ACCESS = Access()


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    schema: str
    type: str
    database: str | None = None


class EngineConnection(abc.ABC):
    """One connection to a warehouse; used from one thread at a time, except :meth:`interrupt`."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        """Run one statement whose named parameters are written ``:name``."""

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stop the statement running now, from any thread; it raises a cancelled error."""

    def hold_session(self, keep_alive_seconds: float) -> None:  # noqa: B027 - optional hook
        """This connection carries a sqltide session's statements, which may be idle up to
        ``keep_alive_seconds`` apart. A connection that is a database session already
        (DuckDB, PostgreSQL) needs nothing; the Redshift Data API opens a session of its own
        so that temporary tables and settings carry over between statements."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Engine(abc.ABC):
    """A warehouse sqltide runs statements on."""

    #: Scheme of the URLs this engine serves (``duckdb``).
    scheme: str = ""
    #: True when only one process may open this warehouse (an embedded DuckDB file): that
    #: process alone claims the warehouse's statements.
    exclusive: bool = False
    #: sqlglot's name for the SQL this engine runs (``duckdb``, ``postgres``): what a source
    #: dialect (``?dialect=redshift`` on the URL, see ``transpile.py``) is translated to.
    sql_dialect: str = ""

    def __init__(self, name: str, url: str):
        self.name = name
        #: The URL without sqltide's ``dialect`` parameter (what the driver sees).
        self.url, self.source_dialect = split_dialect(url, name)
        #: Translates each statement from the source dialect; None: statements run as written.
        self.translator = translator_for(self.source_dialect, self.sql_dialect, name)

    @abc.abstractmethod
    def open(self) -> None:
        """Connect (or open the file); raises :class:`~sqltide.errors.ConfigError` on failure."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def connect(self, access: Access = FULL_ACCESS) -> EngineConnection:
        """A new connection for one statement or one session, limited to ``access``.

        An engine that cannot honour ``access`` (a database role on a warehouse without
        roles) raises ``EngineError`` (``permission_denied``) rather than run unrestricted.
        """

    # Catalog calls take the caller's access too: on a warehouse with roles they run as the
    # caller's role, so they list only what that role may see.
    @abc.abstractmethod
    def list_databases(self, *, access: Access = FULL_ACCESS) -> list[str]: ...

    @abc.abstractmethod
    def list_schemas(
        self, database: str | None, pattern: str | None, *, access: Access = FULL_ACCESS
    ) -> list[str]: ...

    @abc.abstractmethod
    def list_tables(
        self,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
        *,
        access: Access = FULL_ACCESS,
    ) -> list[TableInfo]: ...

    @abc.abstractmethod
    def describe_table(
        self, database: str | None, schema: str, table: str, *, access: Access = FULL_ACCESS
    ) -> list[ColumnMeta]: ...
