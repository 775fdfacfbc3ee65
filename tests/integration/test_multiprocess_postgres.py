"""Real ``sqltide serve`` processes (API, workers) sharing one PostgreSQL state database.

The state database is also the warehouse ``pg``. Every process has its own home, a 0.3 s
heartbeat and a 2 s lease, so a lost worker's statements are settled within seconds.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgtools
from helpers import Receiver, ServeProcess, clean_env, run_cli, wait_for
from sqltide import errors
from sqltide.client import Client, ConnectionFailed
from sqltide.client.models import Statement
from sqltide.server import free_port

LEASE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.3

Start = Callable[..., ServeProcess]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database: the first process to start applies the migrations."""
    with pgtools.fresh_database() as url:
        yield url


@pytest.fixture
def start(tmp_path: Path, pg_url: str) -> Iterator[Start]:
    """``start(role, name, warehouse_url=None, **env)``: a ``sqltide serve --role ROLE``
    process with its own home; killed at teardown, its output printed (shown on failure)."""
    started: list[tuple[str, ServeProcess]] = []

    def _start(role: str, name: str, warehouse_url: str | None = None, **env: str) -> ServeProcess:
        full = {
            "SQLTIDE_STORE": pg_url,
            "SQLTIDE_WAREHOUSES": json.dumps({"pg": warehouse_url or pg_url}),
            "SQLTIDE_WORKER_WAREHOUSES": "pg",
            "SQLTIDE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "SQLTIDE_LEASE_SECONDS": str(LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "250",  # Rich wraps at 80 columns otherwise
            **env,
        }
        proc = ServeProcess(tmp_path / name, tmp_path / f"{name}.log", full, ["--role", role])
        started.append((name, proc))
        return proc

    yield _start
    for name, proc in started:
        proc.close()
        print(f"----- {name} (exit {proc.proc.returncode}) -----\n{proc.output()}")


def wait_worker_ready(proc: ServeProcess, timeout: float = 20.0) -> None:
    """A ``--role worker`` (or ``scheduler``) process prints ``… <role> <owner> running (…)``
    once it has started."""

    def check() -> bool:
        if proc.proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.proc.returncode}:\n{proc.output()}")
        return " running (" in proc.output()

    wait_for("the worker to start", check, timeout)


def wait_status(client: Client, sid: str, *statuses: str, timeout: float = 10.0) -> Statement:
    def check() -> Statement | None:
        st = client.describe(sid)
        return st if st.status in statuses else None

    result = wait_for(f"{sid} to be one of {statuses}", check, timeout)
    assert isinstance(result, Statement)
    return result


def run_pg(client: Client, sql: str, **kw: Any) -> Statement:
    st = client.wait(client.execute(sql, warehouse="pg", **kw).id, timeout=20)
    assert st.status == "FINISHED", st.error
    return st


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as con:
        return con.execute(sql, params).fetchall()


def assert_no_traceback(*procs: ServeProcess) -> None:
    for proc in procs:
        out = proc.output()
        assert "Traceback" not in out, out


# -- 0. wake-ups between processes --------------------------------------------------------------
def test_events_and_rule_changes_reach_a_worker_process_at_once(start: Start) -> None:
    """An event put through the API process is routed and delivered by the worker process, and
    a schedule made through the API fires on time in the scheduler process and is delivered by
    the worker: all woken by LISTEN/NOTIFY, with polling set far slower than the deadlines so
    that only a wake-up can meet them."""
    slow = {"SQLTIDE_BUS_POLL_SECONDS": "60"}
    api = start("api", "api", **slow)
    worker = start("worker", "worker", **slow)
    scheduler = start("scheduler", "scheduler", **slow)
    api.wait_healthy()
    wait_worker_ready(worker)
    wait_worker_ready(scheduler)
    receiver = Receiver()
    try:
        with api.client() as client:
            target = {"id": "hook", "kind": "webhook", "url": receiver.url}
            client.put_rule("orders", event_pattern={"source": ["shop"]}, targets=[target])
            sent = time.monotonic()
            client.put_event("shop", "Order Placed", {"order": 1})
            wait_for("the event's webhook", lambda: len(receiver.requests) == 1, timeout=5)
            assert receiver.requests[0]["at"] - sent < 5  # polling would take 60 s

            # the scheduler process re-reads its rules every 30 s unless woken
            fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            client.put_rule("soon", schedule=f"at({fire:%Y-%m-%dT%H:%M:%S})", targets=[target])
            wait_for("the schedule's webhook", lambda: len(receiver.requests) == 2, timeout=10)
            late = datetime.now(UTC) - fire
            assert late < timedelta(seconds=5), late
            body = json.loads(receiver.requests[1]["body"])
            assert body["detail-type"] == "Scheduled Event"
    finally:
        receiver.close()
    assert_no_traceback(api, worker, scheduler)


# -- 1. one API, two workers ----------------------------------------------------------------------
def test_two_workers_share_the_work_and_run_each_statement_once(start: Start, pg_url: str) -> None:
    # All three start together (their migrations serialize on the advisory lock). Each worker
    # tags its warehouse connections with its own application_name, so the rows say who ran them.
    api = start("api", "api")
    workers = {
        name: start(
            "worker",
            name,
            warehouse_url=f"{pg_url}?application_name={name}",
            SQLTIDE_WORKER_CONCURRENCY="4",
        )
        for name in ("worker-a", "worker-b")
    }
    api.wait_healthy()
    for proc in workers.values():
        wait_worker_ready(proc)

    with api.client() as client:
        run_pg(client, "CREATE TABLE runs (tag text, worker text)")
        sql = "INSERT INTO runs SELECT :tag::text, current_setting('application_name') FROM pg_sleep(0.05)"
        ids = [client.execute(sql, {"tag": f"t{n}"}, warehouse="pg").id for n in range(40)]
        for sid in ids:
            done = client.wait(sid, timeout=20)
            assert done.status == "FINISHED", done.error
            assert done.result_rows == 1

        dupes = run_pg(client, "SELECT tag, count(*) FROM runs GROUP BY tag HAVING count(*) > 1")
        assert list(client.rows(dupes.id)) == []

    tags = query(pg_url, "SELECT tag FROM runs ORDER BY tag")
    assert sorted(t for (t,) in tags) == sorted(f"t{n}" for n in range(40))
    by_worker = dict(query(pg_url, "SELECT worker, count(*) FROM runs GROUP BY worker"))
    print(f"statements run per worker: {by_worker}")
    assert set(by_worker) == {"worker-a", "worker-b"}, by_worker  # both took part
    assert sum(by_worker.values()) == 40
    # every statement was claimed exactly once and no lease is left behind
    assert query(
        pg_url,
        "SELECT count(*) FROM statements WHERE attempts <> 1 OR lease_owner IS NOT NULL",
    ) == [(0,)]
    assert all(p.proc.poll() is None for p in (api, *workers.values()))
    assert_no_traceback(api, *workers.values())


# -- 2. a worker SIGKILLed mid-statement ----------------------------------------------------------
def test_sigkilled_worker_statement_fails_worker_lost_and_the_queue_moves_to_another(
    start: Start, pg_url: str
) -> None:
    api = start("api", "api")
    worker_a = start("worker", "worker-a", SQLTIDE_WORKER_CONCURRENCY="1")
    api.wait_healthy()
    wait_worker_ready(worker_a)

    sleeping_sql = "SELECT pg_sleep(60)"

    def sleeping_backends() -> list[tuple[Any, ...]]:
        return query(
            pg_url,
            # the engine runs a SELECT as a server-side cursor: the query shown is a FETCH
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND wait_event = 'PgSleep'",
        )

    with api.client() as client:
        long = client.execute(sleeping_sql, warehouse="pg").id
        wait_status(client, long, "STARTED")
        wait_for("pg_sleep to run on the warehouse", sleeping_backends, 5)
        # the worker's only runner is busy: these wait
        quick = {
            client.execute("SELECT :n::int AS n", {"n": n}, warehouse="pg").id: n for n in range(3)
        }
        for sid in quick:
            assert client.describe(sid).status == "SUBMITTED"

        worker_a.signal(signal.SIGKILL)
        assert worker_a.wait_exit() == -signal.SIGKILL
        killed_at = time.monotonic()
        assert client.describe(long).status == "STARTED"  # nobody knows yet

        worker_b = start("worker", "worker-b")
        wait_worker_ready(worker_b)
        lost = wait_status(client, long, "FAILED", "FINISHED", "ABORTED", timeout=15)
        settled_after = time.monotonic() - killed_at
        assert lost.status == "FAILED", lost
        assert lost.error is not None and lost.error["code"] == "worker_lost", lost.error
        assert lost.ended_at is not None
        # lease (2 s) + a heartbeat or two, plus worker B's start-up
        assert settled_after < 15.0
        with pytest.raises(errors.StatementFailed):
            client.result_page(long)

        for sid, n in quick.items():
            done = client.wait(sid, timeout=10)
            assert done.status == "FINISHED", done.error
            assert list(client.rows(sid)) == [[n]]

    # The dead worker's backend: PostgreSQL notices a vanished client only when it next talks
    # to it (client_connection_check_interval is off by default), so pg_sleep(60) usually
    # keeps running after the statement is FAILED. Reported, not asserted; what matters is
    # that sqltide never runs the statement a second time.
    still = sleeping_backends()
    print(f"settled {settled_after:.2f} s after SIGKILL; backends still sleeping: {still}")
    assert len(still) <= 1
    assert query(pg_url, "SELECT attempts FROM statements WHERE id = %s", (long,)) == [(1,)]
    assert worker_b.proc.poll() is None and api.proc.poll() is None
    assert_no_traceback(api, worker_b)


# -- 3. PostgreSQL connections killed while statements flow ---------------------------------------
TRANSIENT = (ConnectionFailed, errors.InternalError, errors.WarehouseUnavailable)


def test_killed_postgres_connections_lose_nothing_and_duplicate_nothing(
    start: Start, pg_url: str
) -> None:
    server = start("all", "all")
    server.wait_healthy()
    dbname = pg_url.rsplit("/", 1)[1]
    total = 30
    submitted: dict[str, str] = {}  # client token -> statement id
    progress = threading.Condition()
    kills: list[list[str]] = []  # application_name of each backend killed, per round
    retries = 0
    killer_error: list[BaseException] = []

    def killer() -> None:
        try:
            with pgtools.admin() as admin:
                for milestone in (5, 15, 25):
                    with progress:
                        ok = progress.wait_for(lambda m=milestone: len(submitted) >= m, 30)
                    assert ok, f"submits stalled before {milestone}"
                    # in the select list, not the WHERE clause: the planner may evaluate a
                    # WHERE condition before the datname filter (killing other databases')
                    rows = admin.execute(
                        "SELECT application_name, pg_terminate_backend(pid) "
                        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (dbname,),
                    ).fetchall()
                    kills.append(sorted(name for name, killed in rows if killed))
        except BaseException as exc:  # reported by the main thread
            killer_error.append(exc)

    def submit(client: Client, n: int) -> str:
        nonlocal retries
        token = f"tok-{n}"
        deadline = time.monotonic() + 20
        while True:
            try:
                return client.execute(
                    "INSERT INTO runs SELECT :tag::text FROM pg_sleep(0.02)",
                    {"tag": token},
                    warehouse="pg",
                    client_token=token,
                ).id
            except TRANSIENT:
                retries += 1
                if time.monotonic() > deadline:
                    raise

    with server.client() as client:
        run_pg(client, "CREATE TABLE runs (tag text)")
        thread = threading.Thread(target=killer, name="killer", daemon=True)
        thread.start()
        for n in range(total):
            sid = submit(client, n)
            with progress:
                submitted[f"tok-{n}"] = sid
                progress.notify_all()
        thread.join(30)
        assert not killer_error, killer_error
        assert len(kills) == 3

        # every accepted statement ends; none stays PICKED or STARTED
        ended: dict[str, Statement] = {}
        for token, sid in submitted.items():
            st = client.wait(sid, timeout=20)
            ended[token] = st
            if st.status != "FINISHED":
                # its own warehouse connection was the one killed
                assert st.status == "FAILED", st
                assert st.error is not None and st.error["code"] == "connection_error", st.error
        # the API still answers, and new work runs
        assert client.health()["status"] == "ok"
        run_pg(client, "SELECT 1 AS one")
        # a client retrying any of its submits gets the statement it already has
        for token, sid in submitted.items():
            again = client.execute(
                "INSERT INTO runs SELECT :tag::text FROM pg_sleep(0.02)",
                {"tag": token},
                warehouse="pg",
                client_token=token,
            )
            assert again.id == sid

    # Each token is one statement (the retries were idempotent) and nothing was lost.
    rows = query(
        pg_url,
        "SELECT client_token, count(*) FROM statements WHERE client_token LIKE 'tok-%%' "
        "GROUP BY client_token",
    )
    assert dict(rows) == {f"tok-{n}": 1 for n in range(total)}
    assert len(set(submitted.values())) == total
    # Nothing ran twice; every FINISHED insert is there (a FAILED one may or may not be, if
    # the kill came after the server committed it).
    counts = dict(query(pg_url, "SELECT tag, count(*) FROM runs GROUP BY tag"))
    assert all(c == 1 for c in counts.values()), counts
    finished = {t for t, st in ended.items() if st.status == "FINISHED"}
    assert finished <= set(counts)
    assert query(
        pg_url,
        "SELECT count(*) FROM statements WHERE status IN ('SUBMITTED', 'PICKED', 'STARTED')",
    ) == [(0,)]
    failed = sorted(t for t, st in ended.items() if st.status != "FINISHED")
    print(
        f"killed per round: {kills}; submit retries: {retries}; failed: {failed}; "
        f"failed but committed: {sorted(set(failed) & set(counts))}"
    )
    assert server.proc.poll() is None
    assert_no_traceback(server)


# -- 4. an unusable store ----------------------------------------------------------------------
@pytest.mark.parametrize("role", ["all", "worker", "scheduler"])
@pytest.mark.parametrize(
    ("which", "says"),
    [("refused", "Connection refused"), ("unknown_db", "does not exist")],
)
def test_serve_with_an_unusable_store_exits_1_with_a_clear_message(
    tmp_path: Path, role: str, which: str, says: str
) -> None:
    if which == "refused":
        url = "postgresql://postgres@127.0.0.1:1/x"
    else:
        url = pgtools.url_for(f"sqltide_missing_{uuid.uuid4().hex[:8]}")
    env = clean_env(SQLTIDE_HOME=str(tmp_path / "home"), SQLTIDE_STORE=url)
    began = time.monotonic()
    done = run_cli("serve", "--role", role, "--port", str(free_port()), env=env, timeout=30)
    elapsed = time.monotonic() - began
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert elapsed < 10.0, out
    assert "Traceback" not in out, out
    said = " ".join(out.split())  # Rich wraps long lines
    assert said.startswith("error (config_error): cannot connect to the PostgreSQL store"), out
    assert says in said, out
