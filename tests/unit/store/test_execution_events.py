"""Outside events on workflow executions: callback completions and heartbeats, stops, and
the wake-ups they give a suspended or running replay."""

from __future__ import annotations

import threading

import pytest

from sqltide import errors
from sqltide.store import (
    ExecutionStatus,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Store,
)

from .conftest import LEASE, T0, WF, callback, events_of, got, leased, operation, start

X = ExecutionStatus
OP = OperationStatus


def waiting_on_callback(
    store: Store, callback_id: str = "cb-1", *, name: str = "run-1", **kw: object
) -> str:
    """An execution suspended on a callback created at ``T0``; its id."""
    ex = leased(store, name)
    update = callback(ex, callback_id, **kw)  # type: ignore[arg-type]
    assert store.checkpoint(ex.id, "w1", [update], T0)
    op = update.operation
    deadlines = [t for t in (op.callback_timeout_at, op.heartbeat_timeout_at) if t is not None]
    assert store.suspend_execution(ex.id, "w1", min(deadlines) if deadlines else None, T0)
    return ex.id


# -- completing a callback -------------------------------------------------------------------------
def test_succeed_ends_the_callback_and_wakes_the_execution(store: Store) -> None:
    eid = waiting_on_callback(store, callback_timeout_at=T0 + 600)
    assert got(store, eid).next_run_at == T0 + 600
    ex, op = store.complete_callback("cb-1", "succeed", result='{"ok": 1}', error=None, now=T0 + 5)
    assert (op.status, op.result, op.ended_at, op.updated_at) == (
        OP.SUCCEEDED,
        '{"ok": 1}',
        T0 + 5,
        T0 + 5,
    )
    assert store.get_operations(eid) == [op]
    assert ex == got(store, eid) and ex.next_run_at == T0 + 5  # due now
    last = store.get_history(eid)[-1]
    assert (last.event, last.operation_id, last.at) == ("callback_succeeded", "1", T0 + 5)
    assert [r.id for r in store.claim_executions([WF], "w2", 10, LEASE, T0 + 5)] == [eid]


def test_fail_ends_the_callback_with_its_error(store: Store) -> None:
    eid = waiting_on_callback(store)
    assert got(store, eid).next_run_at is None  # only the callback wakes it
    error = {"type": "Rejected", "message": "no", "data": None, "stack": None}
    ex, op = store.complete_callback("cb-1", "fail", result="ignored", error=error, now=T0 + 7)
    assert (op.status, op.error, op.result, op.ended_at) == (OP.FAILED, error, None, T0 + 7)
    assert ex.next_run_at == T0 + 7
    assert events_of(store, eid)[-1] == "callback_failed"


def test_an_earlier_wake_up_is_kept(store: Store) -> None:
    ex = leased(store)
    wait = operation(ex, "1", type=OperationType.WAIT, status=OP.STARTED, wake_at=T0 + 3)
    assert store.checkpoint(
        ex.id, "w1", [callback(ex, "cb-1", "2"), OperationUpdate(wait, "w")], T0
    )
    assert store.suspend_execution(ex.id, "w1", T0 + 3, T0)
    ex2, _ = store.complete_callback("cb-1", "succeed", result=None, error=None, now=T0 + 10)
    assert ex2.next_run_at == T0 + 3


def test_heartbeat_moves_the_deadline_and_the_wake_up(store: Store) -> None:
    # heartbeat timeout 60 s, overall timeout 200 s; the execution waits for the first
    eid = waiting_on_callback(
        store, heartbeat_timeout_at=T0 + 60, callback_timeout_at=T0 + 200, updated_at=T0
    )
    assert got(store, eid).next_run_at == T0 + 60
    ex, op = store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 50)
    assert (op.status, op.heartbeat_timeout_at, op.updated_at) == (OP.STARTED, T0 + 110, T0 + 50)
    assert ex.next_run_at == T0 + 110
    assert events_of(store, eid)[-1] == "heartbeat"
    ex, op = store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 100)
    assert (op.heartbeat_timeout_at, ex.next_run_at) == (T0 + 160, T0 + 160)
    # the overall timeout bounds the wake-up
    ex, op = store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 150)
    assert (op.heartbeat_timeout_at, ex.next_run_at) == (T0 + 210, T0 + 200)
    # still completable until then
    _, op = store.complete_callback("cb-1", "succeed", result="1", error=None, now=T0 + 199)
    assert op.status is OP.SUCCEEDED


def test_heartbeat_leaves_another_wake_up_alone(store: Store) -> None:
    ex = leased(store)
    wait = operation(ex, "2", type=OperationType.WAIT, status=OP.STARTED, wake_at=T0 + 20)
    cb = callback(ex, "cb-1", "1", heartbeat_timeout_at=T0 + 60, updated_at=T0)
    assert store.checkpoint(ex.id, "w1", [cb, OperationUpdate(wait, "wait_started")], T0)
    assert store.suspend_execution(ex.id, "w1", T0 + 20, T0)
    after, op = store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 9)
    assert (op.heartbeat_timeout_at, after.next_run_at) == (T0 + 69, T0 + 20)


def test_heartbeat_without_a_heartbeat_timeout_changes_no_deadline(store: Store) -> None:
    waiting_on_callback(store, callback_timeout_at=T0 + 100)
    ex, op = store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 9)
    assert (op.heartbeat_timeout_at, op.updated_at, ex.next_run_at) == (None, T0 + 9, T0 + 100)


def test_an_unknown_callback_is_not_found(store: Store) -> None:
    waiting_on_callback(store)
    with pytest.raises(errors.CallbackNotFound) as info:
        store.complete_callback("cb-404", "succeed", result=None, error=None, now=T0)
    assert info.value.details == {"callback_id": "cb-404"}
    assert info.value.http_status == 404


@pytest.mark.parametrize(
    ("setup", "state"),
    [
        ("twice", "SUCCEEDED"),
        ("after_timeout", "TIMED_OUT"),
        ("after_heartbeat_timeout", "TIMED_OUT"),
        ("timed_out_by_replay", "TIMED_OUT"),
        ("execution_stopped", "EXECUTION_STOPPED"),
        ("execution_finished", "EXECUTION_FAILED"),
    ],
)
@pytest.mark.parametrize("outcome", ["succeed", "fail", "heartbeat"])
def test_a_callback_that_cannot_be_completed_is_a_conflict(
    store: Store, setup: str, state: str, outcome: str
) -> None:
    eid = waiting_on_callback(store, callback_timeout_at=T0 + 100, heartbeat_timeout_at=T0 + 50)
    now = T0 + 10
    if setup == "twice":
        store.complete_callback("cb-1", "succeed", result="1", error=None, now=now)
    elif setup == "after_timeout":
        store.complete_callback("cb-1", "heartbeat", result=None, error=None, now=T0 + 49)
        now = T0 + 100
    elif setup == "after_heartbeat_timeout":
        now = T0 + 50
    elif setup == "timed_out_by_replay":
        assert store.claim_executions([WF], "w2", 1, LEASE, T0 + 50)
        [op] = store.get_operations(eid)
        op.status = OP.TIMED_OUT
        assert store.checkpoint(eid, "w2", [OperationUpdate(op, "callback_timed_out")], T0 + 50)
    elif setup == "execution_stopped":
        store.stop_execution(eid, None, now)
    else:
        assert store.claim_executions([WF], "w2", 1, LEASE, T0 + 50)
        assert store.finish_execution(
            eid,
            "w2",
            X.FAILED,
            result=None,
            error={"type": "E"},
            now=T0 + 50,
            retention_seconds=60,
        )
    before = (got(store, eid), store.get_operations(eid), store.get_history(eid))
    with pytest.raises(errors.CallbackConflict) as info:
        store.complete_callback(
            "cb-1",
            outcome,
            result="2",
            error={"type": "X"},
            now=now,  # type: ignore[arg-type]
        )
    assert info.value.http_status == 409
    assert info.value.details == {
        "callback_id": "cb-1",
        "execution_id": eid,
        "operation_id": "1",
        "state": state,
    }
    assert (got(store, eid), store.get_operations(eid), store.get_history(eid)) == before


def test_a_completion_during_a_replay_is_not_lost(store: Store) -> None:
    ex = leased(store)
    assert store.checkpoint(ex.id, "w1", [callback(ex, "cb-1")], T0)
    # it completes while the replay runs: due, but leased, so not claimed
    store.complete_callback("cb-1", "succeed", result="done", error=None, now=T0 + 2)
    assert got(store, ex.id).next_run_at == T0 + 2
    assert store.claim_executions([WF], "w2", 10, LEASE, T0 + 2) == []
    # the replay read the callback as pending and asks to wait for it: due at once instead
    assert store.suspend_execution(ex.id, "w1", None, T0 + 3)
    assert got(store, ex.id).next_run_at == T0 + 2
    [again] = store.claim_executions([WF], "w2", 10, LEASE, T0 + 3)
    assert again.id == ex.id
    # a later time asked for does not win either
    assert store.checkpoint(ex.id, "w2", [callback(ex, "cb-2", "2")], T0 + 3)
    store.complete_callback("cb-2", "succeed", result=None, error=None, now=T0 + 4)
    assert store.suspend_execution(ex.id, "w2", T0 + 500, T0 + 5)
    assert got(store, ex.id).next_run_at == T0 + 4


def test_a_replay_does_not_overwrite_a_completed_callback(store: Store) -> None:
    ex = leased(store)
    update = callback(ex, "cb-1", callback_timeout_at=T0 + 10)
    assert store.checkpoint(ex.id, "w1", [update], T0)
    store.complete_callback("cb-1", "succeed", result="yes", error=None, now=T0 + 9)
    # the replay read it as pending, and settles it as timed out: the completion stands
    stale = update.operation
    stale.status = OP.TIMED_OUT
    step = operation(ex, "2")
    assert store.checkpoint(
        ex.id,
        "w1",
        [OperationUpdate(stale, "callback_timed_out"), OperationUpdate(step, "s")],
        T0 + 10,
    )
    ops = store.get_operations(ex.id)
    assert [(o.id, o.status, o.result) for o in ops] == [
        ("1", OP.SUCCEEDED, "yes"),
        ("2", OP.SUCCEEDED, None),
    ]
    assert events_of(store, ex.id)[-2:] == ["callback_succeeded", "s"]


def test_concurrent_completions_of_one_callback_succeed_once(store: Store) -> None:
    eid = waiting_on_callback(store)
    other = type(store)(store.url)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def complete(i: int) -> None:
        barrier.wait(10)
        try:
            (store if i % 2 else other).complete_callback(
                "cb-1", "succeed", result=str(i), error=None, now=T0 + 1
            )
            outcomes.append(f"ok {i}")
        except errors.CallbackConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.close()
    assert sorted(outcomes)[:5] == ["conflict"] * 5 and outcomes.count("conflict") == 5
    winner = next(o for o in outcomes if o.startswith("ok")).split()[1]
    assert store.get_operations(eid)[0].result == winner
    assert events_of(store, eid).count("callback_succeeded") == 1


# -- stopping --------------------------------------------------------------------------------------
def test_stop_ends_a_running_execution(store: Store) -> None:
    ex = leased(store, timeout_at=T0 + 1000)
    error = {"type": "Stopped", "message": "by an operator", "data": None, "stack": None}
    stopped = store.stop_execution(ex.id, error, T0 + 5)
    assert stopped == got(store, ex.id)
    assert (stopped.status, stopped.error, stopped.ended_at) == (X.STOPPED, error, T0 + 5)
    assert (stopped.lease_owner, stopped.next_run_at) == (None, None)
    assert stopped.expires_at == T0 + 5 + store.execution_retention_seconds
    assert store.get_history(ex.id)[-1].event == "execution_stopped"
    assert store.get_history(ex.id)[-1].details == {"error": error}
    # the replay running it finds out
    assert store.renew_execution_leases("w1", [ex.id], T0 + 100, T0 + 6) == [ex.id]
    assert not store.checkpoint(ex.id, "w1", [OperationUpdate(operation(ex), "x")], T0 + 6)
    assert store.time_out_executions(T0 + 2000) == []  # ended: no time-out any more
    with pytest.raises(errors.ExecutionConflict) as info:
        store.stop_execution(ex.id, None, T0 + 7)
    assert info.value.details == {"id": ex.id, "status": "STOPPED"}
    assert info.value.http_status == 409
    assert got(store, ex.id) == stopped


def test_stop_of_an_ended_or_unknown_execution(store: Store) -> None:
    ex = leased(store)
    assert store.finish_execution(
        ex.id, "w1", X.SUCCEEDED, result=None, error=None, now=T0, retention_seconds=1
    )
    with pytest.raises(errors.ExecutionConflict):
        store.stop_execution(ex.id, None, T0 + 1)
    with pytest.raises(errors.ExecutionNotFound) as info:
        store.stop_execution("nope", None, T0)
    assert info.value.http_status == 404


def test_stopping_a_child_wakes_its_parent(store: Store) -> None:
    parent = leased(store, "parent")
    assert store.suspend_execution(parent.id, "w1", None, T0)
    child = start(store, "child", created_at=T0 + 1, parent=parent, parent_operation_id="1")
    stopped = store.stop_execution(child.id, None, T0 + 2)
    assert stopped.status is X.STOPPED and stopped.error is None
    assert got(store, parent.id).next_run_at == T0 + 2


def test_find_callback_reads_the_operation_and_its_execution(store: Store) -> None:
    eid = waiting_on_callback(store, callback_timeout_at=T0 + 600)
    found = store.find_callback("cb-1")
    assert found is not None
    ex, op = found
    assert (ex.id, ex.principal, op.callback_id, op.status) == (eid, "alice", "cb-1", OP.STARTED)
    assert store.find_callback("cb-unknown") is None
