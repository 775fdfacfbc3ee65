"""PostgreSQL: a write whose commit answer was lost is retried and reports success.

Only the PostgreSQL store retries a transaction after losing its connection, so these tests
run on it alone (``tx.retried`` is never set on SQLite).
"""

from __future__ import annotations

import pytest

from pgtools import answer_lost
from sqltide.store import ExecutionStatus
from sqltide.store.postgres import PostgresStore

from .conftest import (
    LEASE,
    T0,
    WF,
    P,
    callback,
    delivery,
    event,
    execution,
    ids,
    requires_postgres,
    schedule_rule,
    stored,
    topic,
)


@requires_postgres
def test_writes_whose_commit_answer_was_lost_report_success(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = pg_store
    st.retry_initial = 0.001
    with answer_lost(monkeypatch, st):
        assert st.upsert_rule(schedule_rule()) is True
    with answer_lost(monkeypatch, st):
        assert st.upsert_rule(schedule_rule(created_at=T0 + 1, updated_at=T0 + 1)) is False
    with answer_lost(monkeypatch, st):
        assert st.record_firing(P, "every-5", T0 + 300, [event("f1", at=T0 + 300)]) is True
    assert st.record_firing(P, "every-5", T0 + 300, [event("f2", at=T0 + 300)]) is False
    with answer_lost(monkeypatch, st):
        assert st.upsert_topic(topic()) is True
    with answer_lost(monkeypatch, st):
        assert st.delete_topic(P, "alerts") is True
    with answer_lost(monkeypatch, st):
        assert st.delete_rule(P, "every-5") is True

    st.put_events([event("e1")])
    st.claim_events("bus-1", 10, LEASE, T0)
    with answer_lost(monkeypatch, st):
        assert st.route_event("e1", "bus-1", [delivery("d1"), delivery("d2")], T0 + 1) is True
    assert st.route_event("e1", "bus-1", [delivery("d3")], T0 + 1) is False  # not a retry
    assert ids(st.claim_deliveries("w1", 10, LEASE, T0 + 2)) == ["d1", "d2"]
    with answer_lost(monkeypatch, st):
        assert st.finish_delivery("d1", "w1", status="DEAD", now=T0 + 3, error={"code": "x"})
    dead = stored(st, "d1")
    assert (dead.status, dead.attempts) == ("DEAD", 1)  # counted once
    with answer_lost(monkeypatch, st):
        assert st.redrive_delivery(P, "d1", T0 + 4) is True
    assert st.redrive_delivery(P, "d1", T0 + 4) is False  # not a retry: pending already


@requires_postgres
def test_execution_transitions_whose_commit_answer_was_lost_report_success(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = pg_store
    st.retry_initial = 0.001
    with answer_lost(monkeypatch, st):
        rec, created = st.start_execution(execution("a"))
    assert created
    assert st.start_execution(execution("a")) == (rec, False)  # not a retry: someone else's
    assert st.claim_executions([WF], "w1", 1, LEASE, T0)
    update = callback(rec, "cb-1")
    with answer_lost(monkeypatch, st):
        assert st.checkpoint(rec.id, "w1", [update], T0 + 1)
    assert [o.seq for o in st.get_operations(rec.id)] == [1]
    with answer_lost(monkeypatch, st):
        assert st.suspend_execution(rec.id, "w1", None, T0 + 2)
    with answer_lost(monkeypatch, st):
        st.complete_callback("cb-1", "succeed", result="1", error=None, now=T0 + 3)
    assert st.claim_executions([WF], "w2", 1, LEASE, T0 + 3)
    with answer_lost(monkeypatch, st):
        assert st.finish_execution(
            rec.id,
            "w2",
            ExecutionStatus.SUCCEEDED,
            result="1",
            error=None,
            now=T0 + 4,
            retention_seconds=60,
        )
    assert [h.event for h in st.get_history(rec.id)] == [
        "execution_started",
        "resumed",
        "callback_created",
        "suspended",
        "callback_succeeded",
        "resumed",
        "execution_succeeded",
    ]  # each once
    other = st.start_execution(execution("b"))[0]
    with answer_lost(monkeypatch, st):
        assert st.stop_execution(other.id, None, T0 + 5).status is ExecutionStatus.STOPPED
