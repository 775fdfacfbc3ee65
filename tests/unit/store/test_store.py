"""The state stores (SQLite and PostgreSQL), driven directly with explicit ``now`` values.

Every behaviour test runs on both stores: they must behave the same. PostgreSQL tests each get
a fresh database cloned from a template migrated once per session (``tests/pgtools.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pgtools
from sqltide import errors
from sqltide.store import (
    ApiKeyRecord,
    GrantRecord,
    SessionRecord,
    StatementFilter,
    StatementRecord,
    StatementStatus,
    Store,
    store_from_url,
)
from sqltide.store.migrations import migration_files
from sqltide.store.notify import Notifier
from sqltide.store.postgres import PostgresStore
from sqltide.store.sqlite import SQLiteStore

STORES = ["sqlite", "postgres"]

T0 = 1_000_000.0
LEASE = 30.0
S = StatementStatus


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        st: Store = SQLiteStore("sqlite:///" + str(tmp_path / "s.db"))
        st.migrate()
        yield st
        st.close()
        return
    with pgtools.fresh_database(request.getfixturevalue("pg_template")) as url:
        st = PostgresStore(url)
        assert st.migrate() == []  # the clone is migrated already
        yield st
        st.close()


@pytest.fixture(params=STORES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no schema at all) of each kind."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "s.db")
        return
    with pgtools.fresh_database() as url:
        yield url


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


# -- migrations ----------------------------------------------------------------------------------
def _dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _applied_versions(url: str) -> list[int]:
    if _dialect(url) == "sqlite":
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            con.close()
    with psycopg.connect(url) as pcon:
        return [r[0] for r in pcon.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_migrate_is_idempotent(empty_url: str) -> None:
    dialect = _dialect(empty_url)
    st = store_from_url(empty_url)
    try:
        first = st.migrate()
        assert first == [name for _, name, _ in migration_files(dialect)]
        assert first, "there is at least one migration"
        assert st.migrate() == []
    finally:
        st.close()
    # a new store on the same database (a restart) applies nothing either
    again = store_from_url(empty_url)
    try:
        assert again.migrate() == []
        assert _applied_versions(empty_url) == [v for v, _, _ in migration_files(dialect)]
    finally:
        again.close()


def test_both_stores_have_the_same_migrations() -> None:
    assert [(v, n) for v, n, _ in migration_files("sqlite")] == [
        (v, n) for v, n, _ in migration_files("postgres")
    ]


def _schema(path: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name != 'schema_migrations' ORDER BY type, name"
        ).fetchall()
    finally:
        con.close()
    return [(t, n, " ".join(sql.split())) for t, n, sql in rows]


def test_fresh_schema_equals_all_migrations_applied(tmp_path: Path) -> None:
    st = SQLiteStore("sqlite:///" + str(tmp_path / "fresh.db"))
    st.migrate()
    st.close()
    # the same SQL run by hand, file after file, gives exactly the same schema
    con = sqlite3.connect(tmp_path / "manual.db")
    for _, _, sql in migration_files("sqlite"):
        con.executescript(sql)
    con.close()
    fresh = _schema(tmp_path / "fresh.db")
    assert fresh == _schema(tmp_path / "manual.db")
    names = {n for _, n, _ in fresh}
    assert {"statements", "sessions", "api_keys", "sqltide_meta"} <= names


def _pg_schema(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as con:
        return {
            "columns": con.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
                "column_default FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name != 'schema_migrations' ORDER BY 1, 3"
            ).fetchall(),
            "indexes": con.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' AND tablename != 'schema_migrations' ORDER BY 1, 2"
            ).fetchall(),
            "constraints": con.execute(
                "SELECT table_name, constraint_name, constraint_type "
                "FROM information_schema.table_constraints WHERE table_schema = 'public' "
                "AND table_name != 'schema_migrations' AND constraint_type != 'CHECK' "
                "ORDER BY 1, 2"
            ).fetchall(),
        }


def test_fresh_postgres_schema_equals_all_migrations_applied() -> None:
    with pgtools.fresh_database() as fresh_url, pgtools.fresh_database() as manual_url:
        st = PostgresStore(fresh_url)
        st.migrate()
        st.close()
        # the same SQL run by hand, file after file, gives exactly the same schema
        with psycopg.connect(manual_url, autocommit=True) as con:
            for _, _, sql in migration_files("postgres"):
                con.execute(sql.encode())
        fresh = _pg_schema(fresh_url)
        assert fresh == _pg_schema(manual_url)
    tables = {row[0] for row in fresh["columns"]}
    assert tables == {
        "statements",
        "sessions",
        "api_keys",
        "sqltide_meta",
        "events",
        "rules",
        "topics",
        "deliveries",
        "warehouse_grants",
    }


def test_both_stores_have_the_same_columns_and_indexes(tmp_path: Path) -> None:
    with pgtools.fresh_database() as url:
        st = PostgresStore(url)
        st.migrate()
        st.close()
        pg = _pg_schema(url)
    pg_columns = {(t, c) for t, c, *_ in pg["columns"]}
    pg_indexes = {str(n) for _, n, _ in pg["indexes"] if not str(n).endswith(("_pkey", "_key"))}
    st2 = SQLiteStore("sqlite:///" + str(tmp_path / "s.db"))
    st2.migrate()
    st2.close()
    con = sqlite3.connect(tmp_path / "s.db")
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        lite_columns = {
            (t, r[1])
            for t in tables
            if t != "schema_migrations"
            for r in con.execute(f"PRAGMA table_info({t})")
        }
        lite_indexes = {
            n
            for (n,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    finally:
        con.close()
    assert pg_columns == lite_columns
    assert pg_indexes == lite_indexes


def test_meta_keeps_the_first_value(store: Store) -> None:
    assert store.get_or_set_meta("secret", "a") == "a"
    assert store.get_or_set_meta("secret", "b") == "a"


# -- API keys -------------------------------------------------------------------------------------
def test_api_keys_insert_find_list_revoke(store: Store) -> None:
    admin = ApiKeyRecord("k1", "alice", "h1", T0, name="ci", is_admin=True)
    plain = ApiKeyRecord("k2", "bob", "h2", T0 + 1)
    store.insert_api_key(plain)
    store.insert_api_key(admin)
    assert store.find_api_key("h1") == admin
    assert store.find_api_key("nope") is None
    assert store.list_api_keys() == [admin, plain]  # oldest first
    assert store.revoke_api_key("k2", T0 + 5)
    assert not store.revoke_api_key("k2", T0 + 6)  # once
    assert not store.revoke_api_key("unknown", T0 + 6)
    got = store.find_api_key("h2")
    assert got is not None and got.revoked_at == T0 + 5


# -- warehouse grants ------------------------------------------------------------------------------
def test_grants_upsert_get_list_delete(store: Store) -> None:
    ro = GrantRecord("bob", "pg", "read_only", T0, db_role="bob_role")
    assert store.upsert_grant(GrantRecord("alice", "default", "read_write", T0))
    assert store.upsert_grant(ro)
    assert store.upsert_grant(GrantRecord("bob", "default", "read_write", T0 + 1))
    assert store.get_grant("bob", "pg") == ro
    assert store.get_grant("bob", "nope") is None
    assert store.get_grant("carol", "pg") is None
    assert [(g.principal, g.warehouse) for g in store.list_grants()] == [
        ("alice", "default"),
        ("bob", "default"),
        ("bob", "pg"),
    ]
    assert [g.warehouse for g in store.list_grants("bob")] == ["default", "pg"]
    assert store.list_grants("carol") == []
    # changing a grant keeps when it was first made
    assert not store.upsert_grant(GrantRecord("bob", "pg", "read_write", T0 + 9))
    assert store.get_grant("bob", "pg") == GrantRecord("bob", "pg", "read_write", T0)
    assert store.delete_grant("bob", "pg")
    assert not store.delete_grant("bob", "pg")
    assert store.get_grant("bob", "pg") is None
    assert [g.warehouse for g in store.list_grants("bob")] == ["default"]


def test_a_grant_s_access_is_checked_by_the_schema(store: Store) -> None:
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        store.upsert_grant(GrantRecord("bob", "pg", "superuser", T0))


def test_statements_keep_the_access_they_were_granted(store: Store) -> None:
    rec = stmt()
    rec.access, rec.db_role = "read_only", "bob_role"
    add(store, rec)
    got = store.get_statement(rec.id)
    assert got is not None and (got.access, got.db_role) == ("read_only", "bob_role")
    plain = add(store, stmt())
    got = store.get_statement(plain.id)
    assert got is not None and (got.access, got.db_role) == (None, None)


# -- listing --------------------------------------------------------------------------------------
def test_list_statements_filters_and_pages(store: Store) -> None:
    recs = []
    for i in range(5):
        rec = stmt(created_at=T0 + i // 2)  # pairs share a creation time
        rec.statement_name = f"etl_{i}" if i % 2 else f"ETL_{i}"
        recs.append(add(store, rec))
    parent = stmt(created_at=T0 + 9, is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 2))
    add(store, stmt(principal="bob"))
    newest_first = sorted([*recs, parent], key=lambda r: (r.created_at, r.id), reverse=True)

    everything = store.list_statements(StatementFilter(principal="alice"))
    assert [r.id for r in everything] == [r.id for r in newest_first]  # no sub-statements
    # keyset pages of two walk the same order, ties on created_at broken by id
    seen: list[str] = []
    after = None
    while True:
        page = store.list_statements(StatementFilter(principal="alice", limit=2, after=after))
        if not page:
            break
        seen += [r.id for r in page]
        after = (page[-1].created_at, page[-1].id)
    assert seen == [r.id for r in newest_first]

    by_prefix = store.list_statements(StatementFilter(principal="alice", name_prefix="etl_"))
    assert sorted(r.statement_name or "" for r in by_prefix) == ["etl_1", "etl_3"]  # case counts
    assert store.list_statements(StatementFilter(principal="alice", name_prefix="etl%")) == []
    window = store.list_statements(
        StatementFilter(principal="alice", created_after=T0 + 1, created_before=T0 + 2)
    )
    assert {r.id for r in window} == {recs[2].id, recs[3].id}
    run_to_started(store, recs[0])
    started = store.list_statements(StatementFilter(principal="alice", status=S.STARTED))
    assert [r.id for r in started] == [recs[0].id]


# -- create ---------------------------------------------------------------------------------------
def test_create_and_read_back(store: Store) -> None:
    parent = stmt(is_batch=True)
    parent.query_strings = ["SELECT 1", "SELECT 2"]
    parent.parameters = {"x": 1}
    add(store, parent, sub_statements=subs_of(parent, 2))
    got = store.get_statement(parent.id)
    assert got == parent
    assert [s.idx for s in store.get_sub_statements(parent.id)] == [1, 2]


def test_client_token_returns_the_existing_statement(store: Store) -> None:
    first = add(store, stmt(client_token="tok"))
    again, created = store.create_statement(stmt(client_token="tok"), now=T0 + 1)
    assert not created
    assert again.id == first.id
    # the token is per principal
    other, created = store.create_statement(stmt(principal="bob", client_token="tok"), now=T0)
    assert created and other.id != first.id


def test_max_active_gives_too_many_requests(store: Store) -> None:
    a = add(store, stmt(), max_active=2)
    add(store, stmt(), max_active=2)
    with pytest.raises(errors.TooManyRequests) as info:
        store.create_statement(stmt(), max_active=2, now=T0)
    assert info.value.details == {"active": 2, "limit": 2}
    # another principal has its own count
    add(store, stmt(principal="bob"), max_active=2)
    # an ended statement no longer counts
    run_to_started(store, a)
    assert finish(store, a.id)
    add(store, stmt(), max_active=2)


# -- claiming -------------------------------------------------------------------------------------
def test_claim_moves_submitted_to_picked_with_lease(store: Store) -> None:
    rec = add(store, stmt())
    (claimed,) = store.claim_statements(["default"], "w1", 10, LEASE, T0 + 5)
    assert claimed.id == rec.id
    assert claimed.status is S.PICKED
    assert claimed.lease_owner == "w1"
    assert claimed.lease_expires_at == T0 + 5 + LEASE
    assert claimed.attempts == 1
    stored = store.get_statement(rec.id)
    assert stored is not None and stored.status is S.PICKED and stored.lease_owner == "w1"
    assert store.claim_statements(["default"], "w2", 10, LEASE, T0 + 5) == []


def test_claim_respects_limit_warehouses_and_age(store: Store) -> None:
    recs = [add(store, stmt(created_at=T0 + i)) for i in (3, 1, 2, 0)]
    other = add(store, stmt(warehouse="other", created_at=T0 - 10))
    assert store.claim_statements(["default"], "w", 0, LEASE, T0) == []
    assert store.claim_statements([], "w", 5, LEASE, T0) == []

    first = store.claim_statements(["default"], "w", 2, LEASE, T0)
    assert [c.created_at for c in first] == [T0, T0 + 1]
    rest = store.claim_statements(["default"], "w", 10, LEASE, T0)
    assert [c.created_at for c in rest] == [T0 + 2, T0 + 3]
    assert {c.id for c in first + rest} == {r.id for r in recs}
    assert status(store, other.id) is S.SUBMITTED

    (got,) = store.claim_statements(["nowhere", "other"], "w", 10, LEASE, T0)
    assert got.id == other.id


def test_claim_ignores_sub_statements(store: Store) -> None:
    parent = stmt(is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 3))
    claimed = store.claim_statements(["default"], "w", 10, LEASE, T0)
    assert [c.id for c in claimed] == [parent.id]
    assert {s.status for s in store.get_sub_statements(parent.id)} == {S.SUBMITTED}


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-stores"])
def test_concurrent_claims_claim_each_statement_exactly_once(
    store: Store, tmp_path: Path, shared: bool
) -> None:
    ids = {add(store, stmt(created_at=T0 + i)).id for i in range(200)}
    # two stores on one file stand for two processes sharing the state
    stores = [store, store if shared else type(store)(store.url)]
    got: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def claimer(owner: str, st: Store) -> None:
        try:
            barrier.wait(5)
            while True:
                claimed = st.claim_statements(["default"], owner, 3, LEASE, T0)
                if not claimed:
                    return
                got[owner[0]].extend(c.id for c in claimed)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=claimer, args=(f"{o}{n}", stores[i]))
        for i, o in enumerate("ab")
        for n in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if not shared:
        stores[1].close()
    assert not failures
    all_claims = got["a"] + got["b"]
    assert sorted(all_claims) == sorted(ids)  # every one exactly once
    owners = {r.lease_owner for r in (store.get_statement(i) for i in ids) if r}
    assert owners <= {"a0", "a1", "b0", "b1"}
    assert all(status(store, i) is S.PICKED for i in ids)


def test_session_statements_are_claimed_only_by_the_session_owner(store: Store) -> None:
    sess = session()
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    run_to_started(store, first, owner="w1")
    assert finish(store, first.id, owner="w1", now=T0 + 1)
    stored_session = store.get_session(sess.id)
    assert stored_session is not None and stored_session.owner == "w1"

    second = add(store, stmt(session_id=sess.id, created_at=T0 + 2))
    assert store.claim_statements(["default"], "w2", 10, LEASE, T0 + 2) == []
    (got,) = store.claim_statements(["default"], "w1", 10, LEASE, T0 + 2)
    assert got.id == second.id


# -- start / finish -------------------------------------------------------------------------------
def test_start_statement(store: Store) -> None:
    rec = add(store, stmt())
    assert not store.start_statement(rec.id, "w1", T0)  # not claimed yet
    claim_one(store, "w1")
    assert not store.start_statement(rec.id, "w2", T0)  # someone else's lease
    assert store.start_statement(rec.id, "w1", T0 + 1)
    got = store.get_statement(rec.id)
    assert got is not None and got.status is S.STARTED and got.started_at == T0 + 1
    assert not store.start_statement(rec.id, "w1", T0 + 2)  # only once


def test_start_statement_fails_when_cancel_was_requested(store: Store) -> None:
    rec = add(store, stmt())
    claim_one(store, "w1")
    after = store.request_cancel(rec.id, T0 + 1)
    assert after.status is S.PICKED and after.cancel_requested
    assert not store.start_statement(rec.id, "w1", T0 + 2)
    assert status(store, rec.id) is S.PICKED


def test_finish_statement_only_for_the_lease_owner(store: Store) -> None:
    rec = add(store, stmt())
    run_to_started(store, rec, owner="w1")
    assert not finish(store, rec.id, owner="w2", now=T0 + 1)
    assert status(store, rec.id) is S.STARTED
    fields = {
        "status": S.FINISHED,
        "ended_at": T0 + 2,
        "updated_at": T0 + 2,
        "result_rows": 7,
        "has_result_set": True,
        "error": None,
    }
    assert store.finish_statement(rec.id, "w1", fields, T0 + 2)
    got = store.get_statement(rec.id)
    assert got is not None
    assert (got.status, got.ended_at, got.result_rows, got.has_result_set) == (
        S.FINISHED,
        T0 + 2,
        7,
        True,
    )
    assert got.lease_owner is None and got.lease_expires_at is None
    assert not finish(store, rec.id, owner="w1", now=T0 + 3)  # ended: nothing to finish


def test_update_statement_rejects_unknown_columns(store: Store) -> None:
    rec = add(store, stmt())
    with pytest.raises(ValueError, match="unknown statement column"):
        store.update_statement(rec.id, {"nope": 1})


# -- cancel ---------------------------------------------------------------------------------------
def test_cancel_submitted_aborts_it_and_its_sub_statements(store: Store) -> None:
    parent = stmt(is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 2))
    after = store.request_cancel(parent.id, T0 + 1)
    assert after.status is S.ABORTED
    assert after.ended_at == T0 + 1
    assert after.error is not None and after.error["code"] == "cancelled"
    subs = store.get_sub_statements(parent.id)
    assert [s.status for s in subs] == [S.ABORTED, S.ABORTED]
    assert all(s.ended_at == T0 + 1 for s in subs)
    assert store.claim_statements(["default"], "w", 10, LEASE, T0 + 2) == []


def test_cancel_started_sets_the_flag(store: Store) -> None:
    rec = add(store, stmt())
    run_to_started(store, rec)
    after = store.request_cancel(rec.id, T0 + 1)
    assert after.status is S.STARTED
    assert after.cancel_requested
    assert after.ended_at is None


@pytest.mark.parametrize("end", [S.FINISHED, S.FAILED, S.ABORTED])
def test_cancel_ended_is_invalid_state(store: Store, end: StatementStatus) -> None:
    rec = add(store, stmt())
    run_to_started(store, rec)
    assert store.finish_statement(rec.id, "w1", {"status": end, "ended_at": T0}, T0)
    with pytest.raises(errors.InvalidState):
        store.request_cancel(rec.id, T0 + 1)


def test_cancel_unknown_statement(store: Store) -> None:
    with pytest.raises(errors.StatementNotFound):
        store.request_cancel(str(uuid.uuid4()), T0)


# -- heartbeat ------------------------------------------------------------------------------------
def test_heartbeat_extends_leases_and_reports_cancels(store: Store) -> None:
    a, b = add(store, stmt()), add(store, stmt(created_at=T0 + 1))
    theirs = add(store, stmt(created_at=T0 + 2))
    store.claim_statements(["default"], "w1", 2, LEASE, T0)
    store.claim_statements(["default"], "w2", 1, LEASE, T0)
    assert store.heartbeat("w1", [], T0 + 100, T0) == []
    assert store.heartbeat("w1", [a.id, b.id], T0 + 100, T0 + 10) == []
    store.request_cancel(b.id, T0 + 11)
    assert store.heartbeat("w1", [a.id, b.id, theirs.id], T0 + 200, T0 + 20) == [b.id]

    leases = {i: store.get_statement(i).lease_expires_at for i in (a.id, b.id, theirs.id)}  # type: ignore[union-attr]
    assert leases == {a.id: T0 + 200, b.id: T0 + 200, theirs.id: T0 + LEASE}  # not w2's
    # extended leases are not recovered at the old expiry; the one not extended is
    assert [r.id for r in store.recover_statements(T0 + LEASE + 1)] == [theirs.id]
    assert [status(store, i) for i in (a.id, b.id, theirs.id)] == [S.PICKED, S.PICKED, S.SUBMITTED]


# -- recovery -------------------------------------------------------------------------------------
def test_recover_expired_picked_goes_back_to_submitted(store: Store) -> None:
    rec = add(store, stmt())
    claim_one(store, "w1", T0)
    assert store.recover_statements(T0 + LEASE - 1) == []  # lease still valid
    (changed,) = store.recover_statements(T0 + LEASE + 1)
    assert changed.id == rec.id and changed.status is S.SUBMITTED
    got = store.get_statement(rec.id)
    assert got is not None
    assert got.status is S.SUBMITTED and got.lease_owner is None and got.error is None
    again = claim_one(store, "w2", T0 + LEASE + 2)
    assert again.id == rec.id and again.attempts == 2
    # the old owner can neither start nor finish it now
    assert not store.start_statement(rec.id, "w1", T0 + LEASE + 3)
    assert not finish(store, rec.id, owner="w1", now=T0 + LEASE + 3)


def test_recover_expired_picked_with_cancel_ends_aborted(store: Store) -> None:
    rec = add(store, stmt())
    claim_one(store, "w1", T0)
    store.request_cancel(rec.id, T0 + 1)
    (changed,) = store.recover_statements(T0 + LEASE + 1)
    assert changed.status is S.ABORTED
    assert status(store, rec.id) is S.ABORTED


def test_recover_expired_started_fails_worker_lost(store: Store) -> None:
    parent = stmt(is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 3))
    run_to_started(store, parent, owner="w1", now=T0)
    sub1, sub2, _ = store.get_sub_statements(parent.id)
    store.update_statement(sub1.id, {"status": S.FINISHED, "ended_at": T0 + 1})
    store.update_statement(sub2.id, {"status": S.STARTED, "started_at": T0 + 1})
    alone = add(store, stmt(created_at=T0 + 1))
    run_to_started(store, alone, owner="w1", now=T0 + 1)

    changed = store.recover_statements(T0 + LEASE + 5)
    assert {c.id for c in changed} == {parent.id, alone.id}
    for c in changed:
        assert c.status is S.FAILED
        assert c.error is not None and c.error["code"] == "worker_lost"
    got = store.get_statement(parent.id)
    assert got is not None
    assert got.status is S.FAILED and got.ended_at == T0 + LEASE + 5
    assert got.error is not None and got.error["code"] == "worker_lost"
    assert got.lease_owner is None
    subs = store.get_sub_statements(parent.id)
    assert [s.status for s in subs] == [S.FINISHED, S.FAILED, S.FAILED]
    assert subs[0].ended_at == T0 + 1  # what had ended is left alone
    assert all(s.ended_at == T0 + LEASE + 5 for s in subs[1:])
    assert all(s.error and s.error["code"] == "worker_lost" for s in subs[1:])
    assert not finish(store, alone.id, owner="w1", now=T0 + LEASE + 6)
    assert store.recover_statements(T0 + LEASE + 100) == []  # nothing left to settle


def test_recover_leaves_live_leases_and_other_states_alone(store: Store) -> None:
    picked, started, waiting = (add(store, stmt(created_at=T0 + i)) for i in range(3))
    store.claim_statements(["default"], "w1", 2, LEASE, T0)
    assert store.start_statement(started.id, "w1", T0)
    store.heartbeat("w1", [picked.id, started.id], T0 + 100, T0 + 20)
    assert store.recover_statements(T0 + 50) == []
    assert [status(store, r.id) for r in (picked, started, waiting)] == [
        S.PICKED,
        S.STARTED,
        S.SUBMITTED,
    ]


def test_recover_orphaned_warehouses_regardless_of_lease(store: Store) -> None:
    mine = add(store, stmt(warehouse="duck"))
    lost_started = add(store, stmt(warehouse="duck", created_at=T0 + 1))
    lost_picked = add(store, stmt(warehouse="duck", created_at=T0 + 2))
    elsewhere = add(store, stmt(warehouse="pg", created_at=T0 + 3))
    store.claim_statements(["duck"], "new", 1, LEASE, T0)  # mine
    store.claim_statements(["duck"], "old", 2, LEASE, T0)
    assert store.start_statement(lost_started.id, "old", T0)
    store.claim_statements(["pg"], "old", 1, LEASE, T0)

    changed = store.recover_statements(T0 + 1, orphaned_warehouses=["duck"], owner="new")
    assert {c.id: c.status for c in changed} == {
        lost_started.id: S.FAILED,
        lost_picked.id: S.SUBMITTED,
    }
    got = store.get_statement(lost_started.id)
    assert got is not None and got.error is not None and got.error["code"] == "worker_lost"
    assert status(store, mine.id) is S.PICKED  # the caller's own is untouched
    assert status(store, elsewhere.id) is S.PICKED  # other warehouses wait for their lease


# -- sessions -------------------------------------------------------------------------------------
def test_new_session_is_recorded_with_its_statement(store: Store) -> None:
    sess = session(keep_alive=60)
    add(store, stmt(session_id=sess.id), new_session=sess)
    assert store.get_session(sess.id) == sess


def test_busy_session_is_rejected(store: Store) -> None:
    sess = session()
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    with pytest.raises(errors.SessionBusy) as info:
        store.create_statement(stmt(session_id=sess.id), now=T0 + 1)
    assert info.value.details["statement_id"] == first.id
    run_to_started(store, first)
    with pytest.raises(errors.SessionBusy):
        store.create_statement(stmt(session_id=sess.id), now=T0 + 1)
    assert finish(store, first.id, now=T0 + 2)
    add(store, stmt(session_id=sess.id, created_at=T0 + 3))


def test_session_not_found_cases(store: Store) -> None:
    with pytest.raises(errors.SessionNotFound):
        store.create_statement(stmt(session_id=str(uuid.uuid4())), now=T0)

    sess = session(keep_alive=60)
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    run_to_started(store, first)
    assert finish(store, first.id, now=T0)

    with pytest.raises(errors.SessionNotFound):  # another principal's session
        store.create_statement(stmt(principal="bob", session_id=sess.id), now=T0 + 1)
    with pytest.raises(errors.SessionNotFound):  # past its keep-alive
        store.create_statement(stmt(session_id=sess.id), now=T0 + 60)
    add(store, stmt(session_id=sess.id, created_at=T0 + 59))  # still open just before


def test_closed_session_is_not_found(store: Store) -> None:
    sess = session()
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    store.request_cancel(first.id, T0)
    store.close_session(sess.id, T0 + 1)
    closed = store.get_session(sess.id)
    assert closed is not None and closed.closed_at == T0 + 1
    with pytest.raises(errors.SessionNotFound):
        store.create_statement(stmt(session_id=sess.id), now=T0 + 2)
    store.close_session(sess.id, T0 + 5)  # closing again keeps the first time
    again = store.get_session(sess.id)
    assert again is not None and again.closed_at == T0 + 1


def test_session_on_another_warehouse_is_invalid(store: Store) -> None:
    sess = session()
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    store.request_cancel(first.id, T0)
    with pytest.raises(errors.InvalidRequest):
        store.create_statement(stmt(session_id=sess.id, warehouse="other"), now=T0 + 1)


def test_session_expiry_is_extended_when_its_statement_ends(store: Store) -> None:
    sess = session(keep_alive=60)
    first = add(store, stmt(session_id=sess.id), new_session=sess)
    run_to_started(store, first)
    assert finish(store, first.id, now=T0 + 500)
    got = store.get_session(sess.id)
    assert got is not None and got.expires_at == T0 + 560
    # the session is usable long after its first keep-alive, counted from the end
    second = add(store, stmt(session_id=sess.id, created_at=T0 + 550))
    # a cancel before start extends it too
    store.request_cancel(second.id, T0 + 600)
    got = store.get_session(sess.id)
    assert got is not None and got.expires_at == T0 + 660


def test_expired_sessions_excludes_sessions_with_an_active_statement(store: Store) -> None:
    idle, busy, fresh = session(keep_alive=10), session(keep_alive=10), session(keep_alive=1000)
    a = add(store, stmt(session_id=idle.id), new_session=idle)
    b = add(store, stmt(session_id=busy.id, created_at=T0 + 1), new_session=busy)
    c = add(store, stmt(session_id=fresh.id, created_at=T0 + 2), new_session=fresh)
    store.claim_statements(["default"], "w1", 10, LEASE, T0)
    for rec in (a, c):
        assert store.start_statement(rec.id, "w1", T0)
        assert finish(store, rec.id, now=T0)
    assert store.start_statement(b.id, "w1", T0)  # still running

    assert store.expired_sessions(T0 + 5) == []
    assert [s.id for s in store.expired_sessions(T0 + 10)] == [idle.id]
    assert {s.id for s in store.expired_sessions(T0 + 10_000)} == {idle.id, fresh.id}
    store.close_session(idle.id, T0 + 11)
    assert [s.id for s in store.expired_sessions(T0 + 20)] == []


# -- results --------------------------------------------------------------------------------------
def test_results_expiry_listing_and_marking(store: Store) -> None:
    parent = stmt(is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 2))
    plain, failed, running = (add(store, stmt(created_at=T0 + i)) for i in (1, 2, 3))
    store.claim_statements(["default"], "w1", 10, LEASE, T0)
    for rec, end, at in ((parent, S.FINISHED, T0 + 10), (plain, S.FINISHED, T0 + 20)):
        assert store.start_statement(rec.id, "w1", at)
        assert store.finish_statement(rec.id, "w1", {"status": end, "ended_at": at}, at)
    assert store.finish_statement(failed.id, "w1", {"status": S.FAILED, "ended_at": T0 + 30}, 0)
    for sub in store.get_sub_statements(parent.id):
        store.update_statement(sub.id, {"status": S.FINISHED, "ended_at": T0 + 5})

    assert store.statements_with_expired_results(T0 + 10, 100) == []
    assert [r.id for r in store.statements_with_expired_results(T0 + 25, 100)] == [
        parent.id,
        plain.id,
    ]
    assert [r.id for r in store.statements_with_expired_results(T0 + 1000, 100)] == [
        parent.id,
        plain.id,
        failed.id,
    ]
    assert [r.id for r in store.statements_with_expired_results(T0 + 1000, 1)] == [parent.id]

    store.mark_results_expired([])
    store.mark_results_expired([parent.id, plain.id])
    assert [r.id for r in store.statements_with_expired_results(T0 + 1000, 100)] == [failed.id]
    for sid in (parent.id, plain.id, *(s.id for s in store.get_sub_statements(parent.id))):
        got = store.get_statement(sid)
        assert got is not None and got.result_expired
    got = store.get_statement(running.id)
    assert got is not None and not got.result_expired


def test_record_retention_deletes_old_finished_statements_with_their_sub_statements(
    store: Store,
) -> None:
    parent = stmt(is_batch=True)
    add(store, parent, sub_statements=subs_of(parent, 2))
    old, recent, running = (add(store, stmt(created_at=T0 + i)) for i in (1, 2, 3))
    queued = add(store, stmt(created_at=T0 + 4))
    store.claim_statements(["default"], "w1", 10, LEASE, T0)
    for rec, end, at in ((parent, S.FINISHED, T0 + 10), (old, S.FAILED, T0 + 20)):
        assert store.start_statement(rec.id, "w1", at)
        assert store.finish_statement(rec.id, "w1", {"status": end, "ended_at": at}, at)
    assert store.start_statement(recent.id, "w1", T0)
    assert store.finish_statement(recent.id, "w1", {"status": S.FINISHED, "ended_at": T0 + 500}, 0)
    assert store.start_statement(running.id, "w1", T0)
    store.mark_results_expired([parent.id])
    subs = [s.id for s in store.get_sub_statements(parent.id)]

    assert store.delete_statements_ended_before(T0 + 10) == []
    # oldest first, in slices of `limit`; (id, whether its results were expired already)
    assert store.delete_statements_ended_before(T0 + 100, limit=1) == [(parent.id, True)]
    assert store.delete_statements_ended_before(T0 + 100) == [(old.id, False)]
    assert store.delete_statements_ended_before(T0 + 100) == []
    for gone in (parent.id, old.id, *subs):
        assert store.get_statement(gone) is None
    # unfinished statements are never deleted, however old
    assert store.delete_statements_ended_before(T0 + 10**9) == [(recent.id, False)]
    for kept in (running.id, queued.id):
        assert store.get_statement(kept) is not None


# -- sessions of lost workers ---------------------------------------------------------------------
def _session_owned_by(store: Store, owner: str, warehouse: str = "default") -> str:
    sess = session(warehouse=warehouse, keep_alive=3600)
    first = add(store, stmt(session_id=sess.id, warehouse=warehouse), new_session=sess)
    run_to_started(store, first, owner=owner)
    assert finish(store, first.id, owner=owner, now=T0)
    got = store.get_session(sess.id)
    assert got is not None and got.owner == owner
    return sess.id


def test_recover_orphaned_warehouse_closes_sessions_of_the_lost_worker(
    store: Store,
) -> None:
    lost = _session_owned_by(store, "old", warehouse="duck")
    queued = add(store, stmt(session_id=lost, warehouse="duck", created_at=T0 + 1))
    idle = _session_owned_by(store, "old", warehouse="duck")
    mine = _session_owned_by(store, "new", warehouse="duck")
    elsewhere = _session_owned_by(store, "old", warehouse="pg")

    store.recover_statements(T0 + 2, orphaned_warehouses=["duck"], owner="new")
    for sid in (lost, idle):
        got = store.get_session(sid)
        assert got is not None and got.closed_at == T0 + 2 and got.owner is None
    for sid in (mine, elsewhere):
        got = store.get_session(sid)
        assert got is not None and got.closed_at is None
    # what waited in the lost session is no longer stuck behind the dead owner: the new
    # worker claims it (and fails it, as its session is closed)
    (claimed,) = store.claim_statements(["duck"], "new", 10, LEASE, T0 + 3)
    assert claimed.id == queued.id
    with pytest.raises(errors.SessionNotFound):
        store.create_statement(stmt(session_id=lost, warehouse="duck"), now=T0 + 3)


def test_recover_expired_lease_closes_the_session_of_the_lost_statement(
    store: Store,
) -> None:
    sid = _session_owned_by(store, "w1")
    running = add(store, stmt(session_id=sid, created_at=T0 + 1))
    run_to_started(store, running, owner="w1", now=T0 + 1)
    (changed,) = store.recover_statements(T0 + 1 + LEASE + 1)
    assert changed.status is S.FAILED
    got = store.get_session(sid)
    assert got is not None and got.closed_at is not None and got.owner is None
    # its connection died with its worker: the session takes no more statements
    with pytest.raises(errors.SessionNotFound):
        store.create_statement(stmt(session_id=sid), now=T0 + 100)


# -- notifier transport ---------------------------------------------------------------------------
class RecordingTransport:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.closed = 0

    def send(self, channel: str, key: str) -> None:
        self.log.append(f"sent {key}")

    def close(self) -> None:
        self.closed += 1


def test_notifier_sends_publishes_to_its_transport_after_local_delivery() -> None:
    notifier = Notifier()
    order: list[str] = []
    transport = RecordingTransport(order)
    notifier.subscribe("work", lambda key: order.append(f"local {key}"))
    notifier.publish("work", "before")  # no transport yet: local only
    notifier.transport = transport
    notifier.publish("work", "duck")
    assert order == ["local before", "local duck", "sent duck"]
    # what a transport delivers is local only: it is not sent back out
    notifier.deliver("work", "remote")
    assert order[-1] == "local remote"
    notifier.close()
    notifier.close()
    assert transport.closed == 1 and notifier.transport is None
    notifier.publish("work", "after")
    assert order[-1] == "local after"


def test_notifier_lists_the_keys_waited_on() -> None:
    async def main() -> list[str]:
        notifier = Notifier()
        with (
            notifier.waiter("statement", "a"),
            notifier.waiter("statement", "b"),
            notifier.waiter("cancel", "c"),
        ):
            return sorted(notifier.waited_keys("statement"))

    assert asyncio.run(main()) == ["a", "b"]
