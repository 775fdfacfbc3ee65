"""Rules, topics and deliveries in the store, driven directly with explicit ``now`` values.

Every test runs on both stores (the ``store_url`` fixture): they must behave the same.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
import pytest

import pgtools
from sqltide.store import Store, store_from_url
from sqltide.store.events import DeliveryRecord, EventRecord, RuleRecord, TopicRecord, envelope
from sqltide.store.postgres import PostgresStore
from sqltide.urls import path_of

T0 = 1_000_000.0
LEASE = 30.0
P = "arn:aws:iam::123456789012:user/etl"
OTHER = "arn:aws:iam::123456789012:user/someone-else"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = store_from_url(store_url)
    st.migrate()
    yield st
    st.close()


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


def event_ids(store: Store, principal: str = P) -> list[str]:
    return [e.id for e in store.list_events(principal, limit=1000)]


def ids(records: list[DeliveryRecord]) -> list[str]:
    return [d.id for d in records]


def stored(store: Store, delivery_id: str) -> DeliveryRecord:
    got = store.get_delivery(delivery_id)
    assert got is not None
    return got


# -- rules ------------------------------------------------------------------------------------
def test_a_new_rule_is_stored_as_given(store: Store) -> None:
    rule = pattern_rule()
    assert store.upsert_rule(rule) is True
    assert store.get_rule(P, rule.name) == rule
    sched = schedule_rule()
    assert store.upsert_rule(sched) is True
    assert store.get_rule(P, sched.name) == sched
    assert store.get_rule(P, "missing") is None


def test_replacing_a_rule_keeps_created_at_and_last_fired_at(store: Store) -> None:
    assert store.upsert_rule(schedule_rule()) is True
    assert store.record_firing(P, "every-5", T0 + 300, [event("fire-1", at=T0 + 300)])
    new = schedule_rule(
        created_at=T0 + 500,
        updated_at=T0 + 500,
        state="DISABLED",
        description="now described",
        schedule="cron(0 3 * * ? *)",
        timezone="UTC",
        missed_policy="skip",
        missed_window_seconds=None,
        targets=[{"id": "other", "kind": "http", "url": "https://example.test/other"}],
    )
    assert store.upsert_rule(new) is False
    got = store.get_rule(P, "every-5")
    assert got == replace(new, created_at=T0, last_fired_at=T0 + 300)
    # a pattern rule replacing a schedule rule of the same name
    as_pattern = pattern_rule("every-5", created_at=T0 + 600, updated_at=T0 + 600)
    assert store.upsert_rule(as_pattern) is False
    assert store.get_rule(P, "every-5") == replace(
        as_pattern, created_at=T0, last_fired_at=T0 + 300
    )


def test_list_and_delete_rules_per_principal(store: Store) -> None:
    for name in ("b-rule", "a-rule", "c-rule"):
        store.upsert_rule(pattern_rule(name))
    store.upsert_rule(pattern_rule("a-rule", principal=OTHER, description="theirs"))
    assert [r.name for r in store.list_rules(P)] == ["a-rule", "b-rule", "c-rule"]
    assert [r.name for r in store.list_rules(OTHER)] == ["a-rule"]
    assert store.list_rules("nobody") == []
    assert sorted((r.principal, r.name) for r in store.list_rules()) == sorted(
        [(OTHER, "a-rule"), (P, "a-rule"), (P, "b-rule"), (P, "c-rule")]
    )
    # same name, other principal: a separate rule
    mine, theirs = store.get_rule(P, "a-rule"), store.get_rule(OTHER, "a-rule")
    assert mine is not None and theirs is not None
    assert mine.description == "statement ended" and theirs.description == "theirs"
    assert store.get_rule(OTHER, "b-rule") is None
    assert store.delete_rule(OTHER, "b-rule") is False
    assert store.get_rule(P, "b-rule") is not None

    assert store.delete_rule(P, "a-rule") is True
    assert store.delete_rule(P, "a-rule") is False
    assert store.get_rule(P, "a-rule") is None
    assert store.get_rule(OTHER, "a-rule") is not None
    assert [r.name for r in store.list_rules(P)] == ["b-rule", "c-rule"]


# -- schedule firings -------------------------------------------------------------------------
def test_record_firing_advances_only_forward(store: Store) -> None:
    store.upsert_rule(schedule_rule())
    assert store.record_firing(P, "every-5", T0 + 300, [event("f1", at=T0 + 300)]) is True
    got = store.get_rule(P, "every-5")
    assert got is not None and got.last_fired_at == T0 + 300
    assert event_ids(store) == ["f1"]

    # the same moment again (another scheduler) and an earlier one both lose, writing nothing
    assert store.record_firing(P, "every-5", T0 + 300, [event("f2", at=T0 + 300)]) is False
    assert store.record_firing(P, "every-5", T0 + 200, [event("f3", at=T0 + 200)]) is False
    got = store.get_rule(P, "every-5")
    assert got is not None and got.last_fired_at == T0 + 300
    assert event_ids(store) == ["f1"]

    # several events in one firing (missed firings caught up): all or nothing
    later = [event("f4", at=T0 + 600), event("f5", at=T0 + 900)]
    assert store.record_firing(P, "every-5", T0 + 900, later) is True
    assert event_ids(store) == ["f1", "f4", "f5"]
    got = store.get_rule(P, "every-5")
    assert got is not None and got.last_fired_at == T0 + 900


def test_record_firing_of_a_missing_rule_writes_nothing(store: Store) -> None:
    store.upsert_rule(schedule_rule())
    assert store.record_firing(P, "gone", T0 + 300, [event("f1", at=T0 + 300)]) is False
    assert store.record_firing(OTHER, "every-5", T0 + 300, [event("f2", at=T0 + 300)]) is False
    assert event_ids(store) == []
    got = store.get_rule(P, "every-5")
    assert got is not None and got.last_fired_at is None


def race_firing(stores: dict[str, Store], at: float, tag: str) -> dict[str, bool]:
    """Each store fires ``every-5`` at ``at`` from its own thread, all at once."""
    barrier = threading.Barrier(len(stores))
    results: dict[str, bool] = {}
    failures: list[BaseException] = []

    def fire(who: str, st: Store) -> None:
        try:
            barrier.wait(5)
            results[who] = st.record_firing(P, "every-5", at, [event(f"{who}-{tag}", at=at)])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=fire, args=item) for item in stores.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    return results


def test_two_schedulers_firing_the_same_moment_one_wins(store: Store) -> None:
    store.upsert_rule(schedule_rule())
    # a second store object on the same state stands for a second process
    other = type(store)(store.url)
    try:
        for n in range(5):
            at = T0 + 300 * (n + 1)
            results = race_firing({"a": store, "b": other}, at, str(n))
            assert sorted(results.values()) == [False, True]
            (winner,) = [who for who, won in results.items() if won]
            fired = [e for e in event_ids(store) if e.endswith(f"-{n}")]
            assert fired == [f"{winner}-{n}"]  # the loser wrote no event
            got = store.get_rule(P, "every-5")
            assert got is not None and got.last_fired_at == at
        assert len(event_ids(store)) == 5
    finally:
        other.close()


# -- topics -----------------------------------------------------------------------------------
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


def test_topics_crud_per_principal(store: Store) -> None:
    first = topic()
    assert store.upsert_topic(first) is True
    assert store.get_topic(P, "alerts") == first
    assert store.upsert_topic(topic("audit", subscriptions=[], display_name=None)) is True
    assert store.upsert_topic(topic("alerts", principal=OTHER)) is True

    changed = topic(created_at=T0 + 50, updated_at=T0 + 50, subscriptions=[], display_name=None)
    assert store.upsert_topic(changed) is False
    assert store.get_topic(P, "alerts") == replace(changed, created_at=T0)

    assert [t.name for t in store.list_topics(P)] == ["alerts", "audit"]
    assert [t.name for t in store.list_topics(OTHER)] == ["alerts"]
    assert store.list_topics("nobody") == []
    assert store.get_topic(OTHER, "audit") is None
    assert store.delete_topic(OTHER, "audit") is False

    assert store.delete_topic(P, "alerts") is True
    assert store.delete_topic(P, "alerts") is False
    assert store.get_topic(P, "alerts") is None
    assert store.get_topic(OTHER, "alerts") == topic(principal=OTHER)
    assert [t.name for t in store.list_topics(P)] == ["audit"]


# -- routing ----------------------------------------------------------------------------------
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


def test_settled_deliveries_past_retention_are_deleted_by_status(store: Store) -> None:
    store.add_deliveries(
        [
            delivery("old-done", status="DELIVERED", updated_at=T0 + 1),
            delivery("new-done", status="DELIVERED", updated_at=T0 + 100),
            delivery("old-dead", status="DEAD", updated_at=T0 + 1),
            delivery("old-pending", status="PENDING", updated_at=T0 + 1),
        ]
    )
    assert store.delete_deliveries_before("DELIVERED", T0 + 50) == 1
    assert store.delete_deliveries_before("DELIVERED", T0 + 50) == 0
    assert store.get_delivery("old-done") is None
    assert store.get_delivery("new-done") is not None
    assert store.get_delivery("old-dead") is not None  # dead letters have their own retention
    assert store.delete_deliveries_before("DEAD", T0 + 50, limit=10) == 1
    # pending work is never deleted, whatever is asked
    assert store.delete_deliveries_before("PENDING", T0 + 10**9) == 0
    assert store.get_delivery("old-pending") is not None


def test_add_deliveries_is_idempotent(store: Store) -> None:
    payloads: list[Any] = [{"a": {"b": [1, 2]}}, [1, "two", None], "text", 3.5, None, True]
    made = [delivery(f"d{n}", created=T0 + n, payload=p) for n, p in enumerate(payloads)]
    store.add_deliveries(made)
    store.add_deliveries(made)
    store.add_deliveries([replace(made[0], payload={"changed": True})])
    store.add_deliveries([])
    assert len(store.list_deliveries(P)) == len(payloads)
    for d in made:
        assert stored(store, d.id) == d
    assert store.get_delivery("missing") is None


# -- delivering -------------------------------------------------------------------------------
def test_claim_only_due_deliveries_oldest_first_under_an_exclusive_lease(store: Store) -> None:
    store.add_deliveries(
        [
            delivery("late", due=T0 + 100),
            delivery("second", due=T0 + 5),
            delivery("first", due=T0),
            delivery("done", due=T0, status="DELIVERED", delivered_at=T0),
            delivery("dead", due=T0, status="DEAD"),
        ]
    )
    assert store.claim_deliveries("w1", 10, LEASE, T0 - 1) == []  # nothing due yet
    assert ids(store.claim_deliveries("w1", 1, LEASE, T0 + 10)) == ["first"]
    assert ids(store.claim_deliveries("w1", 10, LEASE, T0 + 10)) == ["second"]
    assert store.claim_deliveries("w2", 10, LEASE, T0 + 11) == []  # all leased by w1
    # the lease runs out (T0 + 40): someone else may take them, the old owner may not finish
    assert ids(store.claim_deliveries("w2", 10, LEASE, T0 + 41)) == ["first", "second"]
    assert store.finish_delivery("first", "w1", status="DELIVERED", now=T0 + 42) is False
    assert stored(store, "first").attempts == 0
    assert store.finish_delivery("first", "w2", status="DELIVERED", now=T0 + 42) is True
    assert store.claim_deliveries("w3", 10, LEASE, T0 + 70) == []  # w2 holds "second" to T0+71
    assert ids(store.claim_deliveries("w3", 10, LEASE, T0 + 100)) == ["second", "late"]


def test_finish_delivery_delivered_retry_and_dead(store: Store) -> None:
    store.add_deliveries([delivery("ok"), delivery("flaky", due=T0 + 1)])
    assert ids(store.claim_deliveries("w1", 10, LEASE, T0 + 2)) == ["ok", "flaky"]
    assert store.finish_delivery("ok", "w2", status="DELIVERED", now=T0 + 3) is False

    assert store.finish_delivery("ok", "w1", status="DELIVERED", now=T0 + 3) is True
    ok = stored(store, "ok")
    assert (ok.status, ok.attempts, ok.delivered_at, ok.last_error) == (
        "DELIVERED",
        1,
        T0 + 3,
        None,
    )
    assert ok.updated_at == T0 + 3
    assert store.finish_delivery("ok", "w1", status="DELIVERED", now=T0 + 4) is False  # released
    assert stored(store, "ok").attempts == 1

    # a failed attempt: PENDING again, due later, the error kept, not claimable before
    err = {"code": "http_status", "message": "503 Service Unavailable", "details": {"status": 503}}
    assert store.finish_delivery(
        "flaky", "w1", status="PENDING", now=T0 + 3, next_attempt_at=T0 + 60, error=err
    )
    flaky = stored(store, "flaky")
    assert (flaky.status, flaky.attempts, flaky.next_attempt_at) == ("PENDING", 1, T0 + 60)
    assert flaky.last_error == err and flaky.delivered_at is None
    assert store.claim_deliveries("w2", 10, LEASE, T0 + 59) == []
    assert ids(store.claim_deliveries("w2", 10, LEASE, T0 + 60)) == ["flaky"]
    err2 = {"code": "timeout", "message": "no answer in 10 s", "details": {}}
    assert store.finish_delivery(
        "flaky", "w2", status="PENDING", now=T0 + 61, next_attempt_at=T0 + 120, error=err2
    )
    assert ids(store.claim_deliveries("w3", 10, LEASE, T0 + 120)) == ["flaky"]

    # the last attempt fails: DEAD, never claimed again
    assert store.finish_delivery("flaky", "w3", status="DEAD", now=T0 + 121, error=err)
    dead = stored(store, "flaky")
    assert (dead.status, dead.attempts, dead.last_error) == ("DEAD", 3, err)
    assert dead.next_attempt_at == T0 + 120  # not given: unchanged
    assert store.claim_deliveries("w4", 10, LEASE, T0 + 100_000) == []


def test_redrive_a_dead_delivery(store: Store) -> None:
    store.add_deliveries([delivery("d1"), delivery("d2")])
    store.claim_deliveries("w1", 10, LEASE, T0)
    err = {"code": "http_status", "message": "410 Gone", "details": {}}
    assert store.finish_delivery("d1", "w1", status="DEAD", now=T0 + 1, error=err)
    assert store.finish_delivery("d2", "w1", status="DELIVERED", now=T0 + 1)

    assert store.redrive_delivery(OTHER, "d1", T0 + 10) is False  # not theirs
    assert store.redrive_delivery(P, "d2", T0 + 10) is False  # not dead
    assert store.redrive_delivery(P, "missing", T0 + 10) is False
    assert stored(store, "d1").status == "DEAD"

    assert store.redrive_delivery(P, "d1", T0 + 10) is True
    d1 = stored(store, "d1")
    assert (d1.status, d1.attempts, d1.next_attempt_at, d1.last_error) == (
        "PENDING",
        0,
        T0 + 10,
        None,
    )
    assert d1.updated_at == T0 + 10
    assert store.redrive_delivery(P, "d1", T0 + 11) is False  # pending now
    assert store.claim_deliveries("w2", 10, LEASE, T0 + 9) == []
    assert ids(store.claim_deliveries("w2", 10, LEASE, T0 + 10)) == ["d1"]
    assert store.finish_delivery("d1", "w2", status="DELIVERED", now=T0 + 12)
    assert stored(store, "d1").attempts == 1


def test_list_deliveries_newest_first_by_status(store: Store) -> None:
    store.add_deliveries(
        [
            delivery("a", created=T0),
            delivery("b", created=T0 + 2),
            delivery("c", created=T0 + 1, status="DEAD"),
            delivery("d", created=T0 + 2, status="DEAD"),  # same time as b: id breaks the tie
            delivery("e", created=T0 + 3, status="DELIVERED"),
            delivery("z", created=T0 + 9, principal=OTHER),
        ]
    )
    assert ids(store.list_deliveries(P)) == ["e", "d", "b", "c", "a"]
    assert ids(store.list_deliveries(P, limit=2)) == ["e", "d"]
    assert ids(store.list_deliveries(P, status="DEAD")) == ["d", "c"]
    assert ids(store.list_deliveries(P, status="PENDING")) == ["b", "a"]
    assert ids(store.list_deliveries(P, status="DELIVERED")) == ["e"]
    assert ids(store.list_deliveries(OTHER)) == ["z"]
    assert store.list_deliveries("nobody") == []


# -- PostgreSQL: a commit whose answer was lost -----------------------------------------------
@contextmanager
def answer_lost(monkeypatch: pytest.MonkeyPatch, st: PostgresStore) -> Iterator[None]:
    """The next transaction commits, then fails as if the connection dropped (so it is retried)."""
    real = st._pool.connection
    left = [1]

    @contextmanager
    def flaky(*args: Any, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
        with real(*args, **kwargs) as conn:
            yield conn
        if left[0] > 0:
            left[0] -= 1
            raise psycopg.OperationalError("injected: connection lost after COMMIT")

    with monkeypatch.context() as m:
        m.setattr(st._pool, "connection", flaky)
        yield
    assert left[0] == 0, "the injected failure happened"


@pytest.fixture
def pg_store(pg_template: str) -> Iterator[PostgresStore]:
    """Only the PostgreSQL store retries lost connections: a PostgreSQL store alone."""
    with pgtools.fresh_database(pg_template) as url:
        st = PostgresStore(url)
        yield st
        st.close()


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


# -- the stores drifted here once (issue 9): each case failed on one of them ----------------------
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


def test_a_finish_is_refused_once_the_delivery_left_pending(store: Store, store_url: str) -> None:
    store.add_deliveries([delivery("d1")])
    assert ids(store.claim_deliveries("w1", 10, LEASE, T0)) == ["d1"]
    # settled meanwhile by another path while w1 still holds the lease
    behind_the_store(store_url, "UPDATE deliveries SET status = 'DEAD' WHERE id = 'd1'")
    assert store.finish_delivery("d1", "w1", status="DELIVERED", now=T0 + 1) is False
    d1 = stored(store, "d1")
    assert (d1.status, d1.attempts, d1.delivered_at) == ("DEAD", 0, None)


def test_an_event_routed_meanwhile_is_not_routed_again(store: Store, store_url: str) -> None:
    store.put_events([event("e1")])
    assert [e.id for e in store.claim_events("bus-1", 10, LEASE, T0)] == ["e1"]
    # routed by another path while bus-1 still holds the lease
    behind_the_store(store_url, f"UPDATE events SET routed_at = {T0 + 1} WHERE id = 'e1'")
    assert store.route_event("e1", "bus-1", [delivery("d1")], T0 + 2) is False
    assert store.list_deliveries(P) == []
    (stored_event,) = store.list_events(P)
    assert stored_event.routed_at == T0 + 1


def test_a_redrive_during_a_delivery_takes_the_delivery_from_its_old_deliverer(
    store: Store, store_url: str
) -> None:
    store.add_deliveries([delivery("d1")])
    assert ids(store.claim_deliveries("w1", 10, LEASE, T0)) == ["d1"]
    # declared dead by another path while w1 is still attempting it
    behind_the_store(store_url, "UPDATE deliveries SET status = 'DEAD' WHERE id = 'd1'")
    assert store.redrive_delivery(P, "d1", T0 + 1) is True
    # due at once, for anyone: the old attempt's lease went with the redrive
    assert ids(store.claim_deliveries("w2", 10, LEASE, T0 + 1)) == ["d1"]
    assert store.finish_delivery("d1", "w1", status="DELIVERED", now=T0 + 2) is False
    assert store.finish_delivery("d1", "w2", status="DELIVERED", now=T0 + 2) is True
    d1 = stored(store, "d1")
    assert (d1.status, d1.attempts) == ("DELIVERED", 1)


def test_two_claimers_never_get_the_same_event_or_delivery(store: Store) -> None:
    store.put_events([event(f"e{n:02}", at=T0 + n) for n in range(40)])
    store.add_deliveries([delivery(f"d{n:02}", due=T0 + n) for n in range(40)])
    # a second store object on the same state stands for a second process
    other = type(store)(store.url)
    got: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def claim(who: str, st: Store) -> None:
        try:
            barrier.wait(5)
            for _ in range(10):
                got[who] += [e.id for e in st.claim_events(who, 3, LEASE, T0 + 100)]
                got[who] += ids(st.claim_deliveries(who, 3, LEASE, T0 + 100))
        except BaseException as exc:
            failures.append(exc)

    try:
        threads = [
            threading.Thread(target=claim, args=(w, s)) for w, s in [("a", store), ("b", other)]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    assert not failures
    claimed = got["a"] + got["b"]
    assert len(claimed) == len(set(claimed)) == 80  # each exactly once, all of them
