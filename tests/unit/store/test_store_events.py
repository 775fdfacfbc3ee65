"""Events in the store: the archive/outbox, and status events written with state changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sqltide.store import StatementRecord, StatementStatus, Store, store_from_url
from sqltide.store.events import STATEMENT_DETAIL_TYPE, STATEMENT_SOURCE, EventRecord, envelope

T0 = 1_000_000.0
S = StatementStatus


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = store_from_url(store_url)
    st.migrate()
    st.result_retention_seconds = 3600
    yield st
    st.close()


def submit(store: Store, sid: str, *, with_event: bool, name: str | None = "nightly") -> None:
    rec = StatementRecord(
        id=sid,
        principal="arn:aws:iam::123456789012:user/etl",
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
    return store.list_events("arn:aws:iam::123456789012:user/etl", limit=100)


def finish(store: Store, sid: str, status: S, rows: int | None = 7) -> None:
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
    finish(store, sid, S.FINISHED)
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
        "principal": "arn:aws:iam::123456789012:user/etl",
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
    finish(store, sid, S.FAILED, rows=None)
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
    finish(store, sid, S.FINISHED)
    (event,) = events_of(store)
    store.put_events([event])  # a retried transaction writes the same deterministic id
    assert len(events_of(store)) == 1


def test_put_list_claim_and_route(store: Store) -> None:
    events = [
        EventRecord(
            id=f"e{n}",
            principal="arn:aws:iam::123456789012:user/etl",
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
    page = store.list_events(
        "arn:aws:iam::123456789012:user/etl", start=T0 + 1, end=T0 + 4, limit=2
    )
    assert [e.id for e in page] == ["e1", "e2"]
    rest = store.list_events(
        "arn:aws:iam::123456789012:user/etl",
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
