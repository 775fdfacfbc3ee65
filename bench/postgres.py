"""PostgreSQL benchmarks of issue 3 (not tests). Run: ``python bench/postgres.py``.

(d) Trivial statements per second (submit ``SELECT 1``, long-poll, fetch) with: the SQLite
    store in one process; the PostgreSQL store in one process; one API process with one and
    with two worker processes. Same load generator, same run.
(e) The store queries per second of an idle worker process over PostgreSQL.

Needs PostgreSQL (``SQLTIDE_BENCH_PG_URL``, default the local trust-auth server).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import ExitStack
from multiprocessing import Pool

import psycopg
from _common import ServerProcess, machine, report
from _lean import LeanUser, worker_process

from sqltide.keys import create_key
from sqltide.store.postgres import PostgresStore

ADMIN = os.environ.get("SQLTIDE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def new_database() -> tuple[str, str]:
    name = f"sqltide_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return name, ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def throughput(url: str, key: str, users: int = 16, seconds: float = 12.0) -> float:
    user = LeanUser(url, key)
    for _ in range(100):  # warm up
        user.select_one()
    user.close()
    with Pool(2) as pool:
        parts = pool.map(worker_process, [(url, key, users // 2, seconds)] * 2)
    return round(sum(p[0] for p in parts) / max(p[1] for p in parts), 1)


def bench_d() -> dict:
    out: dict = {"target": "PostgreSQL with two workers >= SQLite"}
    # Each process gets its own scratch DuckDB for SELECT 1; the store is what is compared.
    scratch = {"SQLTIDE_WAREHOUSE": "duckdb:///:memory:"}
    with ServerProcess(**scratch) as srv:
        out["sqlite_one_process_per_s"] = throughput(srv.url, srv.key)
    for label, workers in (
        ("postgres_one_process_per_s", 0),
        ("postgres_api_plus_1_worker_per_s", 1),
        ("postgres_api_plus_2_workers_per_s", 2),
    ):
        name, url = new_database()
        try:
            env = {**scratch, "SQLTIDE_STORE": url}
            with ExitStack() as stack:
                api = stack.enter_context(
                    ServerProcess(role="all" if workers == 0 else "api", **env)
                )
                for _ in range(workers):
                    stack.enter_context(ServerProcess(role="worker", **env))
                out[label] = throughput(api.url, api.key)
        finally:
            drop_database(name)
    return out


def bench_e(seconds: float = 20.0) -> dict:
    name, url = new_database()
    try:
        store = PostgresStore(url)
        store.migrate()
        create_key(store, "bench")
        store.close()
        env = {"SQLTIDE_STORE": url, "SQLTIDE_WAREHOUSE": "duckdb:///:memory:"}
        with ServerProcess(role="worker", **env), psycopg.connect(url, autocommit=True) as con:
            time.sleep(3)  # let start-up settle

            def commits() -> int:
                row = con.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                ).fetchone()
                assert row is not None
                return int(row[0])

            con.execute("SELECT pg_stat_clear_snapshot()")
            before = commits()
            time.sleep(seconds)
            con.execute("SELECT pg_stat_clear_snapshot()")
            after = commits()
        # our own three probe transactions are subtracted
        rate = (after - before - 3) / seconds
    finally:
        drop_database(name)
    return {
        "idle_worker_transactions_per_s": round(rate, 2),
        "window_s": seconds,
        "target": "<= 2 queries/s",
    }


def main() -> None:
    which = sys.argv[1:] or ["d", "e"]
    info = machine()
    for name in which:
        print(f"running ({name}) ...", file=sys.stderr)
        result = {"d": bench_d, "e": bench_e}[name]()
        report(f"postgres-{name}", {"machine": info, name: result})


if __name__ == "__main__":
    main()
