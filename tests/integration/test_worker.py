"""The worker inside a real runtime: concurrency limit, result retention, idle sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import make_settings
from sqltide import errors
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.statements.requests import StatementRequest
from sqltide.store import ExecutionRecord, ExecutionStatus, StatementRecord, StatementStatus

S = StatementStatus
LONG_SQL = "SELECT count(*) FROM range(10000000000000)"
T0 = 1_000_000.0


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self, start: float = T0):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def wait_for(what: str, check: Callable[[], object], timeout: float = 5.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)  # polling a condition with a deadline


def record(rt: Runtime, sid: str) -> StatementRecord:
    rec = rt.store.get_statement(sid)
    assert rec is not None
    return rec


def wait_status(rt: Runtime, sid: str, *statuses: StatementStatus, timeout: float = 5.0) -> None:
    wait_for(f"{sid} to be {statuses}", lambda: record(rt, sid).status in statuses, timeout)


def submit(rt: Runtime, *sqls: str, principal: str = "alice", **kw: object) -> str:
    # as an admin key would: these tests are about the worker, not about grants
    req = StatementRequest(sqls=sqls, **kw)  # type: ignore[arg-type]
    view, created = rt.statements.submit(principal, req, is_admin=True)
    assert created
    return view.record.id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    settings = make_settings(
        tmp_path,
        result_retention_seconds=600,
        # never swept by the heartbeat loop: the tests call sweep() themselves
        sweep_interval_seconds=1e12,
        # clock jumps must not make the worker's own running leases look expired
        lease_seconds=1e9,
        # results go to files, so the sweep has files to delete
        result_inline_bytes=0,
    )
    rt = Runtime.build(settings, clock=clock)
    rt.start()
    yield rt
    rt.stop()


# -- concurrency ----------------------------------------------------------------------------------
def test_worker_runs_at_most_worker_concurrency_statements(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path, worker_concurrency=2))
    rt.start()
    try:
        ids = [submit(rt, LONG_SQL) for _ in range(4)]
        max_seen = 0

        def count_running() -> int:
            nonlocal max_seen
            n = sum(record(rt, i).status in (S.PICKED, S.STARTED) for i in ids)
            max_seen = max(max_seen, n)
            return n

        def started() -> list[str]:
            count_running()
            return [i for i in ids if record(rt, i).status is S.STARTED]

        first = wait_for("two statements to start", lambda: len(started()) == 2 and started())
        assert isinstance(first, list)
        # several claim-loop rounds later, still only two are running
        assert rt.worker is not None
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert count_running() <= 2
            assert rt.worker.busy <= 2
            time.sleep(0.01)  # sampling the store over a short window
        waiting = [i for i in ids if record(rt, i).status is S.SUBMITTED]
        assert len(waiting) == 2

        # freeing one slot lets exactly one more start
        rt.statements.cancel("alice", first[0])
        wait_status(rt, first[0], S.ABORTED)
        wait_for("a third statement to start", lambda: len(started()) == 2)
        assert sum(record(rt, i).status is S.SUBMITTED for i in ids) == 1
        assert max_seen == 2

        for sid in ids:
            if not record(rt, sid).status.is_terminal:
                rt.statements.cancel("alice", sid)
        for sid in ids:
            wait_status(rt, sid, S.ABORTED)
        assert max_seen == 2
    finally:
        rt.stop()


# -- result retention -----------------------------------------------------------------------------
def test_sweep_deletes_results_past_retention(fake_runtime: Runtime, clock: FakeClock) -> None:
    rt = fake_runtime
    files = rt.settings.home_dir / "files" / "results"
    one = submit(rt, "SELECT 42 AS answer")
    batch = submit(rt, "SELECT 1 AS a", "SELECT 2 AS b", is_batch=True)
    for sid in (one, batch):
        wait_status(rt, sid, S.FINISHED, S.FAILED, S.ABORTED)
        assert record(rt, sid).status is S.FINISHED, record(rt, sid).error
        assert any(p.is_file() for p in (files / sid).rglob("*"))
    assert rt.statements.result_reader("alice", one).page().rows == [[42]]
    assert rt.statements.result_reader("alice", f"{batch}:2").page().rows == [[2]]

    assert rt.worker is not None
    clock.advance(599)
    assert rt.worker.sweep() == 0  # not past retention yet
    assert rt.statements.result_reader("alice", one).page().rows == [[42]]

    clock.advance(2)
    assert rt.worker.sweep() >= 3  # one file per result at least
    for sid in (one, batch):
        assert not (files / sid).exists()
        assert record(rt, sid).result_expired
    for sid in (one, f"{batch}:1", f"{batch}:2"):
        with pytest.raises(errors.ResultExpired) as info:
            rt.statements.result_reader("alice", sid)
        assert info.value.http_status == 410
    # the statement itself is still described
    assert rt.statements.describe("alice", one).record.status is S.FINISHED
    assert rt.worker.sweep() == 0  # nothing left to sweep

    # over HTTP it is a 410 with code result_expired
    api_key = create_key(rt.store, "alice", warehouses=["default"])[1]
    with ServerThread(rt) as srv, Client(srv.url, api_key) as client:
        with pytest.raises(errors.ResultExpired) as http_info:
            client.result_page(one)
        assert http_info.value.http_status == 410
        assert http_info.value.code == "result_expired"


def test_results_of_recent_statements_survive_a_sweep(
    fake_runtime: Runtime, clock: FakeClock
) -> None:
    rt = fake_runtime
    assert rt.worker is not None
    old = submit(rt, "SELECT 'old' AS v")
    wait_status(rt, old, S.FINISHED)
    clock.advance(500)
    new = submit(rt, "SELECT 'new' AS v")
    wait_status(rt, new, S.FINISHED)
    clock.advance(200)  # old is 700 s past its end, new 200 s
    assert rt.worker.sweep() >= 1
    with pytest.raises(errors.ResultExpired):
        rt.statements.result_reader("alice", old)
    assert rt.statements.result_reader("alice", new).page().rows == [["new"]]


def test_sweep_deletes_statement_records_past_their_retention(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(
        tmp_path,
        result_retention_seconds=600,
        statement_retention_seconds=3600,
        sweep_interval_seconds=1e12,
        lease_seconds=1e9,
        result_inline_bytes=0,
    )
    rt = Runtime.build(settings, clock=clock)
    rt.start()
    try:
        assert rt.worker is not None
        old = submit(rt, "SELECT 1 AS a", "SELECT 2 AS b", is_batch=True)
        wait_status(rt, old, S.FINISHED)
        clock.advance(3000)
        new = submit(rt, "SELECT 'new' AS v")
        wait_status(rt, new, S.FINISHED)
        clock.advance(601)  # old ended 3,601 s ago, new 601 s ago
        rt.worker.sweep()
        for gone in (old, f"{old}:1", f"{old}:2"):
            with pytest.raises(errors.StatementNotFound):
                rt.statements.describe("alice", gone)
        assert not (settings.home_dir / "files" / "results" / old).exists()
        # the newer statement is still described (its result expired after 600 s)
        assert rt.statements.describe("alice", new).record.status is S.FINISHED
        with pytest.raises(errors.ResultExpired):
            rt.statements.result_reader("alice", new)
    finally:
        rt.stop()


def test_sweep_deletes_workflow_executions_past_their_expiry(
    fake_runtime: Runtime, clock: FakeClock
) -> None:
    rt = fake_runtime
    assert rt.worker is not None
    ids = []
    for name, keep in (("old", 100.0), ("new", 1000.0)):
        rec = ExecutionRecord(
            id=f"x-{name}",
            workflow="nightly",
            name=name,
            principal="alice",
            status=ExecutionStatus.RUNNING,
            created_at=clock(),
            updated_at=clock(),
        )
        rt.store.start_execution(rec)
        assert rt.store.claim_executions(["nightly"], "test", 1, 60, clock())
        assert rt.store.finish_execution(
            rec.id,
            "test",
            ExecutionStatus.SUCCEEDED,
            result="1",
            error=None,
            now=clock(),
            retention_seconds=keep,
        )
        ids.append(rec.id)
    clock.advance(100)
    rt.worker.sweep()
    assert all(rt.store.get_execution(i) for i in ids)  # expires_at is not past yet
    clock.advance(1)
    rt.worker.sweep()
    assert rt.store.get_execution(ids[0]) is None
    assert rt.store.get_history(ids[0]) == []
    assert rt.store.get_execution(ids[1]) is not None


def test_statement_records_cannot_go_before_their_results(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least result_retention_seconds"):
        make_settings(tmp_path, result_retention_seconds=600, statement_retention_seconds=60)


# -- idle sessions --------------------------------------------------------------------------------
def test_sweep_closes_idle_sessions(fake_runtime: Runtime, clock: FakeClock) -> None:
    rt = fake_runtime
    assert rt.worker is not None
    first = submit(rt, "CREATE TEMP TABLE t AS SELECT 7 AS x", session_keep_alive_seconds=60)
    session_id = record(rt, first).session_id
    assert session_id is not None
    wait_status(rt, first, S.FINISHED, S.FAILED)
    assert record(rt, first).status is S.FINISHED, record(rt, first).error

    # within the keep-alive the session keeps its connection (and its temp table)
    clock.advance(50)
    rt.worker.sweep()
    second = submit(rt, "SELECT x FROM t", session_id=session_id)
    wait_status(rt, second, S.FINISHED, S.FAILED)
    assert record(rt, second).status is S.FINISHED, record(rt, second).error
    assert rt.statements.result_reader("alice", second).page().rows == [[7]]

    # the keep-alive counts from the end of the last statement
    clock.advance(59)
    rt.worker.sweep()
    session = rt.store.get_session(session_id)
    assert session is not None and session.closed_at is None

    clock.advance(2)
    rt.worker.sweep()
    session = rt.store.get_session(session_id)
    assert session is not None and session.closed_at == clock()
    assert session_id not in rt.worker._sessions  # its connection was closed
    with pytest.raises(errors.SessionNotFound) as info:
        rt.statements.submit(
            "alice", StatementRequest(sqls=("SELECT 1",), session_id=session_id), is_admin=True
        )
    assert info.value.http_status == 404


def test_sweep_keeps_a_session_whose_statement_runs(
    fake_runtime: Runtime, clock: FakeClock
) -> None:
    rt = fake_runtime
    assert rt.worker is not None
    sid = submit(rt, LONG_SQL, session_keep_alive_seconds=10)
    session_id = record(rt, sid).session_id
    assert session_id is not None
    wait_status(rt, sid, S.STARTED)
    clock.advance(1000)
    rt.worker.sweep()
    session = rt.store.get_session(session_id)
    assert session is not None and session.closed_at is None
    with pytest.raises(errors.SessionBusy):
        rt.statements.submit(
            "alice", StatementRequest(sqls=("SELECT 1",), session_id=session_id), is_admin=True
        )
    rt.statements.cancel("alice", sid)
    wait_status(rt, sid, S.ABORTED)
    # the keep-alive restarts when the statement ends
    rt.worker.sweep()
    session = rt.store.get_session(session_id)
    assert session is not None and session.closed_at is None
    clock.advance(11)
    rt.worker.sweep()
    session = rt.store.get_session(session_id)
    assert session is not None and session.closed_at is not None


def test_inline_results_expire_too(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(
        tmp_path, result_retention_seconds=600, sweep_interval_seconds=1e12, lease_seconds=1e9
    )
    rt = Runtime.build(settings, clock=clock)
    rt.start()
    try:
        sid = submit(rt, "SELECT 42 AS answer")
        wait_status(rt, sid, S.FINISHED)
        rec = record(rt, sid)
        assert (
            rec.result_meta is not None
            and not (settings.home_dir / "files" / "results" / sid).exists()
        )
        reader = rt.statements.result_reader("alice", sid)
        assert reader.page(None, fmt="json", max_rows=10, max_bytes=1 << 20).rows == [[42]]
        clock.advance(601)
        rt.worker.sweep()  # type: ignore[union-attr]
        assert record(rt, sid).result_meta is None
        with pytest.raises(errors.ResultExpired):
            rt.statements.result_reader("alice", sid)
    finally:
        rt.stop()
