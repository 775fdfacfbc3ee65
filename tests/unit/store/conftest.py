"""The store contract suite: what every state store must do, on SQLite and PostgreSQL alike.

One file per kind of state (``test_statements.py``, ``test_sessions.py``, …), the same names as
its interface in ``store/interfaces/`` and its logic in ``store/sql/``. Every test that takes
``store`` runs on each store under test (``store_url`` in ``tests/conftest.py``;
``SQLTIDE_TEST_STORES=sqlite`` for SQLite alone), with explicit ``now`` values. PostgreSQL
stores are fresh databases cloned from a template migrated once per session.

This module holds the fixtures and the records and steps the files share; it is a package's
``conftest`` (``from .conftest import …``) so that its name never shadows the root one.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgtools
from conftest import STORES
from sqltide.store import (
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OperationStatus,
    OperationType,
    OperationUpdate,
    SessionRecord,
    StatementRecord,
    StatementStatus,
    Store,
    store_from_url,
)
from sqltide.store.event_records import (
    DeliveryRecord,
    EventRecord,
    RuleRecord,
    TopicRecord,
    envelope,
)
from sqltide.store.postgres import PostgresStore
from sqltide.urls import path_of

T0 = 1_000_000.0
LEASE = 30.0
S = StatementStatus
#: The principal of the event-bus tests, and another one.
P = "arn:aws:iam::123456789012:user/etl"
OTHER = "arn:aws:iam::123456789012:user/someone-else"

#: For the few tests that need PostgreSQL whatever the parameter (it retries lost commits; the
#: two schemas are compared).
requires_postgres = pytest.mark.skipif(
    "postgres" not in STORES, reason="SQLTIDE_TEST_STORES leaves PostgreSQL out"
)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store of each kind under test."""
    st = store_from_url(store_url)
    applied = st.migrate()
    if isinstance(st, PostgresStore):
        assert applied == []  # the clone is migrated already
    yield st
    st.close()


@pytest.fixture(params=STORES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no schema at all) of each kind under test."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "s.db")
        return
    with pgtools.fresh_database() as url:
        yield url


@pytest.fixture
def pg_store(pg_template: str) -> Iterator[PostgresStore]:
    """Only the PostgreSQL store retries lost connections: a PostgreSQL store alone."""
    with pgtools.fresh_database(pg_template) as url:
        st = PostgresStore(url)
        yield st
        st.close()


# -- statements and sessions ---------------------------------------------------------------------
def stmt(
    *,
    principal: str = "alice",
    warehouse: str = "default",
    created_at: float = T0,
    client_token: str | None = None,
    session_id: str | None = None,
    is_batch: bool = False,
    sql: str = "SELECT 1",
) -> StatementRecord:
    return StatementRecord(
        id=str(uuid.uuid4()),
        principal=principal,
        warehouse=warehouse,
        status=S.SUBMITTED,
        query_string=sql,
        created_at=created_at,
        updated_at=created_at,
        client_token=client_token,
        session_id=session_id,
        is_batch=is_batch,
    )


def subs_of(parent: StatementRecord, n: int) -> list[StatementRecord]:
    return [
        StatementRecord(
            id=f"{parent.id}:{i}",
            parent_id=parent.id,
            idx=i,
            principal=parent.principal,
            warehouse=parent.warehouse,
            status=S.SUBMITTED,
            query_string=f"SELECT {i}",
            created_at=parent.created_at,
            updated_at=parent.created_at,
        )
        for i in range(1, n + 1)
    ]


def session(
    *,
    principal: str = "alice",
    warehouse: str = "default",
    keep_alive: int = 60,
    created_at: float = T0,
) -> SessionRecord:
    return SessionRecord(
        id=str(uuid.uuid4()),
        principal=principal,
        warehouse=warehouse,
        keep_alive_seconds=keep_alive,
        created_at=created_at,
        expires_at=created_at + keep_alive,
    )


def add(store: Store, rec: StatementRecord, **kw: object) -> StatementRecord:
    stored, created = store.create_statement(rec, now=rec.created_at, **kw)  # type: ignore[arg-type]
    assert created
    return stored


def status(store: Store, sid: str) -> StatementStatus:
    rec = store.get_statement(sid)
    assert rec is not None
    return rec.status


def claim_one(store: Store, owner: str = "w1", now: float = T0) -> StatementRecord:
    claimed = store.claim_statements(["default"], owner, 1, LEASE, now)
    assert len(claimed) == 1
    return claimed[0]


def run_to_started(store: Store, rec: StatementRecord, owner: str = "w1", now: float = T0) -> None:
    claimed = store.claim_statements([rec.warehouse], owner, 100, LEASE, now)
    assert rec.id in {c.id for c in claimed}
    assert store.start_statement(rec.id, owner, now)


def finish(store: Store, sid: str, owner: str = "w1", now: float = T0) -> bool:
    return store.finish_statement(
        sid, owner, {"status": S.FINISHED, "ended_at": now, "updated_at": now}, now
    )


# -- events, rules, topics, deliveries --------------------------------------------------------
def pattern_rule(name: str = "on-finish", **kw: Any) -> RuleRecord:
    base: dict[str, Any] = {
        "principal": P,
        "name": name,
        "state": "ENABLED",
        "targets": [
            {"id": "t1", "kind": "http", "url": "https://example.test/hook", "input": None},
            {"id": "t2", "kind": "topic", "topic": "alerts", "retry_policy": {"attempts": 3}},
        ],
        "created_at": T0,
        "updated_at": T0,
        "description": "statement ended",
        "event_pattern": {
            "source": ["aws.redshift-data"],
            "detail": {"state": ["FINISHED", "FAILED"], "rows": [{"numeric": [">", 0]}]},
        },
    }
    base.update(kw)
    return RuleRecord(**base)


def schedule_rule(name: str = "every-5", **kw: Any) -> RuleRecord:
    base: dict[str, Any] = {
        "principal": P,
        "name": name,
        "state": "ENABLED",
        "targets": [{"id": "run", "kind": "statement", "sql": "CALL run_elt_process()"}],
        "created_at": T0,
        "updated_at": T0,
        "schedule": "rate(5 minutes)",
        "timezone": "Europe/Berlin",
        "missed_policy": "latest",
        "missed_window_seconds": 3600.0,
    }
    base.update(kw)
    return RuleRecord(**base)


def event(event_id: str, *, at: float = T0, principal: str = P) -> EventRecord:
    return EventRecord(
        id=event_id,
        principal=principal,
        source="aws.events",
        detail_type="Scheduled Event",
        time=at,
        body=envelope(
            source="aws.events",
            detail_type="Scheduled Event",
            detail={},
            time=at,
            event_id=event_id,
        ),
        created_at=at,
    )


def delivery(
    delivery_id: str, *, due: float = T0, created: float = T0, **kw: Any
) -> DeliveryRecord:
    base: dict[str, Any] = {
        "id": delivery_id,
        "principal": P,
        "event_id": "e1",
        "rule_name": "on-finish",
        "target_id": "t1",
        "target": {"id": "t1", "kind": "http", "url": "https://example.test/hook"},
        "payload": {"detail": {"state": "FINISHED"}, "list": [1, 2.5, None, "x"]},
        "status": "PENDING",
        "attempts": 0,
        "next_attempt_at": due,
        "created_at": created,
        "updated_at": created,
    }
    base.update(kw)
    return DeliveryRecord(**base)


def topic(name: str = "alerts", **kw: Any) -> TopicRecord:
    base: dict[str, Any] = {
        "principal": P,
        "name": name,
        "subscriptions": [
            {"protocol": "http", "endpoint": "https://example.test/a", "filter_policy": None},
            {
                "protocol": "queue",
                "endpoint": "ops",
                "filter_policy": {"state": ["FAILED"]},
            },
        ],
        "created_at": T0,
        "updated_at": T0,
        "display_name": "Alerts",
    }
    base.update(kw)
    return TopicRecord(**base)


def event_ids(store: Store, principal: str = P) -> list[str]:
    return [e.id for e in store.list_events(principal, limit=1000)]


def ids(records: list[DeliveryRecord]) -> list[str]:
    return [d.id for d in records]


def stored(store: Store, delivery_id: str) -> DeliveryRecord:
    got = store.get_delivery(delivery_id)
    assert got is not None
    return got


# -- workflow executions -----------------------------------------------------------------------
#: The workflow of the execution tests (the ones "loaded"), and one that is not.
WF = "etl"
OTHER_WF = "elsewhere"


def execution(
    name: str = "run-1",
    *,
    workflow: str = WF,
    principal: str = "alice",
    created_at: float = T0,
    timeout_at: float | None = None,
    parent: ExecutionRecord | None = None,
    parent_operation_id: str | None = None,
) -> ExecutionRecord:
    return ExecutionRecord(
        id=str(uuid.uuid4()),
        workflow=workflow,
        name=name,
        principal=principal,
        status=ExecutionStatus.RUNNING,
        created_at=created_at,
        updated_at=created_at,
        input='{"sql": "CALL run_elt_process()"}',
        timeout_at=timeout_at,
        parent_id=parent.id if parent else None,
        parent_operation_id=parent_operation_id,
    )


def start(store: Store, name: str = "run-1", **kw: Any) -> ExecutionRecord:
    rec, created = store.start_execution(execution(name, **kw))
    assert created
    return rec


def leased(
    store: Store, name: str = "run-1", *, owner: str = "w1", now: float = T0, **kw: Any
) -> ExecutionRecord:
    """A started execution, claimed by ``owner`` at ``now``."""
    rec = start(store, name, created_at=kw.pop("created_at", now), **kw)
    claimed = store.claim_executions([rec.workflow], owner, 100, LEASE, now)
    assert rec.id in [c.id for c in claimed]
    return next(c for c in claimed if c.id == rec.id)


def operation(
    ex: ExecutionRecord,
    op_id: str = "1",
    *,
    type: OperationType = OperationType.STEP,
    status: OperationStatus = OperationStatus.SUCCEEDED,
    **kw: Any,
) -> OperationRecord:
    sub_type = {OperationType.CALLBACK: "Callback", OperationType.WAIT: "Wait"}.get(type, "Step")
    return OperationRecord(
        execution_id=ex.id, id=op_id, type=type, sub_type=sub_type, status=status, **kw
    )


def callback(ex: ExecutionRecord, callback_id: str, op_id: str = "1", **kw: Any) -> OperationUpdate:
    """A CALLBACK operation waiting for its completion (created at ``T0``)."""
    op = operation(
        ex,
        op_id,
        type=OperationType.CALLBACK,
        status=OperationStatus.STARTED,
        callback_id=callback_id,
        started_at=kw.pop("started_at", T0),
        **kw,
    )
    return OperationUpdate(op, "callback_created")


def got(store: Store, execution_id: str) -> ExecutionRecord:
    rec = store.get_execution(execution_id)
    assert rec is not None
    return rec


def events_of(store: Store, execution_id: str) -> list[str]:
    return [h.event for h in store.get_history(execution_id)]


# -- behind the store's back ---------------------------------------------------------------------
def behind_the_store(store_url: str, sql: str) -> None:
    """Run plain SQL (no parameters) on the store's database, as another path would."""
    if store_url.startswith("sqlite"):
        con = sqlite3.connect(path_of(store_url))
        with con:
            con.execute(sql)
        con.close()
        return
    with psycopg.connect(store_url, autocommit=True) as con:
        con.execute(sql.encode())
