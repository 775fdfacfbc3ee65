"""Events: the archive/outbox, status events written with state changes, routing."""

from __future__ import annotations

import pytest

from sqltide.store import StatementRecord, Store
from sqltide.store.event_records import (
    STATEMENT_DETAIL_TYPE,
    STATEMENT_SOURCE,
    EventRecord,
    envelope,
)

from .conftest import LEASE, T0, P, S, behind_the_store, delivery, event, ids, stored


# -- statement status events -------------------------------------------------------------------
@pytest.fixture
def store(store: Store) -> Store:
    """The shared store, keeping results an hour (the status events say when they expire)."""
    store.result_retention_seconds = 3600
    return store


def submit(store: Store, sid: str, *, with_event: bool, name: str | None = "nightly") -> None:
    rec = StatementRecord(
        id=sid,
        principal=P,
        warehouse="default",
        status=S.SUBMITTED,
        query_string="CALL run_elt_process()",
        created_at=T0,
        updated_at=T0,
        statement_name=name,
        with_event=with_event,
    )
    store.create_statement(rec, now=T0)


def events_of(store: Store) -> list[EventRecord]:
    return store.list_events(P, limit=100)


def finish_as(store: Store, sid: str, status: S, rows: int | None = 7) -> None:
    (claimed,) = store.claim_statements(["default"], "w1", 1, 30, T0 + 1)
    assert claimed.id == sid
    assert store.start_statement(sid, "w1", T0 + 2)
    assert store.finish_statement(
        sid,
        "w1",
        {"status": status, "ended_at": T0 + 3, "updated_at": T0 + 3, "result_rows": rows},
        T0 + 3,
    )


def test_a_finished_statement_with_event_writes_the_data_api_event(store: Store) -> None:
    sid = "5b0c2a9e-1111-4222-8333-444455556666"
    submit(store, sid, with_event=True)
    assert events_of(store) == []
    finish_as(store, sid, S.FINISHED)
    (event,) = events_of(store)
    body = event.body
    assert body["source"] == STATEMENT_SOURCE == "aws.redshift-data"
    assert body["detail-type"] == STATEMENT_DETAIL_TYPE == "Redshift Data Statement Status Change"
    assert body["version"] == "0" and body["id"] == event.id
    assert set(body) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert body["detail"] == {
        "principal": P,
        "statementName": "nightly",
        "statementId": sid,
        "redshiftQueryId": -1,
        "state": "FINISHED",
        "rows": 7,
        "expireAt": int(T0 + 3 + 3600),
    }
    assert body["time"] == "1970-01-12T13:46:43Z"


def test_no_event_without_with_event(store: Store) -> None:
    sid = "5b0c2a9e-1111-4222-8333-444455556667"
    submit(store, sid, with_event=False)
    finish_as(store, sid, S.FAILED, rows=None)
    assert events_of(store) == []


def test_cancel_before_start_and_recovery_write_events_too(store: Store) -> None:
    a = "5b0c2a9e-1111-4222-8333-000000000001"
    b = "5b0c2a9e-1111-4222-8333-000000000002"
    submit(store, a, with_event=True)
    store.request_cancel(a, T0 + 1)
    submit(store, b, with_event=True)
    (_claimed,) = store.claim_statements(["default"], "w1", 1, 30, T0 + 2)
    assert store.start_statement(b, "w1", T0 + 2)
    store.recover_statements(T0 + 100)  # w1's lease is long gone
    states = {e.body["detail"]["statementId"]: e.body["detail"]["state"] for e in events_of(store)}
    assert states == {a: "ABORTED", b: "FAILED"}


def test_the_event_is_written_once_even_if_the_write_is_repeated(store: Store) -> None:
    sid = "5b0c2a9e-1111-4222-8333-000000000003"
    submit(store, sid, with_event=True)
    finish_as(store, sid, S.FINISHED)
    (event,) = events_of(store)
    store.put_events([event])  # a retried transaction writes the same deterministic id
    assert len(events_of(store)) == 1


# -- archive and outbox ------------------------------------------------------------------------
def test_put_list_claim_and_route(store: Store) -> None:
    events = [
        EventRecord(
            id=f"e{n}",
            principal=P,
            source="my.app",
            detail_type="Order Placed",
            time=T0 + n,
            body=envelope(
                source="my.app",
                detail_type="Order Placed",
                detail={"n": n},
                time=T0 + n,
                event_id=f"e{n}",
            ),
            created_at=T0 + n,
        )
        for n in range(5)
    ]
    store.put_events(events)
    assert [e.id for e in events_of(store)] == ["e0", "e1", "e2", "e3", "e4"]
    page = store.list_events(P, start=T0 + 1, end=T0 + 4, limit=2)
    assert [e.id for e in page] == ["e1", "e2"]
    rest = store.list_events(
        P,
        start=T0 + 1,
        end=T0 + 4,
        limit=2,
        after=(page[-1].time, page[-1].id),
    )
    assert [e.id for e in rest] == ["e3"]
    assert store.list_events("someone-else") == []
    first = store.claim_events("bus-1", 3, 30, T0 + 10)
    assert [e.id for e in first] == ["e0", "e1", "e2"]
    assert [e.id for e in store.claim_events("bus-2", 10, 30, T0 + 11)] == ["e3", "e4"]
    assert store.claim_events("bus-2", 10, 30, T0 + 12) == []  # all leased
    store.mark_events_routed(["e0", "e1"], T0 + 13)
    # bus-1 died: its unrouted event comes back when the lease runs out, routed ones never
    assert [e.id for e in store.claim_events("bus-3", 10, 30, T0 + 50)] == ["e2", "e3", "e4"]


# -- routing -----------------------------------------------------------------------------------
def test_route_event_inserts_deliveries_once_and_only_for_the_lease_holder(store: Store) -> None:
    store.put_events([event("e1")])
    (claimed,) = store.claim_events("bus-1", 10, LEASE, T0 + 1)
    assert claimed.id == "e1"
    # bus-1 stalls past its lease; bus-2 takes the event over
    (again,) = store.claim_events("bus-2", 10, LEASE, T0 + 40)
    assert again.id == "e1"
    made = [delivery("d1", target_id="t1"), delivery("d2", target_id="t2", payload="just text")]
    assert store.route_event("e1", "bus-1", made, T0 + 41) is False
    assert store.list_deliveries(P) == []  # the loser wrote nothing
    assert store.route_event("e1", "bus-2", made, T0 + 42) is True
    assert sorted(ids(store.list_deliveries(P))) == ["d1", "d2"]
    assert stored(store, "d1") == made[0]
    assert stored(store, "d2").payload == "just text"
    # routed twice (a second router, the same deterministic ids): nothing new, and refused
    assert store.route_event("e1", "bus-1", made, T0 + 43) is False
    assert store.route_event("e1", "bus-2", made, T0 + 43) is False
    assert sorted(ids(store.list_deliveries(P))) == ["d1", "d2"]
    # routed: never handed to a router again
    assert store.claim_events("bus-3", 10, LEASE, T0 + 10_000) == []


def test_route_event_without_deliveries_marks_it_routed(store: Store) -> None:
    store.put_events([event("e1"), event("e2", at=T0 + 1)])
    assert [e.id for e in store.claim_events("bus-1", 10, LEASE, T0 + 2)] == ["e1", "e2"]
    assert store.route_event("e1", "bus-1", [], T0 + 3) is True
    assert store.route_event("missing", "bus-1", [], T0 + 3) is False
    assert [e.id for e in store.claim_events("bus-2", 10, LEASE, T0 + 100)] == ["e2"]


# the stores drifted here once (issue 9): this failed on PostgreSQL
def test_an_event_routed_meanwhile_is_not_routed_again(store: Store, store_url: str) -> None:
    store.put_events([event("e1")])
    assert [e.id for e in store.claim_events("bus-1", 10, LEASE, T0)] == ["e1"]
    # routed by another path while bus-1 still holds the lease
    behind_the_store(store_url, f"UPDATE events SET routed_at = {T0 + 1} WHERE id = 'e1'")
    assert store.route_event("e1", "bus-1", [delivery("d1")], T0 + 2) is False
    assert store.list_deliveries(P) == []
    (stored_event,) = store.list_events(P)
    assert stored_event.routed_at == T0 + 1
