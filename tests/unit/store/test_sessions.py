"""Sessions: opened with a statement, checked, owned by a worker, extended, expired, closed."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from sqltide import errors
from sqltide.store import SessionFilter, Store

from .conftest import LEASE, T0, S, add, finish, run_to_started, session, stmt


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


# -- sessions of lost workers ------------------------------------------------------------------
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


def test_list_sessions_by_state_newest_first(store: Store) -> None:
    """A principal's sessions with their state (AVAILABLE, BUSY, CLOSED) and running
    statement, newest first, in keyset pages; origins are kept."""
    idle = session(keep_alive=600)
    idle_first = add(store, stmt(session_id=idle.id), new_session=idle)
    run_to_started(store, idle_first)
    assert finish(store, idle_first.id, now=T0 + 1)
    busy = session(keep_alive=600, created_at=T0 + 1)
    busy_first = add(store, stmt(session_id=busy.id, created_at=T0 + 1), new_session=busy)
    expired = session(keep_alive=1, created_at=T0 + 2)
    expired_first = add(store, stmt(session_id=expired.id, created_at=T0 + 2), new_session=expired)
    run_to_started(store, expired_first)
    assert finish(store, expired_first.id, now=T0 + 3)  # idle from T0 + 3, for 1 s
    add(
        store,
        stmt(principal="bob", session_id=(bobs := session(principal="bob")).id),
        new_session=bobs,
    )

    def listed(**kw: object) -> list[tuple[str, str | None]]:
        flt = SessionFilter(principal="alice", now=T0 + 10, **kw)  # type: ignore[arg-type]
        return [(s.id, current) for s, current in store.list_sessions(flt)]

    assert listed() == [(expired.id, None), (busy.id, busy_first.id), (idle.id, None)]
    assert listed(states=frozenset({"BUSY"})) == [(busy.id, busy_first.id)]
    assert listed(states=frozenset({"AVAILABLE"})) == [(idle.id, None)]
    assert listed(states=frozenset({"CLOSED"})) == [(expired.id, None)]
    assert listed(states=frozenset({"AVAILABLE", "BUSY"}), limit=1) == [(busy.id, busy_first.id)]
    assert listed(after=(T0 + 1, busy.id)) == [(idle.id, None)]
    assert listed(session_id=idle.id) == [(idle.id, None)]
    assert listed(warehouse="other") == []
    assert listed(created_after=T0 + 1) == [(expired.id, None), (busy.id, busy_first.id)]
    store.close_session(idle.id, T0 + 4)
    assert listed(states=frozenset({"CLOSED"})) == [(expired.id, None), (idle.id, None)]


def test_sessions_keep_their_origin(store: Store) -> None:
    sess = dataclasses.replace(session(), origin={"cluster": "c-1", "database": "dev"})
    add(store, stmt(session_id=sess.id), new_session=sess)
    got = store.get_session(sess.id)
    assert got == sess and got is not None and got.origin == {"cluster": "c-1", "database": "dev"}
