"""The PostgreSQL store against a real server: races, lost connections, cross-process wake-ups.

The behaviour both stores share is tested in the contract suite, ``tests/unit/store/``; this file
covers what only a shared, networked database brings. Each test gets a fresh database cloned
from a template migrated once per session.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import pgtools
from helpers import wait_for
from sqltide import errors
from sqltide.store import SessionRecord, StatementRecord, StatementStatus, store_from_url
from sqltide.store.migrations import migration_files
from sqltide.store.pg_wakeups import PostgresNotifyTransport
from sqltide.store.postgres import PostgresStore
from sqltide.store.wakeups import Notifier

T0 = 1_000_000.0
LEASE = 30.0
S = StatementStatus


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = pgtools.create_database(prefix="sqltide_tpl")
    try:
        st = PostgresStore(pgtools.url_for(name))
        st.migrate()
        st.close()
        yield name
    finally:
        pgtools.drop_database(name)


@pytest.fixture
def db_url(pg_template: str) -> Iterator[str]:
    with pgtools.fresh_database(pg_template) as url:
        yield url


@pytest.fixture
def stores(db_url: str) -> Iterator[Callable[..., PostgresStore]]:
    """Opens PostgresStores on the test's database (each its own pool: a process each)."""
    opened: list[PostgresStore] = []

    def open_store(url: str = db_url) -> PostgresStore:
        st = PostgresStore(url)
        opened.append(st)
        return st

    yield open_store
    for st in opened:
        st.close()


def stmt(
    *, principal: str = "alice", client_token: str | None = None, session_id: str | None = None
) -> StatementRecord:
    return StatementRecord(
        id=str(uuid.uuid4()),
        principal=principal,
        warehouse="default",
        status=S.SUBMITTED,
        query_string="SELECT 1",
        created_at=T0,
        updated_at=T0,
        client_token=client_token,
        session_id=session_id,
    )


def run_threads(n: int, target: Callable[[int], None], timeout: float = 30.0) -> None:
    """Run ``target(i)`` on ``n`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            target(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if failures:
        raise failures[0]


def terminate_backends(url: str) -> int:
    """Kill every server connection to ``url``'s database; returns how many were killed."""
    dbname = urlsplit(url).path.lstrip("/")
    with pgtools.admin() as con:
        pids = [
            pid
            for (pid,) in con.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
        ]
        con.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        wait_for(
            "the killed connections to be gone",
            lambda: (
                con.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchone()
                == (0,)
            ),
        )
    return len(pids)


# -- concurrency ----------------------------------------------------------------------------------
def test_concurrent_claims_from_many_threads_and_stores(
    stores: Callable[..., PostgresStore],
) -> None:
    setup = stores()
    ids = set()
    for i in range(300):
        rec = stmt()
        rec.created_at = T0 + i
        setup.create_statement(rec, now=T0)
        ids.add(rec.id)
    claimers = [stores() for _ in range(3)]  # three "processes", three threads each
    got: list[list[str]] = [[] for _ in range(9)]

    def claim(i: int) -> None:
        st = claimers[i % 3]
        while True:
            claimed = st.claim_statements(["default"], f"w{i}", random.randint(1, 7), LEASE, T0)
            if not claimed:
                return
            got[i].extend(c.id for c in claimed)

    run_threads(9, claim)
    all_claims = [sid for ids_of_one in got for sid in ids_of_one]
    assert len(all_claims) == len(ids)
    assert set(all_claims) == ids  # every statement exactly once
    assert sum(1 for g in got if g) > 1, "the work was shared"
    for i, claimed in enumerate(got):
        for sid in claimed:
            rec = setup.get_statement(sid)
            assert rec is not None and rec.status is S.PICKED and rec.lease_owner == f"w{i}"


@pytest.mark.parametrize("max_active", [None, 100], ids=["unique-index", "principal-lock"])
def test_client_token_race_has_one_winner(
    stores: Callable[..., PostgresStore], max_active: int | None
) -> None:
    pool = [stores() for _ in range(4)]
    results: list[tuple[StatementRecord, bool]] = []

    def create(i: int) -> None:
        results.append(
            pool[i % 4].create_statement(
                stmt(client_token="tok"), max_active=max_active, now=T0 + i
            )
        )

    run_threads(12, create)
    winners = [rec for rec, created in results if created]
    assert len(winners) == 1
    assert {rec.id for rec, _ in results} == {winners[0].id}
    assert _count_by_token(pool[0], "tok") == 1


def _count_by_token(st: PostgresStore, token: str) -> int:
    with psycopg.connect(st.url) as con:
        row = con.execute(
            "SELECT count(*) FROM statements WHERE client_token = %s", (token,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_max_active_holds_under_concurrent_submits(stores: Callable[..., PostgresStore]) -> None:
    pool = [stores() for _ in range(4)]
    outcomes: list[str] = []

    def create(i: int) -> None:
        try:
            pool[i % 4].create_statement(stmt(), max_active=3, now=T0)
            outcomes.append("created")
        except errors.TooManyRequests:
            outcomes.append("refused")

    run_threads(12, create)
    assert outcomes.count("created") == 3
    assert outcomes.count("refused") == 9


def test_one_statement_at_a_time_in_a_session_under_concurrent_submits(
    stores: Callable[..., PostgresStore],
) -> None:
    pool = [stores() for _ in range(4)]
    sess = SessionRecord(str(uuid.uuid4()), "alice", "default", 60, T0, T0 + 60)
    first = stmt(session_id=sess.id)
    pool[0].create_statement(first, new_session=sess, now=T0)
    pool[0].request_cancel(first.id, T0)  # ended: the session is idle
    outcomes: list[str] = []

    def create(i: int) -> None:
        try:
            pool[i % 4].create_statement(stmt(session_id=sess.id), now=T0 + 1)
            outcomes.append("created")
        except errors.SessionBusy:
            outcomes.append("busy")

    run_threads(12, create)
    assert outcomes.count("created") == 1
    assert outcomes.count("busy") == 11


def test_concurrent_migrations_apply_each_once() -> None:
    with pgtools.fresh_database() as url:
        pool = [PostgresStore(url) for _ in range(4)]
        applied: list[list[str]] = [[] for _ in pool]

        def migrate(i: int) -> None:
            applied[i] = pool[i].migrate()

        try:
            run_threads(4, migrate)
        finally:
            for st in pool:
                st.close()
        assert sorted(map(len, applied))[:-1] == [0, 0, 0]
        assert max(applied, key=len) == [name for _, name, _ in migration_files("postgres")]


# -- lost connections -----------------------------------------------------------------------------
def test_a_call_after_the_connections_were_killed_succeeds_after_a_retry(
    stores: Callable[..., PostgresStore], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    st = stores()
    rec = stmt()
    st.create_statement(rec, now=T0)
    assert terminate_backends(db_url) >= 1
    with caplog.at_level(logging.WARNING, logger="sqltide.store.postgres"):
        got = st.get_statement(rec.id)
        assert got is not None and got.id == rec.id
        (claimed,) = st.claim_statements(["default"], "w1", 5, LEASE, T0)
    assert claimed.id == rec.id
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all(r.levelno == logging.WARNING for r in retries)


def test_work_goes_on_while_connections_are_killed(
    stores: Callable[..., PostgresStore], db_url: str
) -> None:
    st = stores()
    created: list[str] = []
    claimed: list[str] = []
    done = threading.Event()

    def work(i: int) -> None:
        while not done.is_set():
            if i % 2:
                rec = stmt(client_token=str(uuid.uuid4()))
                st.create_statement(rec, now=T0)
                created.append(rec.id)
            else:
                claimed.extend(
                    c.id for c in st.claim_statements(["default"], f"w{i}", 2, LEASE, T0)
                )

    def chaos(_: int) -> None:
        try:
            for _round in range(3):
                wait_for("some work", lambda n=len(created): len(created) > n + 5, timeout=30)
                terminate_backends(db_url)
        finally:
            done.set()

    run_threads(5, lambda i: chaos(i) if i == 4 else work(i), timeout=60)
    assert len(claimed) == len(set(claimed)), "no statement was handed out twice"
    assert len(created) == len(set(created)), "no statement was created twice"
    assert set(claimed) <= set(created)
    # nothing lost: what was not handed out is still waiting, or is PICKED by a claim whose
    # answer was lost (it comes back when that lease expires)
    for sid in set(created) - set(claimed):
        rec = st.get_statement(sid)
        assert rec is not None and rec.status in (S.SUBMITTED, S.PICKED), rec


@contextmanager
def answers_lost(
    monkeypatch: pytest.MonkeyPatch, st: PostgresStore, times: int = 1
) -> Iterator[None]:
    """The next ``times`` transactions commit, then fail as if the connection dropped."""
    real = st._pool.connection
    left = [times]

    @contextmanager
    def flaky(*args: Any, **kwargs: Any) -> Iterator[psycopg.Connection]:
        with real(*args, **kwargs) as conn:
            yield conn
        if left[0] > 0:
            left[0] -= 1
            raise psycopg.OperationalError("injected: connection lost after COMMIT")

    with monkeypatch.context() as m:
        m.setattr(st._pool, "connection", flaky)
        yield
    assert left[0] == 0, "every injected failure happened"


def test_writes_whose_commit_answer_was_lost_report_success(
    stores: Callable[..., PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    st = stores()
    rec = stmt(client_token="once")
    with answers_lost(monkeypatch, st):
        assert st.create_statement(rec, now=T0) == (rec, True)
    assert _count_by_token(st, "once") == 1

    (claimed,) = st.claim_statements(["default"], "w1", 5, LEASE, T0 + 1)
    assert claimed.id == rec.id
    with answers_lost(monkeypatch, st):
        assert st.start_statement(rec.id, "w1", T0 + 2)
    with answers_lost(monkeypatch, st):
        assert st.request_cancel(rec.id, T0 + 3).cancel_requested
    fields = {"status": S.ABORTED, "ended_at": T0 + 4, "updated_at": T0 + 4}
    with answers_lost(monkeypatch, st):
        assert st.finish_statement(rec.id, "w1", fields, T0 + 4)
    got = st.get_statement(rec.id)
    assert got is not None and got.status is S.ABORTED and got.lease_owner is None
    assert not st.finish_statement(rec.id, "w1", fields, T0 + 4)  # not a retry: ended already

    queued = stmt()
    st.create_statement(queued, now=T0)
    with answers_lost(monkeypatch, st):
        assert st.request_cancel(queued.id, T0 + 5).status is S.ABORTED
    with pytest.raises(errors.InvalidState):  # a real second cancel is still refused
        st.request_cancel(queued.id, T0 + 6)


def test_a_claim_whose_answer_was_lost_comes_back_after_its_lease(
    stores: Callable[..., PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    st = stores()
    rec = stmt()
    st.create_statement(rec, now=T0)
    with answers_lost(monkeypatch, st):
        assert st.claim_statements(["default"], "w1", 5, LEASE, T0) == []
    got = st.get_statement(rec.id)
    assert got is not None and got.status is S.PICKED and got.lease_owner == "w1"
    # never handed out twice; recovered like any statement whose worker went quiet
    assert st.claim_statements(["default"], "w1", 5, LEASE, T0) == []
    (back,) = st.recover_statements(T0 + LEASE + 1)
    assert back.id == rec.id and back.status is S.SUBMITTED
    (again,) = st.claim_statements(["default"], "w1", 5, LEASE, T0 + LEASE + 2)
    assert again.id == rec.id and again.attempts == 2


class FlakyProxy:
    """A TCP proxy to the test server that can drop every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        self.up = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.down()
        self.server.close()


@pytest.fixture
def proxy() -> Iterator[FlakyProxy]:
    parts = urlsplit(pgtools.PG_URL)
    p = FlakyProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield p
    p.close()


def _via(proxy: FlakyProxy, url: str) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


def test_a_call_waits_out_a_server_restart(
    stores: Callable[..., PostgresStore],
    db_url: str,
    proxy: FlakyProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    st = stores(_via(proxy, db_url))
    rec = stmt()
    st.create_statement(rec, now=T0)
    caplog.set_level(logging.WARNING)
    proxy.down()  # the server goes away: connections drop, new ones fail
    result: list[StatementRecord | None] = []
    caller = threading.Thread(target=lambda: result.append(st.get_statement(rec.id)))
    caller.start()
    wait_for(
        "the call to retry, and the pool to fail to reconnect",
        lambda: (
            any("retry" in r.getMessage() for r in caplog.records)
            and sum("error connecting" in r.getMessage() for r in caplog.records) >= 2
        ),
        timeout=15,
    )
    assert caller.is_alive() and not result, "the call waits while the server is down"
    proxy.up = True  # the server is back
    back = time.monotonic()
    caller.join(15)
    assert result and result[0] is not None and result[0].id == rec.id
    assert time.monotonic() - back < 5, "used soon after the server is back"


def test_a_call_gives_up_after_the_retry_window(
    stores: Callable[..., PostgresStore], db_url: str, proxy: FlakyProxy
) -> None:
    st = stores(_via(proxy, db_url))
    st.retry_seconds = 1.0
    proxy.down()
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        st.get_statement("x")
    assert 1.0 <= time.monotonic() - started < 5.0


# -- cross-process wake-ups -----------------------------------------------------------------------
@pytest.fixture
def pair(
    stores: Callable[..., PostgresStore],
) -> Iterator[tuple[Notifier, Notifier, PostgresNotifyTransport, PostgresNotifyTransport]]:
    """Two "processes": a store, a notifier and its transport each, on one database."""
    notifiers = [Notifier(), Notifier()]
    transports = []
    for notifier in notifiers:
        transport = stores().make_transport(notifier)
        notifier.transport = transport
        transports.append(transport)
    yield notifiers[0], notifiers[1], transports[0], transports[1]
    for notifier in notifiers:
        notifier.close()  # before the stores: sending uses their pools


class Inbox:
    """What a subscriber got, thread-safely, with a wait."""

    def __init__(self, notifier: Notifier, channel: str):
        self.keys: list[str] = []
        self.cond = threading.Condition()
        notifier.subscribe(channel, self._got)

    def _got(self, key: str) -> None:
        with self.cond:
            self.keys.append(key)
            self.cond.notify_all()

    def wait_for(self, key: str, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: key in self.keys, timeout), (key, self.keys)


def test_a_publish_wakes_subscribers_in_the_other_process(
    pair: tuple[Notifier, Notifier, PostgresNotifyTransport, PostgresNotifyTransport],
) -> None:
    a, b, _, _ = pair
    inbox_a, inbox_b = Inbox(a, "work"), Inbox(b, "work")
    a.publish("work", "duck")
    inbox_b.wait_for("duck")
    assert inbox_a.keys == ["duck"]  # delivered locally at once
    # A's own notification came back to A before B's reply (one connection, commit order):
    # once A has the reply, A has provably skipped its own echo
    b.publish("work", "reply")
    inbox_a.wait_for("reply")
    assert inbox_a.keys == ["duck", "reply"]
    assert inbox_b.keys == ["duck", "reply"]


def test_a_burst_of_publishes_arrives_whole_and_in_order(
    pair: tuple[Notifier, Notifier, PostgresNotifyTransport, PostgresNotifyTransport],
) -> None:
    a, b, _, _ = pair
    inbox_b = Inbox(b, "events")
    keys = [f"p{n}" for n in range(300)]
    for key in keys:
        a.publish("events", key)
    inbox_b.wait_for(keys[-1])
    assert inbox_b.keys == keys


def test_a_publish_wakes_an_async_waiter_in_the_other_process(
    pair: tuple[Notifier, Notifier, PostgresNotifyTransport, PostgresNotifyTransport],
) -> None:
    a, b, _, _ = pair
    sid = str(uuid.uuid4())

    async def wait_in_b() -> bool:
        with b.waiter("statement", sid) as waiter:
            publisher = threading.Thread(target=a.publish, args=("statement", sid))
            publisher.start()
            woke = await waiter.wait(5)
            publisher.join()
            return woke

    started = time.monotonic()
    assert asyncio.run(wait_in_b())
    assert time.monotonic() - started < 2  # woken, not timed out


def test_the_listener_reconnects_and_catches_up(
    pair: tuple[Notifier, Notifier, PostgresNotifyTransport, PostgresNotifyTransport],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, _, tb = pair
    inbox_b = Inbox(b, "work")
    a.publish("work", "duck")
    inbox_b.wait_for("duck")
    assert tb.connections == 1 and tb.listener_pid is not None
    with pgtools.admin() as con:
        con.execute("SELECT pg_terminate_backend(%s)", (tb.listener_pid,))
    wait_for("the listener to reconnect", lambda: tb.connections == 2)
    # what may have been missed meanwhile: the warehouses it knows get a wake-up
    wait_for("a catch-up wake-up", lambda: inbox_b.keys.count("duck") == 2)
    a.publish("work", "after")
    inbox_b.wait_for("after")
    assert any("reconnecting" in r.getMessage() for r in caplog.records)


def test_a_transport_closes_promptly(stores: Callable[..., PostgresStore]) -> None:
    transport = stores().make_transport(Notifier())
    started = time.monotonic()
    transport.close()
    assert time.monotonic() - started < transport.poll_seconds
    assert not transport._thread.is_alive()


# -- start-up errors ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres@127.0.0.1:5432/sqltide_no_such_db", "does not exist"),
        ("postgres://postgres@127.0.0.1:{free}/postgres", "refused"),
        ("postgresql://nobody:s3cret@127.0.0.1:5432/postgres", 'role "nobody"'),
        ("postgresql://postgres@127.0.0.1:notaport/postgres", "port"),
        ("postgresql://postgres@127.0.0.1:5432/postgres?sslmode=sometimes", "sslmode"),
    ],
    ids=["unknown-database", "refused-port", "unknown-user", "bad-port", "bad-option"],
)
def test_unusable_urls_fail_quickly_with_a_clear_config_error(url: str, says: str) -> None:
    url = url.format(free=_free_port())
    started = time.monotonic()
    with pytest.raises(errors.ConfigError) as info:
        store_from_url(url)
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "PostgreSQL" in message and says in message
    assert "s3cret" not in message
    if "s3cret" in url:
        assert "nobody:***@" in message
