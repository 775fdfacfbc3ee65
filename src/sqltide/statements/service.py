"""Statements: submit, describe (with long-poll), fetch results, cancel, list.

The service records; it never runs SQL. Workers claim what it records (see ``sqltide.worker``),
so a statement accepted here survives any crash that comes after the answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import errors
from ..cursors import ListCursors
from ..grants import Grants
from ..settings import Settings
from ..storage import Storage
from ..store import (
    SessionFilter,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
    Store,
)
from ..store.wakeups import Notifier
from .requests import StatementRequest, validate
from .results import ResultManifest, ResultReader, TokenSigner

T = TypeVar("T")


def result_key(statement_id: str) -> str:
    """Storage prefix of a statement's (or sub-statement's) result files."""
    parent, _, idx = statement_id.partition(":")
    return f"results/{parent}/{idx or 0}"


@dataclass(frozen=True, slots=True)
class StatementView:
    """A statement with its sub-statements, as describe shows it."""

    record: StatementRecord
    sub_statements: tuple[StatementRecord, ...] = ()
    retention_seconds: float = 0.0


class StatementService:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        notifier: Notifier,
        settings: Settings,
        warehouses: Collection[str],
        secret: bytes,
        clock: Callable[[], float] = time.time,
        grants: Grants | None = None,
    ):
        self.store = store
        self.storage = storage
        self.notifier = notifier
        self.settings = settings
        self.warehouses = list(warehouses)
        #: Who may use which warehouse (none but admins, unless granted or given by default).
        self.grants = grants or Grants(store, self.warehouses)
        self.clock = clock
        self._secret = secret
        self.signer = TokenSigner(secret)
        #: Signed list cursors (the one signer for every list: see cursors.py).
        self.cursors = ListCursors(secret)

    # -- submit --------------------------------------------------------------------------------
    def submit(
        self, principal: str, req: StatementRequest, *, is_admin: bool = False
    ) -> tuple[StatementView, bool]:
        """Record a statement or batch; returns ``(view, created)``.

        The principal must be granted the warehouse (an admin key, ``is_admin``, may use all);
        the grant's access and database role are recorded on the statement, and the worker
        runs it with them.
        """
        s = self.settings
        validate(
            req,
            max_sql_bytes=s.max_sql_bytes,
            max_batch=s.max_batch_statements if req.is_batch else 1,
            max_keep_alive=s.max_session_keep_alive_seconds,
            max_parameter_bytes=s.max_parameter_bytes,
            max_parameters_bytes=s.max_parameters_bytes,
        )
        warehouse = req.warehouse or "default"
        # An ungranted warehouse answers like an unknown one (its existence is not leaked).
        grant = self.grants.require(principal, warehouse, is_admin=is_admin)
        # To the microsecond, as the API shows it, so that filtering on a shown created_at
        # (created_after is inclusive, created_before exclusive) gives the expected answer.
        now = round(self.clock(), 6)
        sid = str(uuid.uuid4())
        new_session = None
        session_id = req.session_id
        if req.session_keep_alive_seconds:
            session_id = str(uuid.uuid4())
            new_session = SessionRecord(
                id=session_id,
                principal=principal,
                warehouse=warehouse,
                keep_alive_seconds=req.session_keep_alive_seconds,
                created_at=now,
                expires_at=now + req.session_keep_alive_seconds,
                origin=req.origin,
            )
        fingerprint = req.fingerprint()
        record = StatementRecord(
            id=sid,
            principal=principal,
            warehouse=warehouse,
            status=StatementStatus.SUBMITTED,
            query_string=";\n".join(req.sqls) if req.is_batch else req.sqls[0],
            query_strings=list(req.sqls) if req.is_batch else None,
            created_at=now,
            updated_at=now,
            parameters=req.parameters,
            statement_name=req.statement_name,
            client_token=req.client_token,
            request_hash=fingerprint,
            with_event=req.with_event,
            is_batch=req.is_batch,
            batch_mode=req.batch_mode if req.is_batch else None,
            session_id=session_id,
            access=grant.access,
            db_role=grant.db_role,
            origin=req.origin,
        )
        subs = [
            StatementRecord(
                id=f"{sid}:{n}",
                parent_id=sid,
                idx=n,
                principal=principal,
                warehouse=warehouse,
                status=StatementStatus.SUBMITTED,
                query_string=sql,
                created_at=now,
                updated_at=now,
                access=grant.access,
                db_role=grant.db_role,
                origin=req.origin,
            )
            for n, sql in enumerate(req.sqls, start=1)
            if req.is_batch
        ]
        stored, created = self.store.create_statement(
            record,
            subs,
            new_session=new_session,
            max_active=s.max_active_statements_per_principal,
            now=now,
        )
        if not created:
            if stored.request_hash != fingerprint:
                raise errors.IdempotencyConflict(
                    "client_token was already used for a different request",
                    details={"client_token": req.client_token, "statement_id": stored.id},
                )
            return self._view(stored), False
        self.notifier.publish("work", warehouse)
        return StatementView(record, tuple(subs), s.result_retention_seconds), True

    # -- read ----------------------------------------------------------------------------------
    def _get(self, principal: str, statement_id: str) -> StatementRecord:
        rec = self.store.get_statement(statement_id) if _plausible_id(statement_id) else None
        # Another principal's statement answers exactly like an unknown one.
        if rec is None or rec.principal != principal:
            raise errors.StatementNotFound(details={"id": statement_id})
        return rec

    def _view(self, rec: StatementRecord) -> StatementView:
        subs = tuple(self.store.get_sub_statements(rec.id)) if rec.is_batch else ()
        return StatementView(rec, subs, self.settings.result_retention_seconds)

    def describe(self, principal: str, statement_id: str) -> StatementView:
        return self._view(self._get(principal, statement_id))

    async def describe_wait(self, principal: str, statement_id: str, wait: float) -> StatementView:
        """Describe, waiting up to ``wait`` seconds for the statement to end."""
        wait = min(max(wait, 0.0), self.settings.max_wait_seconds)
        parent = statement_id.partition(":")[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self.notifier.waiter("statement", parent) as waiter:
            while True:
                view = await self._read(self.describe, principal, statement_id)
                remaining = deadline - loop.time()
                if view.record.status.is_terminal or remaining <= 0:
                    return view
                await waiter.wait(remaining)
                waiter.reset()

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """A point read: on the loop when the store's reads never wait, else in a thread
        (writes always go to a thread: ADR 0006)."""
        if self.store.reads_never_wait:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    def list_sessions(
        self,
        principal: str,
        *,
        states: frozenset[str] = frozenset(("AVAILABLE", "BUSY")),
        session_id: str | None = None,
        warehouse: str | None = None,
        max_results: int = 100,
        next_token: str | None = None,
    ) -> tuple[list[tuple[SessionRecord, str | None]], str | None]:
        """The principal's sessions in ``states``, newest first, each with the id of the
        statement running in it; and the token of the next page."""
        after = self.cursors.decode(principal, "sessions", next_token) if next_token else None
        rows = self.store.list_sessions(
            SessionFilter(
                principal=principal,
                now=self.clock(),
                session_id=session_id,
                states=states,
                warehouse=warehouse,
                limit=max_results + 1,
                after=after,
            )
        )
        token = None
        if len(rows) > max_results:
            rows = rows[:max_results]
            last = rows[-1][0]
            token = self.cursors.encode(principal, "sessions", last.created_at, last.id)
        return rows, token

    def list(
        self,
        principal: str,
        *,
        status: StatementStatus | None = None,
        name_prefix: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        max_results: int = 100,
        next_token: str | None = None,
    ) -> tuple[list[StatementRecord], str | None]:
        after = self.cursors.decode(principal, "statements", next_token) if next_token else None
        rows = self.store.list_statements(
            StatementFilter(
                principal=principal,
                status=status,
                name_prefix=name_prefix,
                created_after=created_after,
                created_before=created_before,
                limit=max_results + 1,
                after=after,
            )
        )
        token = None
        if len(rows) > max_results:
            rows = rows[:max_results]
            token = self.cursors.encode(principal, "statements", rows[-1].created_at, rows[-1].id)
        return rows, token

    # -- results -------------------------------------------------------------------------------
    def statement(self, principal: str, statement_id: str) -> StatementRecord:
        """One of the principal's statements or sub-statements, without its sub-statements
        (a point read; someone else's answers exactly like an unknown id)."""
        return self._get(principal, statement_id)

    def result_reader(self, principal: str, statement_id: str) -> ResultReader:
        return self.reader_of(self._get(principal, statement_id))

    def reader_of(self, rec: StatementRecord) -> ResultReader:
        """The result of a statement already read (:meth:`statement`), or why there is none."""
        if rec.is_batch:
            raise errors.InvalidRequest(
                "a batch's results are fetched per sub-statement: use "
                f"{rec.id}:1 to {rec.id}:{len(rec.query_strings or [])}",
                details={"id": rec.id},
            )
        if not rec.status.is_terminal:
            raise errors.StatementNotFinished(
                f"statement is {rec.status.value}; wait for it to finish",
                details={"id": rec.id, "status": rec.status.value},
            )
        if rec.status is not StatementStatus.FINISHED:
            raise errors.StatementFailed(
                f"statement is {rec.status.value}; it has no result",
                details={"id": rec.id, "status": rec.status.value, "error": rec.error},
            )
        if not rec.has_result_set:
            raise errors.InvalidRequest(
                "statement has no result set (it was not a query)", details={"id": rec.id}
            )
        if rec.result_expired or rec.result_meta is None:
            raise errors.ResultExpired(details={"id": rec.id})
        manifest = ResultManifest.from_json(rec.result_meta)
        return ResultReader(self.storage, manifest, self.signer, rec.id)

    # -- cancel --------------------------------------------------------------------------------
    def cancel(self, principal: str, statement_id: str) -> StatementRecord:
        rec = self._get(principal, statement_id)
        if rec.parent_id is not None:
            raise errors.InvalidRequest(
                "cancel the batch, not one of its sub-statements",
                details={"id": statement_id, "batch_id": rec.parent_id},
            )
        updated = self.store.request_cancel(rec.id, self.clock())
        self.notifier.publish("cancel", rec.id)
        self.notifier.publish("statement", rec.id)
        return updated

    async def cancel_wait(
        self, principal: str, statement_id: str, wait: float = 5.0
    ) -> StatementView:
        # A write and a wake-up (a NOTIFY on PostgreSQL): never on the event loop.
        await asyncio.to_thread(self.cancel, principal, statement_id)
        return await self.describe_wait(principal, statement_id, wait)


def _plausible_id(statement_id: str) -> bool:
    parent, _, idx = statement_id.partition(":")
    try:
        uuid.UUID(parent)
    except ValueError:
        return False
    return idx == "" or idx.isdigit()
