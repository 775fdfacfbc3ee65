"""Deliveries: added, claimed under a lease, finished, retried, dead-lettered, redriven."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from sqltide.store import Store

from .conftest import LEASE, OTHER, T0, P, behind_the_store, delivery, event, ids, stored


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


# -- delivering --------------------------------------------------------------------------------
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


# -- the stores drifted here once (issue 9): each case failed on one of them -------------------
def test_a_finish_is_refused_once_the_delivery_left_pending(store: Store, store_url: str) -> None:
    store.add_deliveries([delivery("d1")])
    assert ids(store.claim_deliveries("w1", 10, LEASE, T0)) == ["d1"]
    # settled meanwhile by another path while w1 still holds the lease
    behind_the_store(store_url, "UPDATE deliveries SET status = 'DEAD' WHERE id = 'd1'")
    assert store.finish_delivery("d1", "w1", status="DELIVERED", now=T0 + 1) is False
    d1 = stored(store, "d1")
    assert (d1.status, d1.attempts, d1.delivered_at) == ("DEAD", 0, None)


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
