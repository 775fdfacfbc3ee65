"""Real ``sqltide serve`` processes killed and restarted on the same home."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import ServeProcess, wait_for
from sqltide import errors
from sqltide.client import Client
from sqltide.client.models import Statement

LONG_SQL = "SELECT count(*) FROM range(10000000000000)"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(**env: str) -> ServeProcess:
        proc = ServeProcess(tmp_path / "home", tmp_path / f"serve-{len(started)}.log", env)
        started.append(proc)
        proc.wait_healthy()
        return proc

    yield start
    for proc in started:
        proc.close()


def assert_clean_exit(proc: ServeProcess) -> None:
    """A SIGTERM'd server shuts down gracefully: uvicorn runs the lifespan shutdown, then
    re-raises the signal it caught, so the exit status is 0 or "terminated by SIGTERM"."""
    code = proc.wait_exit()
    out = proc.output()
    assert code in (0, -signal.SIGTERM), out
    assert "Traceback" not in out and "ERROR" not in out, out


def wait_status(client: Client, sid: str, *statuses: str, timeout: float = 10.0) -> Statement:
    def check() -> Statement | None:
        st = client.describe(sid)
        return st if st.status in statuses else None

    result = wait_for(f"{sid} to be one of {statuses}", check, timeout)
    assert isinstance(result, Statement)
    return result


def test_sigkill_fails_the_running_statement_and_runs_the_queued_ones(
    serve: Callable[..., ServeProcess],
) -> None:
    first = serve(SQLTIDE_WORKER_CONCURRENCY="1")
    with first.client() as client:
        long = client.execute(LONG_SQL).id
        wait_status(client, long, "STARTED")
        queued = {
            client.execute("SELECT 42 AS answer").id: [[42]],
            client.execute("SELECT sum(x)::BIGINT AS s FROM range(10) t(x)").id: [[45]],
            client.execute("SELECT 'a' AS v UNION ALL SELECT 'b' ORDER BY v").id: [["a"], ["b"]],
        }
        batch = client.batch(["CREATE TABLE kept AS SELECT 1 AS k", "SELECT k + 1 FROM kept"]).id
        for sid in [*queued, batch]:
            assert client.describe(sid).status == "SUBMITTED"
    first.signal(signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL

    second = serve(SQLTIDE_WORKER_CONCURRENCY="1")
    with second.client() as client:
        # settled at start-up, not after the 30 s lease
        lost = client.describe(long)
        assert time.monotonic() - second.started_at < 15.0
        assert lost.status == "FAILED", lost
        assert lost.error is not None and lost.error["code"] == "worker_lost"
        assert lost.ended_at is not None
        with pytest.raises(errors.StatementFailed):
            client.result_page(long)

        for sid, rows in queued.items():
            done = client.wait(sid, timeout=10)
            assert done.status == "FINISHED", done.error
            assert list(client.rows(sid)) == rows
        done = client.wait(batch, timeout=10)
        assert done.status == "FINISHED", done.error
        assert [s.status for s in done.sub_statements] == ["FINISHED", "FINISHED"]
        assert list(client.rows(f"{batch}:2")) == [[2]]
    second.signal(signal.SIGTERM)
    assert_clean_exit(second)


def test_sigterm_stops_cleanly_and_a_restart_sees_everything(
    serve: Callable[..., ServeProcess],
) -> None:
    first = serve()
    with first.client() as client:
        made = client.batch(
            ["CREATE TABLE t AS SELECT range AS x FROM range(5)", "INSERT INTO t VALUES (100)"]
        ).id
        ids = [made] + [client.execute(f"SELECT {n} AS n").id for n in range(3)]
        for sid in ids:
            assert client.wait(sid, timeout=10).status == "FINISHED"
        session_id = client.execute("SELECT 1", session_keep_alive_seconds=60).session_id
    first.signal(signal.SIGTERM)
    assert_clean_exit(first)

    second = serve()
    with second.client() as client:
        for sid in ids:
            assert client.describe(sid).status == "FINISHED"
        for n, sid in enumerate(ids[1:]):
            assert list(client.rows(sid)) == [[n]]
        listed = {s.id: s.status for s in client.list(max_results=100)}
        assert {listed[sid] for sid in ids} == {"FINISHED"}
        total = client.execute("SELECT count(*), sum(x)::BIGINT FROM t").id
        assert client.wait(total, timeout=10).status == "FINISHED"
        assert list(client.rows(total)) == [[6, 110]]
        # a session lives in one process: after a restart it is gone
        assert session_id is not None
        with pytest.raises(errors.SessionNotFound):
            client.execute("SELECT 2", session_id=session_id)
    second.signal(signal.SIGTERM)
    assert_clean_exit(second)


def test_sigterm_while_a_statement_runs_fails_it_after_the_grace_period(
    serve: Callable[..., ServeProcess],
) -> None:
    first = serve(SQLTIDE_SHUTDOWN_GRACE_SECONDS="0.3")
    with first.client() as client:
        long = client.execute(LONG_SQL).id
        wait_status(client, long, "STARTED")
    first.signal(signal.SIGTERM)
    assert_clean_exit(first)

    second = serve()
    with second.client() as client:
        stopped = client.describe(long)
        assert stopped.status == "FAILED", stopped
        assert stopped.error is not None and stopped.error["code"] == "worker_shutdown"


def test_sigkill_ends_statements_queued_in_a_session_of_the_lost_process(
    serve: Callable[..., ServeProcess],
) -> None:
    first = serve(SQLTIDE_WORKER_CONCURRENCY="1")
    with first.client() as client:
        opened = client.execute(
            "CREATE TEMP TABLE tmp AS SELECT 1 AS x", session_keep_alive_seconds=60
        )
        assert client.wait(opened.id, timeout=10).status == "FINISHED"
        session_id = opened.session_id
        assert session_id is not None
        long = client.execute(LONG_SQL).id
        wait_status(client, long, "STARTED")
        # the worker is busy, so this waits in the session (which holds temp table tmp)
        queued = client.execute("SELECT x FROM tmp", session_id=session_id).id
        assert client.describe(queued).status == "SUBMITTED"
    first.signal(signal.SIGKILL)
    first.wait_exit()

    second = serve(SQLTIDE_WORKER_CONCURRENCY="1")
    with second.client() as client:
        assert client.describe(long).status == "FAILED"
        # the session's connection died with the process: what waited in it ends, and the
        # session is gone (it cannot run on a new connection that lacks its temp table)
        ended = client.wait(queued, timeout=5)
        assert ended.status == "FAILED", ended
        assert ended.error is not None and "session" in ended.error["message"]
        with pytest.raises(errors.SessionNotFound):
            client.execute("SELECT 2", session_id=session_id)
        # the server is not stuck: new work runs
        fresh = client.execute("SELECT 3 AS n").id
        assert client.wait(fresh, timeout=10).status == "FINISHED"
    second.signal(signal.SIGTERM)
    assert_clean_exit(second)
