"""Workflow executions: start, list, claim, checkpoint, suspend, finish, leases, time-outs,
history and retention. Callbacks and stops are in ``test_execution_events.py``."""

from __future__ import annotations

import json
import threading

import pytest

from sqltide.store import (
    ExecutionFilter,
    ExecutionStatus,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Store,
)

from .conftest import (
    LEASE,
    OTHER_WF,
    T0,
    WF,
    callback,
    events_of,
    execution,
    got,
    leased,
    operation,
    start,
)

X = ExecutionStatus
RETAIN = 3600.0


def _run_threads(n: int, target: object) -> list[BaseException]:
    """Run ``target(i)`` on ``n`` threads released together; the exceptions they raised."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(10)
            target(i)  # type: ignore[operator]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return failures


# -- start and read --------------------------------------------------------------------------------
def test_start_is_idempotent_on_workflow_and_name(store: Store) -> None:
    rec = execution(created_at=T0 + 5, timeout_at=T0 + 3600)
    stored, created = store.start_execution(rec)
    assert created
    assert stored.status is X.RUNNING and stored.next_run_at == T0 + 5  # due at once
    assert got(store, rec.id) == stored
    assert stored.input == rec.input and stored.timeout_at == T0 + 3600 and stored.replays == 0
    assert store.find_execution(WF, "run-1") == stored
    assert events_of(store, rec.id) == ["execution_started"]

    again, created = store.start_execution(execution(created_at=T0 + 9))
    assert not created and again == stored
    # even once it has ended, the name stays taken
    ex = store.claim_executions([WF], "w1", 1, LEASE, T0 + 10)[0]
    assert store.finish_execution(
        ex.id, "w1", X.SUCCEEDED, result="1", error=None, now=T0 + 11, retention_seconds=RETAIN
    )
    again, created = store.start_execution(execution())
    assert not created and again.id == rec.id and again.status is X.SUCCEEDED
    # the name is per workflow
    other, created = store.start_execution(execution(workflow=OTHER_WF))
    assert created and other.id != rec.id
    assert store.find_execution(WF, "run-2") is None
    assert store.get_execution("nope") is None


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-stores"])
def test_concurrent_starts_of_one_name_record_one_execution(store: Store, shared: bool) -> None:
    # two stores on one database stand for two processes
    stores = [store, store if shared else type(store)(store.url)]
    answers: list[tuple[str, bool]] = []

    def starter(i: int) -> None:
        rec, created = stores[i % 2].start_execution(execution("nightly", created_at=T0 + i))
        answers.append((rec.id, created))

    failures = _run_threads(8, starter)
    if not shared:
        stores[1].close()
    assert not failures
    assert sum(created for _, created in answers) == 1
    winner = next(i for i, created in answers if created)
    assert {i for i, _ in answers} == {winner}
    assert [r.id for r in store.list_executions(ExecutionFilter(), 100)] == [winner]
    assert events_of(store, winner) == ["execution_started"]


def test_list_executions_filters_and_pages(store: Store) -> None:
    recs = [start(store, f"r{i}", created_at=T0 + i // 2) for i in range(5)]  # pairs share a time
    bob = start(store, "b", principal="bob", created_at=T0 + 9)
    other = start(store, "o", workflow=OTHER_WF, created_at=T0 + 8)
    newest_first = sorted([*recs, other], key=lambda r: (r.created_at, r.id), reverse=True)

    alice = ExecutionFilter(principal="alice")
    assert [r.id for r in store.list_executions(alice, 100)] == [r.id for r in newest_first]
    seen: list[str] = []
    after = None
    while page := store.list_executions(alice, 2, after):
        seen += [r.id for r in page]
        after = (page[-1].created_at, page[-1].id)
    assert seen == [r.id for r in newest_first]  # ties on created_at broken by id

    everyone = store.list_executions(ExecutionFilter(), 100)
    assert {r.id for r in everyone} == {r.id for r in [*recs, bob, other]}
    by_workflow = store.list_executions(ExecutionFilter(principal="alice", workflow=OTHER_WF), 9)
    assert [r.id for r in by_workflow] == [other.id]
    window = store.list_executions(
        ExecutionFilter(principal="alice", created_after=T0 + 1, created_before=T0 + 2), 100
    )
    assert {r.id for r in window} == {recs[2].id, recs[3].id}
    claimed = store.claim_executions([WF], "w1", 1, LEASE, T0 + 10)[0]
    assert store.finish_execution(
        claimed.id,
        "w1",
        X.FAILED,
        result=None,
        error={"type": "E"},
        now=T0 + 10,
        retention_seconds=RETAIN,
    )
    failed = store.list_executions(ExecutionFilter(status=X.FAILED), 100)
    assert [r.id for r in failed] == [claimed.id]


# -- claiming --------------------------------------------------------------------------------------
def test_claim_takes_due_executions_of_loaded_workflows_oldest_first(store: Store) -> None:
    young = start(store, "young", created_at=T0 - 1)
    old = start(store, "old", created_at=T0 - 5)
    middle = start(store, "middle", created_at=T0 - 3)
    start(store, "later", created_at=T0 + 60)  # not due yet
    start(store, "elsewhere", workflow=OTHER_WF, created_at=T0 - 9)  # not loaded here

    first = store.claim_executions([WF], "w1", 2, LEASE, T0)
    assert [r.id for r in first] == [old.id, middle.id]
    for rec in first:
        assert (rec.lease_owner, rec.lease_expires_at) == ("w1", T0 + LEASE)
        assert rec.replays == 1 and rec.next_run_at is None and rec.status is X.RUNNING
        assert got(store, rec.id) == rec
    assert events_of(store, old.id) == ["execution_started", "resumed"]
    assert store.get_history(old.id)[-1].details == {"owner": "w1", "replay": 1}

    # leased ones are not claimed again; the rest is
    assert [r.id for r in store.claim_executions([WF], "w2", 10, LEASE, T0)] == [young.id]
    assert store.claim_executions([WF], "w2", 10, LEASE, T0) == []
    assert store.claim_executions([], "w2", 10, LEASE, T0 + 100) == []
    assert store.claim_executions([WF], "w2", 0, LEASE, T0 + 100) == []
    later = store.claim_executions([WF, OTHER_WF], "w2", 10, LEASE, T0 + 60)
    assert [r.name for r in later] == ["elsewhere", "later"]

    # suspended and claimed again: the replays are counted
    assert store.suspend_execution(old.id, "w1", T0 + 1, T0 + 1)
    again = store.claim_executions([WF], "w3", 10, LEASE, T0 + 1)
    assert [(r.id, r.replays, r.lease_owner) for r in again] == [(old.id, 2, "w3")]


def test_claim_skips_ended_executions(store: Store) -> None:
    ex = leased(store)
    assert store.finish_execution(
        ex.id, "w1", X.SUCCEEDED, result=None, error=None, now=T0, retention_seconds=RETAIN
    )
    assert store.claim_executions([WF], "w2", 10, LEASE, T0 + 1e6) == []


def test_an_expired_lease_is_claimed_again_once_recovered(store: Store) -> None:
    ex = leased(store, owner="w1")
    late = T0 + LEASE + 1
    # the claim cleared next_run_at: an expired lease alone does not make it due
    assert store.claim_executions([WF], "w2", 10, LEASE, late) == []
    assert store.recover_executions(late) == 1
    rec = got(store, ex.id)
    assert (rec.lease_owner, rec.lease_expires_at, rec.next_run_at) == (None, None, late)
    assert events_of(store, ex.id)[-1] == "lease_expired"
    assert store.get_history(ex.id)[-1].details == {"owner": "w1"}
    assert store.recover_executions(late) == 0
    taken = store.claim_executions([WF], "w2", 10, LEASE, late)
    assert [(r.id, r.lease_owner, r.replays) for r in taken] == [(ex.id, "w2", 2)]
    # the first worker's late writes are refused
    step = OperationUpdate(operation(ex), "succeeded")
    assert not store.checkpoint(ex.id, "w1", [step], late)
    assert not store.suspend_execution(ex.id, "w1", None, late)
    assert store.checkpoint(ex.id, "w2", [step], late)


def test_recover_leaves_live_leases_alone(store: Store) -> None:
    ex = leased(store, owner="w1")
    assert store.recover_executions(T0 + LEASE) == 0  # expires after, not at, its time
    assert got(store, ex.id).lease_owner == "w1"


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-stores"])
def test_concurrent_claims_claim_each_execution_once(store: Store, shared: bool) -> None:
    ids = {start(store, f"r{i}", created_at=T0 - i).id for i in range(120)}
    stores = [store, store if shared else type(store)(store.url)]
    got_ids: dict[int, list[str]] = {i: [] for i in range(4)}

    def claimer(i: int) -> None:
        while claimed := stores[i % 2].claim_executions([WF], f"w{i}", 3, LEASE, T0):
            got_ids[i].extend(r.id for r in claimed)

    failures = _run_threads(4, claimer)
    if not shared:
        stores[1].close()
    assert not failures
    everything = [i for claimed in got_ids.values() for i in claimed]
    assert sorted(everything) == sorted(ids)  # every one exactly once
    for i, claimed in got_ids.items():
        assert {got(store, e).lease_owner for e in claimed} <= {f"w{i}"}
    assert all(got(store, e).replays == 1 for e in ids)


# -- checkpoints -----------------------------------------------------------------------------------
def test_checkpoint_writes_operations_in_order_with_history(store: Store) -> None:
    ex = leased(store)
    step1 = operation(ex, "1", status=OperationStatus.STARTED, attempt=1, name="submit")
    wait = operation(
        ex, "2", type=OperationType.WAIT, status=OperationStatus.STARTED, wake_at=T0 + 30
    )
    assert store.checkpoint(
        ex.id,
        "w1",
        [OperationUpdate(step1, "started"), OperationUpdate(wait, "wait_started")],
        T0 + 1,
    )
    ops = store.get_operations(ex.id)
    assert [(o.id, o.seq, o.updated_at) for o in ops] == [("1", 1, T0 + 1), ("2", 2, T0 + 1)]
    assert ops[0].name == "submit" and ops[1].wake_at == T0 + 30

    # an update keeps the operation's seq; a new one comes after the others
    step1.status, step1.result, step1.ended_at = OperationStatus.SUCCEEDED, '"q-1"', T0 + 2
    step1.updated_at = T0 + 2
    child = operation(ex, "3-1", parent_id="3", error={"type": "StepError", "message": "x"})
    assert store.checkpoint(
        ex.id,
        "w1",
        [
            OperationUpdate(child, "failed", {"retry": False}),
            OperationUpdate(step1, "succeeded"),
        ],
        T0 + 2,
    )
    ops = store.get_operations(ex.id)
    assert [(o.id, o.seq) for o in ops] == [("1", 1), ("2", 2), ("3-1", 3)]
    step1.seq = 1
    child.seq, child.updated_at = 3, T0 + 2
    assert ops[0] == step1 and ops[2] == child
    history = store.get_history(ex.id)
    assert [(h.event, h.operation_id, h.attempt, h.at) for h in history[2:]] == [
        ("started", "1", 1, T0 + 1),
        ("wait_started", "2", None, T0 + 1),
        ("failed", "3-1", None, T0 + 2),
        ("succeeded", "1", 1, T0 + 2),
    ]
    assert history[4].details == {"retry": False}
    assert [h.seq for h in history] == list(range(1, 7))
    # nothing to write: only says whether the lease is still held
    assert store.checkpoint(ex.id, "w1", [], T0 + 3)
    assert not store.checkpoint(ex.id, "w2", [], T0 + 3)


def test_an_operation_is_inserted_then_updated_in_one_checkpoint(store: Store) -> None:
    ex = leased(store)
    first = operation(ex, "1", status=OperationStatus.STARTED, attempt=1)
    done = operation(ex, "1", status=OperationStatus.SUCCEEDED, attempt=1, result="7")
    assert store.checkpoint(
        ex.id, "w1", [OperationUpdate(first, "started"), OperationUpdate(done, "succeeded")], T0
    )
    [op] = store.get_operations(ex.id)
    assert (op.seq, op.status, op.result) == (1, OperationStatus.SUCCEEDED, "7")
    assert events_of(store, ex.id)[-2:] == ["started", "succeeded"]


def test_operations_of_several_executions_come_in_one_read(store: Store) -> None:
    a, b = leased(store, "a"), leased(store, "b")
    c = start(store, "c")
    assert store.checkpoint(
        b.id,
        "w1",
        [OperationUpdate(operation(b, "2"), "succeeded"), OperationUpdate(operation(b, "1"), "x")],
        T0 + 1,
    )
    assert store.checkpoint(a.id, "w1", [OperationUpdate(operation(a, "1"), "succeeded")], T0 + 2)
    found = store.get_operations_of([c.id, b.id, a.id])
    assert list(found) == [c.id, b.id, a.id]
    assert found == {i: store.get_operations(i) for i in (a.id, b.id, c.id)}
    assert [o.id for o in found[b.id]] == ["2", "1"] and found[c.id] == []
    assert store.get_operations_of([]) == {}


def test_a_checkpoint_that_fails_writes_nothing_and_the_next_one_works(store: Store) -> None:
    first, second = leased(store, "a"), leased(store, "b")
    assert store.checkpoint(first.id, "w1", [callback(first, "cb-1")], T0 + 1)
    history = events_of(store, second.id)
    # a callback id is unique: the second write fails in the middle of its transaction
    clash = [OperationUpdate(operation(second, "1"), "succeeded"), callback(second, "cb-1", "2")]
    with pytest.raises(Exception, match=r"(?i)unique"):
        store.checkpoint(second.id, "w1", clash, T0 + 2)
    assert store.get_operations(second.id) == [] and events_of(store, second.id) == history
    # the same statements again, on the store as it is after the failure
    for n in range(3):
        ok = [
            OperationUpdate(operation(second, "1"), "succeeded"),
            callback(second, f"cb-{n + 2}", "2"),
        ]
        assert store.checkpoint(second.id, "w1", ok, T0 + 3 + n)
    assert [(o.id, o.seq, o.callback_id) for o in store.get_operations(second.id)] == [
        ("1", 1, None),
        ("2", 2, "cb-4"),
    ]
    # the ended step is written once; the callback, still waiting, each time
    events = events_of(store, second.id)[len(history) :]
    assert events == ["succeeded", "callback_created", "callback_created", "callback_created"]


def test_a_checkpoint_keeps_any_text_and_time_exactly(store: Store) -> None:
    # PostgreSQL sends a checkpoint's values quoted in the query text: nothing may leak.
    ex = leased(store)
    text = "50% %s %(x)s %% ' '' \\ \\' ; COMMIT; DROP TABLE executions; -- é ☃ \x01 $1"
    error = {"type": "E'", "message": text, "data": {"k": text}, "stack": [text, "a\nb"]}
    op = operation(ex, "1", name=text, result=json.dumps(text, ensure_ascii=False), error=error)
    at = T0 + 0.123456789
    assert store.checkpoint(ex.id, "w1", [OperationUpdate(op, "succeeded", {"why": text})], at)
    [back] = store.get_operations(ex.id)
    assert (back.name, back.result, back.error, back.updated_at) == (text, op.result, error, at)
    last = store.get_history(ex.id)[-1]
    assert (last.details, last.at) == ({"why": text}, at)
    assert got(store, ex.id).status is X.RUNNING  # the text ran nothing of its own


def test_checkpoint_refuses_an_operation_of_another_execution(store: Store) -> None:
    ex = leased(store)
    stranger = operation(execution("x"))
    with pytest.raises(ValueError, match="belongs to"):
        store.checkpoint(ex.id, "w1", [OperationUpdate(stranger, "started")], T0)


@pytest.mark.parametrize("how", ["lost", "stopped", "timed_out", "past_timeout", "finished"])
def test_checkpoint_is_refused_once_the_lease_is_gone(store: Store, how: str) -> None:
    ex = leased(store, timeout_at=T0 + 100)
    now = T0 + 1
    if how == "lost":
        assert store.recover_executions(T0 + LEASE + 1) == 1
        store.claim_executions([WF], "w2", 1, LEASE, T0 + LEASE + 1)
    elif how == "stopped":
        store.stop_execution(ex.id, None, now)
    elif how == "timed_out":
        assert [r.id for r in store.time_out_executions(T0 + 100)] == [ex.id]
    elif how == "past_timeout":
        now = T0 + 100  # not timed out by the store yet, but its time has come
    else:
        assert store.finish_execution(
            ex.id, "w1", X.SUCCEEDED, result=None, error=None, now=now, retention_seconds=1
        )
    history = events_of(store, ex.id)
    before = got(store, ex.id)
    assert not store.checkpoint(ex.id, "w1", [OperationUpdate(operation(ex), "succeeded")], now)
    assert store.get_operations(ex.id) == []
    assert events_of(store, ex.id) == history
    assert not store.suspend_execution(ex.id, "w1", now + 5, now)
    assert not store.finish_execution(
        ex.id, "w1", X.SUCCEEDED, result="1", error=None, now=now, retention_seconds=1
    )
    assert got(store, ex.id) == before
    assert store.renew_execution_leases("w1", [ex.id], now + LEASE, now) == [ex.id]


# -- suspending and finishing ----------------------------------------------------------------------
def test_suspend_releases_the_lease_until_next_run_at(store: Store) -> None:
    ex = leased(store)
    assert store.suspend_execution(ex.id, "w1", T0 + 60, T0 + 1)
    rec = got(store, ex.id)
    assert (rec.lease_owner, rec.lease_expires_at, rec.next_run_at) == (None, None, T0 + 60)
    assert rec.status is X.RUNNING and rec.updated_at == T0 + 1
    assert events_of(store, ex.id)[-1] == "suspended"
    assert store.get_history(ex.id)[-1].details == {"next_run_at": T0 + 60}
    assert store.claim_executions([WF], "w2", 10, LEASE, T0 + 59) == []
    assert [r.id for r in store.claim_executions([WF], "w2", 10, LEASE, T0 + 60)] == [ex.id]
    # None: only an outside event wakes it
    assert store.suspend_execution(ex.id, "w2", None, T0 + 61)
    assert got(store, ex.id).next_run_at is None
    assert store.claim_executions([WF], "w3", 10, LEASE, T0 + 1e6) == []
    assert store.next_execution_due([WF]) is None


def test_finish_ends_the_execution(store: Store) -> None:
    ok = leased(store, "ok")
    assert store.finish_execution(
        ok.id,
        "w1",
        X.SUCCEEDED,
        result='{"rows": 3}',
        error=None,
        now=T0 + 5,
        retention_seconds=RETAIN,
    )
    rec = got(store, ok.id)
    assert (rec.status, rec.result, rec.error) == (X.SUCCEEDED, '{"rows": 3}', None)
    assert (rec.ended_at, rec.updated_at, rec.expires_at) == (T0 + 5, T0 + 5, T0 + 5 + RETAIN)
    assert (rec.lease_owner, rec.lease_expires_at, rec.next_run_at) == (None, None, None)
    assert events_of(store, ok.id)[-1] == "execution_succeeded"

    bad = leased(store, "bad")
    error = {"type": "StepError", "message": "boom", "data": None, "stack": ["a", "b"]}
    assert store.finish_execution(
        bad.id, "w1", X.FAILED, result=None, error=error, now=T0 + 6, retention_seconds=RETAIN
    )
    rec = got(store, bad.id)
    assert (rec.status, rec.error, rec.result) == (X.FAILED, error, None)
    assert store.get_history(bad.id)[-1].event == "execution_failed"
    assert store.get_history(bad.id)[-1].details == {"error": error}
    # only once, and never to RUNNING
    assert not store.finish_execution(
        bad.id, "w1", X.SUCCEEDED, result=None, error=None, now=T0 + 7, retention_seconds=1
    )
    third = leased(store, "third")
    with pytest.raises(ValueError, match="RUNNING"):
        store.finish_execution(
            third.id, "w1", X.RUNNING, result=None, error=None, now=T0, retention_seconds=1
        )


def test_a_child_that_ends_wakes_its_parent(store: Store) -> None:
    parent = leased(store, "parent")
    invoke = operation(
        parent, "1", type=OperationType.CHAINED_INVOKE, status=OperationStatus.STARTED
    )
    assert store.checkpoint(parent.id, "w1", [OperationUpdate(invoke, "started")], T0)
    child = start(store, "child", created_at=T0 + 1, parent=parent, parent_operation_id="1")
    assert store.suspend_execution(parent.id, "w1", None, T0 + 1)  # waits for the child
    [claimed] = store.claim_executions([WF], "w2", 10, LEASE, T0 + 2)
    assert claimed.id == child.id and claimed.parent_id == parent.id
    assert store.finish_execution(
        child.id, "w2", X.SUCCEEDED, result="42", error=None, now=T0 + 3, retention_seconds=1
    )
    assert got(store, parent.id).next_run_at == T0 + 3
    # the parent's operation is left for its replay to settle
    assert store.get_operations(parent.id)[0].status is OperationStatus.STARTED
    assert [r.id for r in store.claim_executions([WF], "w1", 10, LEASE, T0 + 3)] == [parent.id]


# -- leases, time-outs, what is due next ------------------------------------------------------------
def test_renew_extends_held_leases_and_names_the_rest(store: Store) -> None:
    held = leased(store, "held")
    stopped = leased(store, "stopped")
    late = leased(store, "late", timeout_at=T0 + 10)
    theirs = leased(store, "theirs", owner="w9")
    store.stop_execution(stopped.id, None, T0 + 1)
    ids = [held.id, stopped.id, late.id, theirs.id, "unknown"]
    lost = store.renew_execution_leases("w1", ids, T0 + 100, T0 + 10)
    assert lost == [stopped.id, late.id, theirs.id, "unknown"]
    assert got(store, held.id).lease_expires_at == T0 + 100
    assert got(store, theirs.id).lease_expires_at == T0 + LEASE
    assert store.renew_execution_leases("w1", [], T0 + 100, T0 + 10) == []


def test_time_out_ends_executions_past_their_timeout(store: Store) -> None:
    parent = leased(store, "parent")
    assert store.suspend_execution(parent.id, "w1", None, T0)
    child = leased(store, "child", timeout_at=T0 + 10, parent=parent, parent_operation_id="1")
    later = start(store, "later", timeout_at=T0 + 11)
    start(store, "never")
    assert store.time_out_executions(T0 + 9) == []
    [ended] = store.time_out_executions(T0 + 10)
    assert ended == got(store, child.id)
    assert (ended.status, ended.ended_at, ended.lease_owner) == (X.TIMED_OUT, T0 + 10, None)
    assert ended.error is not None and ended.error["type"] == "TimeoutError"
    assert ended.expires_at == T0 + 10 + store.execution_retention_seconds
    assert events_of(store, child.id)[-1] == "execution_timed_out"
    assert got(store, parent.id).next_run_at == T0 + 10  # woken
    assert store.time_out_executions(T0 + 10) == []
    assert [r.id for r in store.time_out_executions(T0 + 1e9)] == [later.id]


def test_next_execution_due(store: Store) -> None:
    assert store.next_execution_due([WF]) is None
    a = leased(store, "a")  # leased: its replay says when it is due next
    assert store.next_execution_due([WF]) is None
    start(store, "b", created_at=T0 + 50)
    start(store, "c", workflow=OTHER_WF, created_at=T0 + 5)
    assert store.next_execution_due([WF]) == T0 + 50
    assert store.next_execution_due([WF, OTHER_WF]) == T0 + 5
    assert store.next_execution_due([]) is None
    assert store.suspend_execution(a.id, "w1", T0 + 40, T0 + 1)
    assert store.next_execution_due([WF]) == T0 + 40
    start(store, "d", created_at=T0 + 100, timeout_at=T0 + 30)  # its time-out comes first
    assert store.next_execution_due([WF]) == T0 + 30


# -- history and retention -------------------------------------------------------------------------
def test_history_is_ordered_and_paged(store: Store) -> None:
    ex = leased(store)
    updates = [OperationUpdate(operation(ex, str(i)), "succeeded") for i in range(1, 8)]
    for i, u in enumerate(updates):
        assert store.checkpoint(ex.id, "w1", [u], T0 + i)
    everything = store.get_history(ex.id)
    assert [h.seq for h in everything] == list(range(1, 10))
    assert [h.operation_id for h in everything[2:]] == [str(i) for i in range(1, 8)]
    page = store.get_history(ex.id, after_seq=3, limit=2)
    assert [h.seq for h in page] == [4, 5]
    assert page == everything[3:5]
    assert store.get_history(ex.id, after_seq=9) == []
    assert store.get_history("unknown") == []


def test_retention_deletes_ended_executions_with_their_operations_and_history(
    store: Store,
) -> None:
    gone = []
    for i in range(3):
        ex = leased(store, f"old{i}")
        assert store.checkpoint(ex.id, "w1", [OperationUpdate(operation(ex), "succeeded")], T0)
        assert store.finish_execution(
            ex.id, "w1", X.SUCCEEDED, result=None, error=None, now=T0 + i, retention_seconds=10
        )
        gone.append(ex.id)
    kept = leased(store, "kept")
    assert store.finish_execution(
        kept.id, "w1", X.SUCCEEDED, result=None, error=None, now=T0, retention_seconds=100
    )
    running = leased(store, "running")
    assert store.checkpoint(
        running.id, "w1", [OperationUpdate(operation(running), "succeeded")], T0
    )

    assert store.delete_executions_ended_before(T0 + 10) == 0  # expires_at == T0 + 10: kept
    assert store.delete_executions_ended_before(T0 + 20, limit=2) == 2
    assert store.delete_executions_ended_before(T0 + 20) == 1
    assert store.delete_executions_ended_before(T0 + 20) == 0
    for execution_id in gone:
        assert store.get_execution(execution_id) is None
        assert store.get_operations(execution_id) == []
        assert store.get_history(execution_id) == []
    assert store.find_execution(WF, "old0") is None  # the name is free again
    assert got(store, kept.id).status is X.SUCCEEDED and store.get_history(kept.id)
    assert len(store.get_operations(running.id)) == 1
    assert store.delete_executions_ended_before(T0 + 1e12) == 1  # kept; never the running one
    assert got(store, running.id).status is X.RUNNING


def test_records_round_trip_through_the_store(store: Store) -> None:
    ex = leased(store)
    op = operation(
        ex,
        "2-1",
        type=OperationType.STEP,
        status=OperationStatus.PENDING,
        parent_id="2",
        name="poll ü",
        attempt=3,
        error={"type": "StepError", "message": "not yet", "data": '{"n": 1}', "stack": None},
        next_attempt_at=T0 + 12.5,
        started_at=T0,
        updated_at=T0 + 0.25,
    )
    assert store.checkpoint(ex.id, "w1", [OperationUpdate(op, "retry_scheduled")], T0 + 1)
    op.seq = 1
    assert store.get_operations(ex.id) == [op]
