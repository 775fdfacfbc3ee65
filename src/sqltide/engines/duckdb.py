"""DuckDB, the embedded default warehouse (``duckdb:///path.db`` or ``duckdb:///:memory:``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import ConfigError, EngineError
from ..files import private_dir, tighten
from ..urls import path_of
from .base import (
    FULL_ACCESS,
    Access,
    ColumnMeta,
    Engine,
    EngineConnection,
    ExecResult,
    TableInfo,
)
from .params import code_only, rewrite_parameters
from .transpile import Translator

# DuckDB raises one exception class per kind of error; these are the SQLSTATEs PostgreSQL
# would give for the same mistakes, so clients can branch on one code across warehouses.
_SQLSTATE = {
    "ParserException": ("42601", "syntax_error"),
    "CatalogException": ("42P01", "undefined_object"),
    "BinderException": ("42703", "undefined_column"),
    "ConversionException": ("22P02", "invalid_value"),
    "OutOfRangeException": ("22003", "out_of_range"),
    "ConstraintException": ("23000", "constraint_violation"),
    "InterruptException": ("57014", "cancelled"),
    "OutOfMemoryException": ("53200", "out_of_memory"),
    "IOException": ("58030", "io_error"),
    "TransactionException": ("25000", "transaction_error"),
    "InvalidInputException": ("22023", "invalid_input"),
    "NotImplementedException": ("0A000", "not_supported"),
    "PermissionException": ("42501", "permission_denied"),
    "DependencyException": ("2BP01", "dependency_error"),
}
# The same kinds as they prefix a message ("Conversion Error: ..."), for errors that reach us
# as a plain OSError from the Arrow stream rather than as a DuckDB exception.
_KIND_OF_PREFIX = {
    "Parser": "ParserException",
    "Catalog": "CatalogException",
    "Binder": "BinderException",
    "Conversion": "ConversionException",
    "Out of Range": "OutOfRangeException",
    "Constraint": "ConstraintException",
    "INTERRUPT": "InterruptException",
    "Out of Memory": "OutOfMemoryException",
    "IO": "IOException",
    "TransactionContext": "TransactionException",
    "Invalid Input": "InvalidInputException",
    "Not implemented": "NotImplementedException",
    "Permission": "PermissionException",
    "Dependency": "DependencyException",
}
_PREFIX = re.compile(r"([A-Za-z ]+?) Error: ")
#: DuckDB's answer to SET / RESET / PRAGMA x=... once sqltide has locked the configuration.
_LOCKED = re.compile(r'Cannot change configuration option "([^"]+)" - the configuration has been')
#: What to add to DuckDB's permission errors, so the reader knows who can change what.
_PERMISSION_HINTS = {
    "file system operations are disabled": (
        "sqltide lets SQL read and write files only under the folders the operator lists in "
        "SQLTIDE_WAREHOUSE_ALLOWED_DIRS"
    ),
    "external extensions is disabled": (
        "the operator can load extensions at start-up with SQLTIDE_WAREHOUSE_EXTENSIONS"
    ),
}
_RESULT_TYPES = {"SELECT", "EXPLAIN", "PRAGMA", "CALL", "RELATION"}
#: Statements whose result depends on what they hold: ``EXECUTE`` runs a prepared query or
#: DML; ``PIVOT`` (a "MULTI" statement) answers rows, ``CREATE TABLE ... AS PIVOT`` does not.
_MAYBE_RESULT_TYPES = {"EXECUTE", "MULTI"}


def _is_result_set(description: Any) -> bool:
    """Rows, rather than DuckDB's one-column ``Count`` (rows touched) or ``Success`` answer."""
    if not description:
        return False
    return not (len(description) == 1 and description[0][0] in ("Count", "Success"))


_DML_TYPES = {"INSERT", "UPDATE", "DELETE", "MERGE_INTO"}
_RETURNING = re.compile(r"\breturning\b", re.IGNORECASE)
_CARET = re.compile(r"LINE (\d+): ([^\n]*)\n( *)\^")
# DuckDB counts "\r\n", a lone "\r" and "\n" each as one line break.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ELLIPSIS = "..."
_EXPLAIN = "EXPLAIN\n"


def _position(message: str, sql: str) -> int | None:
    """1-based character position of DuckDB's caret in ``sql``, if the message has one.

    DuckDB shows the error's line (at most about 60 columns either side of the error, cut
    with "...") and pads the caret by the *display width* of what precedes it: wide
    characters count two, combining marks and control characters (tabs) none, a grapheme
    cluster (an emoji sequence) as its first character. The shown window is found in the real
    line and walked cluster by cluster to turn that width back into a character offset.
    """
    matches = list(_CARET.finditer(message))
    if not matches:
        return None
    m = matches[-1]  # DuckDB appends the context last
    line_no, shown = int(m.group(1)), m.group(2)
    width = len(m.group(3)) - len(f"LINE {line_no}: ")
    starts = [0] + [b.end() for b in _LINE_BREAK.finditer(sql)]
    if not 0 < line_no <= len(starts):
        return None
    line_start = starts[line_no - 1]
    brk = _LINE_BREAK.search(sql, line_start)
    line = sql[line_start : brk.start() if brk else len(sql)]

    def cut_end(window: str) -> str:
        return window[: -len(_ELLIPSIS)] if window.endswith(_ELLIPSIS) else window

    if line.startswith(cut_end(shown)):
        return line_start + _index_at_width(line, 0, width) + 1
    if shown.startswith(_ELLIPSIS) and width >= len(_ELLIPSIS):
        window = cut_end(shown[len(_ELLIPSIS) :])
        idx = line.find(window, 1) if window else -1
        if idx >= 0:
            return line_start + _index_at_width(line, idx, width - len(_ELLIPSIS)) + 1
    return None


def _index_at_width(line: str, start: int, width: int) -> int:
    """The index of the grapheme cluster of ``line`` shown ``width`` columns after ``start``."""
    i, w, n = start, 0, len(line)
    while i < n and w < width:
        w += _char_width(line[i])
        i = _next_cluster(line, i)
    return i


def _char_width(c: str) -> int:
    if unicodedata.category(c) in ("Cc", "Cf", "Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _next_cluster(line: str, i: int) -> int:
    j, n = i + 1, len(line)
    while j < n:
        c = line[j]
        if c == "\u200d":  # zero-width joiner: the next character joins the cluster
            j += 2
        elif (
            unicodedata.category(c) in ("Mn", "Me", "Mc")
            or "\ufe00" <= c <= "\ufe0f"  # variation selectors
            or "\U0001f3fb" <= c <= "\U0001f3ff"  # skin tone modifiers
            or "\U000e0020" <= c <= "\U000e007f"  # tag characters
        ):
            j += 1
        else:
            break
    return min(j, n)


def map_error(exc: BaseException, sql: str = "", position: int | None = None) -> EngineError:
    """A DuckDB exception as an :class:`EngineError` with SQLSTATE, code and position.

    Errors DuckDB raised while an Arrow stream was being read arrive as a plain ``OSError``
    whose message still starts with the kind ("Conversion Error: ..."); the kind is read from
    there.
    """
    text = str(exc)
    kind = type(exc).__name__
    if kind not in _SQLSTATE and (p := _PREFIX.match(text)):
        kind = _KIND_OF_PREFIX.get(p.group(1), kind)
    sqlstate, code = _SQLSTATE.get(kind, ("XX000", "sql_error"))
    message = text.split("\n\nLINE ", 1)[0].strip()
    if code == "cancelled":
        message = "statement was cancelled"
    if locked := _LOCKED.search(text):
        sqlstate, code = _SQLSTATE["PermissionException"]
        message = (
            f"setting {locked.group(1)!r} cannot be changed: sqltide locks the configuration "
            "of its DuckDB warehouses (SET, RESET and setting PRAGMAs); the operator sets them"
        )
    elif code == "permission_denied":
        hints = [h for needle, h in _PERMISSION_HINTS.items() if needle in message]
        if hints:
            message = f"{message} ({hints[0]})"
    if position is None:
        position = _position(text, sql)
    return EngineError(message, sqlstate=sqlstate, position=position, code=code)


def _literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    """An extension name as ``LOAD`` takes it (settings only accept plain names)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ConfigError(f"not a DuckDB extension name: {name!r}")
    return name


def _column_meta(name: str, duck_type: Any, arrow_type: pa.DataType) -> ColumnMeta:
    precision = scale = None
    if pa.types.is_decimal(arrow_type):
        precision, scale = arrow_type.precision, arrow_type.scale
    return ColumnMeta(name=name, type_name=str(duck_type), precision=precision, scale=scale)


class DuckDBConnection(EngineConnection):
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        batch_rows: int,
        wal: str | None = None,
        translator: Translator | None = None,
    ):
        self._con = con
        self._batch_rows = batch_rows
        #: The warehouse's source dialect (``?dialect=``): statements are translated first.
        self._translator = translator
        self._lock = threading.Lock()
        #: The warehouse's write-ahead log: DuckDB makes it anew (with the umask's mode) on
        #: the first write after each checkpoint, so it is made owner-only after writes.
        self._wal = wal

    def _private_wal(self) -> None:
        if self._wal is not None:
            tighten(self._wal, warn=False)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        if self._translator is not None:
            return self._translator.run(sql, params, self._statement)
        return self._statement(sql, params)

    def _statement(self, sql: str, params: Mapping[str, Any] | None) -> ExecResult:
        """Run one statement written in DuckDB's SQL (subclasses check it here)."""
        # ":name" and "$name" have the same length, so DuckDB's error positions in the
        # rewritten text are positions in the caller's text too.
        text = rewrite_parameters(sql, lambda name: f"${name}") if params is not None else sql
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error as exc:
            raise map_error(exc, sql) from exc
        if len(statements) != 1:
            raise EngineError(
                f"expected exactly one SQL statement, got {len(statements)}; "
                "send several as a batch",
                sqlstate="42601",
                code="multiple_statements",
            )
        kind = statements[0].type.name
        args = dict(params) if params else None
        returning = kind in _DML_TYPES and _RETURNING.search(code_only(sql)) is not None
        if kind in _RESULT_TYPES or returning:
            return self._query(text, args, sql, probe=kind == "SELECT" or returning)
        try:
            return self._execute(kind, text, args, sql)
        finally:
            self._private_wal()

    def _execute(self, kind: str, text: str, args: dict[str, Any] | None, sql: str) -> ExecResult:
        try:
            cur = self._con.execute(text, args)
            if kind in _MAYBE_RESULT_TYPES and _is_result_set(cur.description):
                # EXECUTE of a prepared query, PIVOT (several statements inside): rows.
                return self._executed(cur, sql)
            rows = None
            # DML, CREATE TABLE AS and COPY answer one "Count" row: the rows they touched.
            if cur.description and cur.description[0][0] == "Count":
                row = cur.fetchone()
                rows = int(row[0]) if row else (0 if kind in _DML_TYPES else None)
            return ExecResult(has_result_set=False, rows_affected=rows)
        except duckdb.Error as exc:
            raise map_error(exc, sql) from exc

    def _executed(self, cur: duckdb.DuckDBPyConnection, sql: str) -> ExecResult:
        """The result set of a statement already run with ``execute``."""
        try:
            with warnings.catch_warnings():  # "makes an extra copy": there is no other way here
                warnings.simplefilter("ignore")
                reader = cur.to_arrow_reader(self._batch_rows)
            if reader is None:
                return ExecResult(has_result_set=False)
            schema = reader.schema
            columns = [
                _column_meta(d[0], d[1], schema.field(i).type)
                for i, d in enumerate(cur.description or ())
            ]
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            raise map_error(exc, sql) from exc
        return ExecResult(
            has_result_set=True, columns=columns, schema=schema, batches=self._stream(reader, sql)
        )

    def _query(self, text: str, args: dict[str, Any] | None, sql: str, probe: bool) -> ExecResult:
        try:
            rel = self._con.sql(text, params=args)
        except duckdb.Error as exc:
            # The relation API binds without keeping where in the text the binder failed;
            # EXPLAIN (which plans but never runs) reports the same error with its place.
            position = self._probe_position(exc, text, args) if probe else None
            raise map_error(exc, sql, position) from exc
        try:
            if rel is None:  # e.g. a PRAGMA that returns nothing
                return ExecResult(has_result_set=False)
            reader = rel.to_arrow_reader(self._batch_rows)
            schema = reader.schema
            columns = [
                _column_meta(name, dtype, schema.field(i).type)
                for i, (name, dtype) in enumerate(zip(rel.columns, rel.dtypes, strict=True))
            ]
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            raise map_error(exc, sql) from exc
        return ExecResult(
            has_result_set=True,
            columns=columns,
            schema=schema,
            batches=self._stream(reader, sql),
        )

    def _probe_position(
        self, exc: duckdb.Error, text: str, args: dict[str, Any] | None
    ) -> int | None:
        if _CARET.search(str(exc)) or isinstance(exc, duckdb.InterruptException):
            return None
        probe = _EXPLAIN + text
        try:
            self._con.execute(probe, args)
        except duckdb.Error as again:
            if type(again) is type(exc):
                pos = _position(str(again), probe)
                if pos is not None and pos > len(_EXPLAIN):
                    return pos - len(_EXPLAIN)
        return None

    def _stream(self, reader: pa.RecordBatchReader, sql: str) -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            # DuckDB's errors while the stream is read come through Arrow as a plain OSError.
            raise map_error(exc, sql) from exc
        finally:
            reader.close()
            self._private_wal()  # INSERT ... RETURNING commits as its stream ends

    def begin(self) -> None:
        self._run("BEGIN TRANSACTION")

    def commit(self) -> None:
        try:
            self._run("COMMIT")
        finally:
            self._private_wal()

    def rollback(self) -> None:
        # Nothing to roll back is fine (a failed statement may already have ended it).
        with contextlib.suppress(duckdb.TransactionException):
            self._con.execute("ROLLBACK")

    def _run(self, sql: str) -> None:
        try:
            self._con.execute(sql)
        except duckdb.Error as exc:
            raise map_error(exc, sql) from exc

    def interrupt(self) -> None:
        self._con.interrupt()

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()


class DuckDBEngine(Engine):
    """A DuckDB database file, opened for writing by this process alone.

    SQL runs sandboxed: DuckDB's access to files, the network and extensions is off except for
    the folders in ``allowed_dirs`` (and DuckDB's own database, WAL and spill files), the
    ``extensions`` loaded at open, and then the configuration is locked, so no statement can
    turn any of it back on (``SET``, ``RESET`` and setting ``PRAGMA`` statements fail with
    ``permission_denied``). Without this, any key could ``read_text()`` the state database or
    the admin key's file and ``COPY ... TO`` anywhere the server's user can write.
    """

    scheme = "duckdb"
    exclusive = True
    sql_dialect = "duckdb"

    def __init__(
        self,
        name: str,
        url: str,
        batch_rows: int = 16_384,
        *,
        allowed_dirs: tuple[str, ...] = (),
        extensions: tuple[str, ...] = (),
    ):
        super().__init__(name, url)  # drops ?dialect=: use self.url from here on
        self.path = path_of(self.url)
        self.batch_rows = batch_rows
        #: Absolute folders SQL may read and write files in (checked by the runtime to hold
        #: none of sqltide's own files).
        self.allowed_dirs = allowed_dirs
        #: Extensions (already installed, or built in) loaded before the configuration locks.
        self.extensions = extensions
        self._root: duckdb.DuckDBPyConnection | None = None
        self._spill_dir: str | None = None

    def confine(self, allowed_dirs: tuple[str, ...], extensions: tuple[str, ...]) -> None:
        """Set the folders SQL may use and the extensions to load, before :meth:`open`."""
        self.allowed_dirs = allowed_dirs
        self.extensions = extensions

    @property
    def _wal(self) -> str | None:
        return None if self.path == ":memory:" else f"{self.path}.wal"

    def open(self) -> None:
        config: dict[str, Any] = {
            "threads": max(1, os.cpu_count() or 1),
            # Never let SQL read Python objects by variable name (DuckDB's
            # replacement scans would find e.g. an Arrow table in a worker's frame).
            "python_enable_replacements": False,
        }
        if self.path == ":memory:":
            # DuckDB would spill to (and let SQL write in) "./.tmp" under whatever folder the
            # server was started from; a private folder of its own instead.
            self._spill_dir = tempfile.mkdtemp(prefix="sqltide-duckdb-")
            config["temp_directory"] = self._spill_dir
        else:
            parent = Path(self.path).parent
            if not parent.is_dir():
                private_dir(parent)
            # DuckDB spills to "<file>.tmp/" with the umask's modes; it uses (and keeps) a
            # folder that exists, so one made owner-only first keeps spilled rows private.
            private_dir(f"{self.path}.tmp")
        existed = self.path != ":memory:" and os.path.exists(self.path)
        try:
            self._root = duckdb.connect(self.path, config=config)
        except duckdb.Error as exc:
            self._remove_spill_dir()
            raise ConfigError(
                f"cannot open DuckDB warehouse {self.name!r} at {self.path}: {exc}. "
                "A DuckDB file can be open for writing in one process only; is another "
                "sqltide (or DuckDB) process using it?"
            ) from exc
        if self.path != ":memory:":
            # DuckDB refuses an empty file, so it makes the file (umask's mode): tighten now.
            tighten(self.path, warn=existed)
            tighten(f"{self.path}.wal")
        try:
            self._sandbox(self._root)
        except BaseException:
            self.close()
            raise

    def _sandbox(self, root: duckdb.DuckDBPyConnection) -> None:
        """Load the operator's extensions, then shut files and settings off for good."""
        for ext in self.extensions:
            try:
                root.execute(f"LOAD {_identifier(ext)}")
            except duckdb.Error as exc:
                raise ConfigError(
                    f"cannot load DuckDB extension {ext!r} for warehouse {self.name!r} "
                    f"(SQLTIDE_WAREHOUSE_EXTENSIONS): {exc}. sqltide never installs "
                    f"extensions; install it first as the user sqltide runs as, e.g. "
                    f"python -c \"import duckdb; duckdb.install_extension('{ext}')\""
                ) from exc
        dirs = ", ".join(_literal(d.rstrip("/") + "/") for d in self.allowed_dirs)
        # allowed_directories can only be set once the database runs, not in connect().
        for sql in (
            f"SET allowed_directories = [{dirs}]",
            "SET enable_external_access = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET lock_configuration = true",  # last: from here on no SET / RESET works
        ):
            try:
                root.execute(sql)
            except duckdb.Error as exc:
                raise ConfigError(
                    f"cannot sandbox DuckDB warehouse {self.name!r} ({sql}): {exc}"
                ) from exc

    def close(self) -> None:
        if self._root is not None:
            self._root.close()
            self._root = None
            if self.path != ":memory:":
                with contextlib.suppress(OSError):  # kept if DuckDB left something in it
                    os.rmdir(f"{self.path}.tmp")
        self._remove_spill_dir()

    def _remove_spill_dir(self) -> None:
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None

    @property
    def root(self) -> duckdb.DuckDBPyConnection:
        if self._root is None:
            raise ConfigError(f"warehouse {self.name!r} is not open")
        return self._root

    def connect(self, access: Access = FULL_ACCESS) -> DuckDBConnection:
        if access != FULL_ACCESS:  # a read-only grant (see duckdb_access.py)
            from .duckdb_access import granted_connection

            return granted_connection(
                self.root.cursor(), self.batch_rows, self._wal, access, self.translator
            )
        return DuckDBConnection(self.root.cursor(), self.batch_rows, self._wal, self.translator)

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cur = self.root.cursor()
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise map_error(exc, sql) from exc
        finally:
            cur.close()

    # DuckDB has no roles: every caller granted the warehouse sees the same catalog.
    def list_databases(self, *, access: Access = FULL_ACCESS) -> list[str]:
        rows = self._query(
            "SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY 1", []
        )
        return [r[0] for r in rows]

    def _default_db(self, database: str | None) -> str:
        return database or self._query("SELECT current_database()", [])[0][0]

    def list_schemas(
        self, database: str | None, pattern: str | None, *, access: Access = FULL_ACCESS
    ) -> list[str]:
        rows = self._query(
            "SELECT schema_name FROM information_schema.schemata "
            "WHERE catalog_name = ? AND schema_name LIKE ? ORDER BY 1",
            [self._default_db(database), pattern or "%"],
        )
        return [r[0] for r in rows]

    def list_tables(
        self,
        database: str | None,
        schema_pattern: str | None,
        table_pattern: str | None,
        *,
        access: Access = FULL_ACCESS,
    ) -> list[TableInfo]:
        db = self._default_db(database)
        rows = self._query(
            "SELECT table_name, table_schema, table_type FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_schema LIKE ? AND table_name LIKE ? "
            "ORDER BY table_schema, table_name",
            [db, schema_pattern or "%", table_pattern or "%"],
        )
        kinds = {"BASE TABLE": "TABLE", "VIEW": "VIEW", "LOCAL TEMPORARY": "LOCAL TEMPORARY"}
        return [
            TableInfo(name=r[0], schema=r[1], type=kinds.get(r[2], r[2]), database=db) for r in rows
        ]

    def describe_table(
        self, database: str | None, schema: str, table: str, *, access: Access = FULL_ACCESS
    ) -> list[ColumnMeta]:
        rows = self._query(
            "SELECT column_name, data_type, is_nullable, numeric_precision, numeric_scale, "
            "character_maximum_length FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [self._default_db(database), schema, table],
        )
        return [
            ColumnMeta(
                name=r[0],
                type_name=r[1],
                nullable=r[2] == "YES",
                precision=r[3] if r[1].startswith("DECIMAL") else None,
                scale=r[4] if r[1].startswith("DECIMAL") else None,
                length=r[5],
            )
            for r in rows
        ]
