"""Statements: create, list, claim, start, finish, cancel, heartbeat, recover, retention."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from sqltide import errors
from sqltide.store import StatementFilter, StatementStatus, Store

from .conftest import LEASE, T0, S, add, claim_one, finish, run_to_started, status, stmt, subs_of


def test_statements_keep_the_access_they_were_granted(store: Store) -> None:
    rec = stmt()
    rec.access, rec.db_role = "read_only", "bob_role"
    add(store, rec)
    got = store.get_statement(rec.id)
    assert got is not None and (got.access, got.db_role) == ("read_only", "bob_role")
    plain = add(store, stmt())
    got = store.get_statement(plain.id)
    assert got is not None and (got.access, got.db_role) == (None, None)


def test_statements_keep_their_origin(store: Store) -> None:
    """A Data API statement records where it came from (a JSON object), with its
    sub-statements; a /v1 statement has none."""
    parent = stmt(is_batch=True)
    origin = {"workgroup": "wg-1", "database": "dev", "result_format": "CSV", "db_user": "ü"}
    parent.origin = origin
    subs = subs_of(parent, 2)
    for sub in subs:
        sub.origin = origin
    add(store, parent, sub_statements=subs)
    got = store.get_statement(parent.id)
    assert got is not None and got.origin == origin
    assert [s.origin for s in store.get_sub_statements(parent.id)] == [origin, origin]
    assert store.list_statements(StatementFilter(principal="alice"))[0].origin == origin
    plain = add(store, stmt())
    got = store.get_statement(plain.id)
    assert got is not None and got.origin is None


# -- listing -----------------------------------------------------------------------------------
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


# -- create ------------------------------------------------------------------------------------
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


# -- claiming ----------------------------------------------------------------------------------
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


# -- start / finish ----------------------------------------------------------------------------
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


# -- cancel ------------------------------------------------------------------------------------
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


# -- heartbeat ---------------------------------------------------------------------------------
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


# -- recovery ----------------------------------------------------------------------------------
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


# -- results and retention ---------------------------------------------------------------------
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
