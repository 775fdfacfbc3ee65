"""Rules and schedule firings."""

from __future__ import annotations

import threading
from dataclasses import replace

from sqltide.store import Store

from .conftest import OTHER, T0, P, event, event_ids, pattern_rule, schedule_rule


# -- rules -------------------------------------------------------------------------------------
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


# -- schedule firings --------------------------------------------------------------------------
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
