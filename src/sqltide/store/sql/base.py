"""The hook interface the shared store logic runs on, and the record⇄row codecs.

The state-transition logic of :class:`~sqltide.store.base.Store` is written once, in one mixin
per concept (``meta.py``, ``keys.py``, ``sessions.py``, ``statements.py``, ``events.py``,
``rules.py``, ``topics.py``, ``deliveries.py``, ``executions.py``), each implementing the
interface of the same name in ``store/interfaces/``. Each mixin only asks its host for what
:class:`SqlHooks` declares: run a function in one transaction (:meth:`SqlHooks._tx`), read rows
(:meth:`SqlHooks._rows`), and a few small hooks where the dialects really differ (the
"was this upsert an insert" test, a batch of updates whose row counts matter, the advisory lock
that stands in for SQLite's single writer). The store classes in ``sqlite.py`` and
``postgres.py`` compose the mixins and implement the hooks.

The SQL text is shared too (see docs/adr/0004-one-store-two-dialects.md): written for SQLite's
driver (``:name`` or ``?`` placeholders, a list bound as ``col IN (:name)``) and translated once
per text by the :class:`Dialect` of PostgreSQL. The few phrases that differ are attributes of
the dialect (``skip_locked``, ``for_update``, ``is_distinct``, ``starts_with``).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from ..event_records import DeliveryRecord, EventRecord, RuleRecord, TopicRecord
from ..records import ACTIVE, ApiKeyRecord, GrantRecord, SessionRecord, StatementRecord

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]

#: The unfinished statuses as a SQL list (constants, so written into the text).
ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE))


class Cursor(Protocol):
    """What both drivers' cursors offer the shared logic."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Dialect:
    """The phrases of SQL that differ between the stores, and how a shared text is bound.

    The base is SQLite's: its driver takes the shared text as written, but for list
    parameters, which it cannot bind.
    """

    name = "sqlite"
    #: Appended to a SELECT that picks rows to change while others may be picking too.
    skip_locked = ""
    #: Appended to a SELECT whose rows this transaction reads, then changes.
    for_update = ""
    #: A comparison that treats NULL as a value.
    is_distinct = "IS NOT"
    #: "``statement_name`` starts with ``:prefix``", case-sensitive, without LIKE wildcards
    #: (``:plen`` is the prefix's length).
    starts_with = "substr(statement_name, 1, :plen) = :prefix"

    #: Whether :meth:`Tx.batch` collects its statements and sends them together (a store
    #: with round trips); SQLite runs each at once.
    batches = False

    def run_batch(
        self, cursor: Any, items: Sequence[tuple[str, Params, BatchResult]], commit: bool
    ) -> None:
        """Run the statements of a :meth:`Tx.batch` (already bound) together, in order, and
        fill in their results; commit too when ``commit``."""
        raise NotImplementedError

    def own_cursor(self, cursor: Any) -> Any:
        """Something to execute one statement on whose result stays its own while more
        statements run (SQLite's connection makes a new cursor for every ``execute``)."""
        return cursor

    def bind(self, sql: str, params: Params) -> tuple[str, Params]:
        """The driver's text and parameters for a shared text: ``IN (:ids)`` with a list
        ``ids`` becomes ``IN (:ids_0, :ids_1, …)``."""
        if (
            "IN (:" not in sql  # the cheap test first: most statements bind no list
            or not isinstance(params, Mapping)
            or not any(isinstance(v, list | tuple) for v in params.values())
        ):
            return sql, params
        bound = dict(params)
        for name, value in params.items():
            if isinstance(value, list | tuple):
                marks = ", ".join(f":{name}_{i}" for i in range(len(value)))
                sql = sql.replace(f"IN (:{name})", f"IN ({marks or 'NULL'})")
                bound.update({f"{name}_{i}": v for i, v in enumerate(value)})
        return sql, bound


class BatchResult:
    """The result of a statement sent in a :meth:`Tx.batch`, readable once the batch ran."""

    __slots__ = ("rowcount", "rows")

    def __init__(self) -> None:
        self.rowcount = -1
        self.rows: list[Any] = []

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class Tx:
    """One transaction's cursor speaking the shared SQL text.

    ``retried`` is True when this is not the first attempt of the call: a store that retries a
    transaction whose commit answer was lost (PostgreSQL) sets it, so a write that is not
    naturally idempotent looks for its own earlier effect before reporting failure.
    """

    __slots__ = ("_batch", "cursor", "dialect", "retried")

    def __init__(self, cursor: Any, dialect: Dialect, retried: bool = False) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.retried = retried
        self._batch: list[tuple[str, Params, BatchResult]] | None = None

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        text, bound = self.dialect.bind(sql, params)
        cur: Cursor = self.cursor.execute(text, bound)
        return cur

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        text, _ = self.dialect.bind(sql, ())
        self.cursor.executemany(text, rows)

    @contextmanager
    def batch(self, *, commit: bool = False) -> Iterator[None]:
        """Send the statements of the block together, at its end (PostgreSQL: in one round
        trip, not one each): use :meth:`send` inside it, and read the results after it. With
        ``commit`` the transaction commits with them, whatever they did, so each statement
        must be right whatever the ones before it did, and nothing may follow the block."""
        if not self.dialect.batches:
            yield  # each statement ran when sent; the transaction commits as always
            return
        items: list[tuple[str, Params, BatchResult]] = []
        self._batch = items
        try:
            yield
        finally:
            self._batch = None
        self.dialect.run_batch(self.cursor, items, commit)

    def send(self, sql: str, params: Params = ()) -> Cursor | BatchResult:
        """Execute ``sql`` on a cursor of its own, whose result stays readable after more
        statements (in a :meth:`batch`: once the block has ended)."""
        text, bound = self.dialect.bind(sql, params)
        if self._batch is not None:
            result = BatchResult()
            self._batch.append((text, bound, result))
            return result
        cur: Cursor = self.dialect.own_cursor(self.cursor).execute(text, bound)
        return cur

    def one(self, sql: str, params: Params = ()) -> Any:
        """The first row, or None."""
        return self.execute(sql, params).fetchone()


class SqlHooks(abc.ABC):
    """What the shared store logic needs from a store; the rest it writes itself."""

    #: The SQL phrases of this store's dialect.
    sql_dialect: Dialect
    #: How long results are kept (a statement status event says when they expire).
    result_retention_seconds: float

    @abc.abstractmethod
    def _tx(self, name: str, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one transaction (named ``name`` in logs), committed when it returns."""

    @abc.abstractmethod
    def _rows(self, name: str, sql: str, params: Params = ()) -> list[Any]:
        """The rows of one read."""

    @abc.abstractmethod
    def _upsert(self, tx: Tx, sql: str, row: Mapping[str, Any], exists: str) -> bool:
        """Run ``sql`` (an ``INSERT … ON CONFLICT … DO UPDATE`` of ``row``); True when it
        inserted. ``exists`` selects the row by its key, for a dialect that must look first."""

    @abc.abstractmethod
    def _update_each(self, tx: Tx, sql: str, params: Sequence[Sequence[Any]]) -> list[bool]:
        """Run the update ``sql`` once per parameter tuple, in order; whether each changed a
        row."""

    def _serialize_submits(self, tx: Tx, principal: str) -> None:
        """Make "count the principal's unfinished statements, then insert" one step (a
        single-writer store is serialized already)."""
        return None

    def _is_client_token_conflict(self, exc: Exception) -> bool:
        """True when ``exc`` is the unique client-token index refusing a concurrent twin (a
        single-writer store checks first and never gets there)."""
        return False


# -- codecs: records ⇄ rows, the same for both dialects ---------------------------------------
def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def statement_row(rec: StatementRecord) -> dict[str, Any]:
    row = rec.to_row()
    for name in StatementRecord._BOOL:
        row[name] = bool(row[name])  # SQLite stores True as 1; PostgreSQL wants a boolean
    return row


def statement(row: Any) -> StatementRecord:
    return StatementRecord.from_row(dict(row))


def session(row: Any) -> SessionRecord:
    return SessionRecord.from_row(dict(row))


def api_key(row: Any) -> ApiKeyRecord:
    data = dict(row)
    data["is_admin"] = bool(data["is_admin"])
    return ApiKeyRecord(**data)


def grant(row: Any) -> GrantRecord:
    return GrantRecord(**dict(row))


def rule(row: Any) -> RuleRecord:
    data = dict(row)
    data["event_pattern"] = loads_or_none(data["event_pattern"])
    data["targets"] = json.loads(data["targets"])
    return RuleRecord(**data)


def topic(row: Any) -> TopicRecord:
    data = dict(row)
    data["subscriptions"] = json.loads(data["subscriptions"])
    return TopicRecord(**data)


def delivery_row(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "principal": d.principal,
        "event_id": d.event_id,
        "rule_name": d.rule_name,
        "target_id": d.target_id,
        "target": dumps(d.target),
        "payload": dumps(d.payload),
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_error": dumps_or_none(d.last_error),
        "delivered_at": d.delivered_at,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        principal=row["principal"],
        event_id=row["event_id"],
        rule_name=row["rule_name"],
        target_id=row["target_id"],
        target=json.loads(row["target"]),
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_error=loads_or_none(row["last_error"]),
        delivered_at=row["delivered_at"],
    )


# -- writes several concepts share (the outbox) ------------------------------------------------
_EVENT_COLUMNS = (
    "id",
    "principal",
    "source",
    "detail_type",
    "time",
    "body",
    "depth",
    "created_at",
    "routed_at",
)
_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)
_event_values = itemgetter(*_EVENT_COLUMNS)
_DELIVERY_COLUMNS = tuple(f.name for f in fields(DeliveryRecord))
_INSERT_DELIVERIES = (
    f"INSERT INTO deliveries ({', '.join(_DELIVERY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + k for k in _DELIVERY_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)


def insert_events(tx: Tx, events: Sequence[EventRecord]) -> None:
    """Write events to the archive and outbox; an id already stored is left alone."""
    if events:
        # Bound by position: a third faster than by name for a large batch (a minute's firings).
        tx.executemany(_INSERT_EVENTS, [_event_values(e.to_row()) for e in events])


def insert_deliveries(tx: Tx, deliveries: Sequence[DeliveryRecord]) -> None:
    """Write deliveries; an id already stored is left alone (routing twice is harmless)."""
    if deliveries:
        tx.executemany(_INSERT_DELIVERIES, [delivery_row(d) for d in deliveries])
