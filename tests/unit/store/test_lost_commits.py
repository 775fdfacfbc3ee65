"""PostgreSQL: a write whose commit answer was lost is retried and reports success.

Only the PostgreSQL store retries a transaction after losing its connection, so these tests
run on it alone (``tx.retried`` is never set on SQLite).
"""

from __future__ import annotations

import pytest

from pgtools import answer_lost
from sqltide.store.postgres import PostgresStore

from .conftest import (
    LEASE,
    T0,
    P,
    delivery,
    event,
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
