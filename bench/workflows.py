"""Durable workflow benchmarks of issue 11 (not tests). Run: ``python bench/workflows.py [a] [b]
[--rounds N] [--stores sqlite,postgres]``.

(a) Per-step overhead: 200 executions of a workflow of 10 trivial steps, started through the
    HTTP API of a real ``sqltide serve --workflows`` process, from the first start until every
    one is SUCCEEDED (the store's ``ended_at`` of the last), divided by the 2,000 steps; and the
    server process's CPU per step over the same window. In the same run, DBOS Transact does the
    same (200 workflows x 10 trivial ``@DBOS.step`` steps, ``DBOS.start_workflow`` then every
    ``get_result``) in a subprocess of its own virtualenv (``SQLTIDE_BENCH_DBOS_PYTHON``,
    default ``/tmp/dbos-venv/bin/python``: ``python -m venv /tmp/dbos-venv &&
    /tmp/dbos-venv/bin/pip install dbos``; DBOS never enters sqltide's dependencies). Both on
    SQLite and on PostgreSQL (a fresh database per run), and the ratios.
(b) 10,000 executions suspended in a one-hour wait (``step``, ``wait``, ``step``), a
    ``--role worker`` process: its RSS, its CPU, and its store transactions per second while
    idle (PostgreSQL: ``pg_stat_database``, less the probe's own; both stores: the process's own
    count of store transactions and reads, by the launcher ``_wf_launch.py``, which wraps the
    store's two entry points and changes nothing else).
(c) The same 10,000 waits, moved to end at one moment T (their ``wake_at`` and the executions'
    ``next_run_at`` set to T in one transaction, what the waits would hold had they all been
    started to end then), resumed by that worker: lateness = when the step after the wait
    started (its checkpoint's ``started_at``) minus the wait's end, p50/p99/max.

Needs PostgreSQL for the PostgreSQL stores (``SQLTIDE_BENCH_PG_URL``, default the local
trust-auth server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
from _common import ServerProcess, machine, pct, report
from postgres import drop_database, new_database

from sqltide.store import ExecutionRecord, ExecutionStatus, store_from_url

BENCH_DIR = Path(__file__).parent
DBOS_PYTHON = os.environ.get("SQLTIDE_BENCH_DBOS_PYTHON", "/tmp/dbos-venv/bin/python")
EXECUTIONS = int(os.environ.get("SQLTIDE_BENCH_EXECUTIONS", "200"))
STEPS = 10
WARM_UP = 5

FLOWS = """
from sqltide.workflows import DurableContext, durable_execution
from sqltide.workflows.config import Duration


@durable_execution
def ten_steps(event, context: DurableContext):
    total = 0
    for i in range(10):
        total += context.step(lambda _, i=i: i, name=f"s{i}")
    return total


@durable_execution
def sleeper(event, context: DurableContext):
    context.step(lambda _: 1, name="before")
    context.wait(Duration.from_seconds(event["seconds"]), name="nap")
    context.step(lambda _: 2, name="after")
    return "woke"
"""

DBOS_SCRIPT = """
import json, os, sys, time
from dbos import DBOS, DBOSConfig

url, n, steps, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
config: DBOSConfig = {"name": "bench", "system_database_url": url, "run_admin_server": False}
DBOS(config=config)


@DBOS.step()
def trivial(i):
    return i


@DBOS.workflow()
def ten_steps(k):
    total = 0
    for i in range(steps):
        total += trivial(i)
    return total


DBOS.launch()
for h in [DBOS.start_workflow(ten_steps, -1) for _ in range(warm)]:
    h.get_result()
cpu0, t0 = time.process_time(), time.perf_counter()
handles = [DBOS.start_workflow(ten_steps, k) for k in range(n)]
results = [h.get_result() for h in handles]
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
assert results == [sum(range(steps))] * n, results[:3]
DBOS.destroy()
print(json.dumps({"wall_s": wall, "cpu_s": cpu}))
"""


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def pg_backends_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL server processes serving the database of ``url`` (its
    connections' backends; 0 for SQLite)."""
    if url.startswith("sqlite"):
        return 0.0
    name = url.rsplit("/", 1)[1]
    total = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "postgres" and f" {name} " in " ".join(p.info["cmdline"] or []):
                total += _cpu(p)
        except psutil.Error:
            continue
    return total


# -- a store the bench reads and writes directly --------------------------------------------
class Db:
    """Raw SQL on the server's store (SQLite file or PostgreSQL), from the bench process."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            self.con: Any = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
            self.mark = "?"
        else:
            self.con = psycopg.connect(url, autocommit=True)
            self.mark = "%s"

    def one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        return tuple(self.con.execute(sql.replace("?", self.mark), params).fetchone())

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.con.execute(sql.replace("?", self.mark), params)]

    def script(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        if self.url.startswith("sqlite"):
            with self.con:
                for sql, params in statements:
                    self.con.execute(sql, params)
        else:
            with self.con.transaction():
                for sql, params in statements:
                    self.con.execute(sql.replace("?", "%s"), params)

    def close(self) -> None:
        self.con.close()


@contextmanager
def store_url(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty store: a new SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'state.db'}"
        return
    name, url = new_database()
    try:
        yield url
    finally:
        drop_database(name)


class Starter:
    """Starts executions over keep-alive ``http.client`` connections (the lean client)."""

    def __init__(self, srv: ServerProcess):
        parts = urlsplit(srv.url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Authorization": f"Bearer {srv.key}", "Content-Type": "application/json"}

    def start(self, workflow: str, inputs: list[Any], threads: int = 2) -> list[str]:
        ids: list[str] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def run(part: list[Any]) -> None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                for value in part:
                    body = json.dumps({"input": value}).encode()
                    conn.request("POST", f"/v1/workflows/{workflow}/executions", body, self.headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"start: {resp.status} {data[:300]!r}")
                    with lock:
                        ids.append(json.loads(data)["id"])
            except BaseException as exc:
                errors.append(exc)
            finally:
                conn.close()

        parts = [inputs[i::threads] for i in range(threads)]
        workers = [threading.Thread(target=run, args=(p,)) for p in parts]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        if errors:
            raise errors[0]
        return ids


def wait_ended(db: Db, since: float, n: int, timeout: float = 600) -> tuple[float, int]:
    """Poll until ``n`` executions created after ``since`` ended; (last ``ended_at``, failed)."""
    deadline = time.monotonic() + timeout
    while True:
        done, last, ok = db.one(
            "SELECT count(*), max(ended_at), "
            "coalesce(sum(CASE WHEN status = 'SUCCEEDED' THEN 1 ELSE 0 END), 0) "
            "FROM executions WHERE created_at >= ? AND status <> 'RUNNING'",
            since,
        )
        if done >= n:
            return float(last), n - int(ok)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {n} executions ended in {timeout} s")
        time.sleep(0.02)


# -- (a) ---------------------------------------------------------------------------------------
@contextmanager
def profiled(pid: int, name: str) -> Iterator[None]:
    """py-spy on ``pid`` meanwhile (``SQLTIDE_BENCH_PROFILE=DIR``: a speedscope file there)."""
    where = os.environ.get("SQLTIDE_BENCH_PROFILE")
    if not where:
        yield
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--gil",  # the thread holding the GIL: where the CPU goes
            "--rate",
            "1000",
            "--format",
            "raw",
            "--output",
            str(Path(where) / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached
    try:
        yield
    finally:
        spy.send_signal(2)
        spy.wait(30)


def sqltide_steps(kind: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name, store_url(kind, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        flows = tmp / "flows.py"
        flows.write_text(textwrap.dedent(FLOWS))
        counts = Counts(tmp / "counts.json")
        env = {
            "SQLTIDE_STORE": url,
            "SQLTIDE_WAREHOUSE": "duckdb:///:memory:",
            "SQLTIDE_BENCH_COUNTS": str(counts.path),
            "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        }
        with ServerProcess(args=("--workflows", str(flows)), module="_wf_launch", **env) as srv:
            assert srv.proc is not None
            proc = psutil.Process(srv.proc.pid)
            db = Db(url)
            starter = Starter(srv)
            # warm up: imports, first connections, first replays
            t_warm = time.time()
            starter.start("ten_steps", [{}] * WARM_UP, threads=1)
            wait_ended(db, t_warm, WARM_UP)
            time.sleep(0.5)
            with profiled(proc.pid, f"a-{kind}"):
                cpu0, n0, pg0 = _cpu(proc), counts.read(), pg_backends_cpu(url)
                t0 = time.time()
                ids = starter.start("ten_steps", [{"k": k} for k in range(EXECUTIONS)])
                started = time.time() - t0
                last, failed = wait_ended(db, t0, EXECUTIONS)
                cpu, pg_cpu = _cpu(proc) - cpu0, pg_backends_cpu(url) - pg0
                time.sleep(0.6)  # the counts are written every 0.5 s
                n1 = counts.read()
            steps = db.one(
                "SELECT count(*) FROM execution_operations o JOIN executions e "
                "ON e.id = o.execution_id WHERE e.created_at >= ? AND o.status = 'SUCCEEDED'",
                t0,
            )[0]
            results = {
                r[0] for r in db.all("SELECT result FROM executions WHERE created_at >= ?", t0)
            }
            db.close()
    assert len(ids) == EXECUTIONS and failed == 0, (len(ids), failed)
    assert steps == EXECUTIONS * STEPS, steps
    assert results == {"45"}, results
    wall = last - t0
    return {
        "wall_s": round(wall, 3),
        "starts_s": round(started, 3),
        "ms_per_step": round(wall / (EXECUTIONS * STEPS) * 1000, 3),
        "server_cpu_ms_per_step": round(cpu / (EXECUTIONS * STEPS) * 1000, 3),
        "postgres_cpu_ms_per_step": round(pg_cpu / (EXECUTIONS * STEPS) * 1000, 3),
        # the server's store calls per execution (its API and its worker; 1.2 s of idle
        # polls and heartbeats around the window included)
        "store_transactions_per_execution": round((n1["tx"] - n0["tx"]) / EXECUTIONS, 2),
        "store_reads_per_execution": round((n1["rows"] - n0["rows"]) / EXECUTIONS, 2),
        "server_cpu_ms_per_execution_by_thread": {
            name: round((t - n0["threads"].get(name, 0.0)) / EXECUTIONS * 1000, 2)
            for name, t in sorted(n1["threads"].items())
            if t - n0["threads"].get(name, 0.0) > 0
        },
    }


def dbos_steps(kind: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name, store_url(kind, Path(tmp_name)) as url:
        script = Path(tmp_name) / "dbos_bench.py"
        script.write_text(textwrap.dedent(DBOS_SCRIPT))
        done = subprocess.run(
            [DBOS_PYTHON, str(script), url, str(EXECUTIONS), str(STEPS), str(WARM_UP)],
            capture_output=True,
            text=True,
            cwd=tmp_name,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"DBOS run failed:\n{done.stderr[-3000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(out["wall_s"], 3),
        "ms_per_step": round(out["wall_s"] / (EXECUTIONS * STEPS) * 1000, 3),
        "process_cpu_ms_per_step": round(out["cpu_s"] / (EXECUTIONS * STEPS) * 1000, 3),
    }


def dbos_version() -> str:
    done = subprocess.run(
        [DBOS_PYTHON, "-c", "import importlib.metadata as m; print(m.version('dbos'))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def bench_a(stores: list[str], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "executions": EXECUTIONS,
        "steps_each": STEPS,
        "dbos": dbos_version(),
        "targets": "<= 0.5 ms/step SQLite, <= 1 ms/step PostgreSQL, >= 5x faster than DBOS",
    }
    for kind in stores:
        runs = []
        for r in range(rounds):
            print(f"(a) {kind} round {r + 1}: sqltide ...", file=sys.stderr)
            mine = sqltide_steps(kind)
            print(f"(a) {kind} round {r + 1}: DBOS ...", file=sys.stderr)
            theirs = dbos_steps(kind)
            runs.append(
                {
                    "sqltide": mine,
                    "dbos": theirs,
                    "dbos_over_sqltide": round(theirs["ms_per_step"] / mine["ms_per_step"], 2),
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
        out[kind] = runs
    return out


# -- (b) and (c) -------------------------------------------------------------------------------
def insert_sleepers(url: str, n: int, seconds: int) -> float:
    """Start ``n`` executions of ``sleeper`` through the store (as the API's start does)."""
    store = store_from_url(url)
    store.migrate()
    t0 = time.time()
    for _ in range(n):
        now = round(time.time(), 6)
        store.start_execution(
            ExecutionRecord(
                id=str(uuid.uuid4()),
                workflow="sleeper",
                name=f"bench {uuid.uuid4()}",
                principal="bench",
                status=ExecutionStatus.RUNNING,
                created_at=now,
                updated_at=now,
                input=json.dumps({"seconds": seconds}),
                timeout_at=now + 86_400,
            )
        )
    store.close()
    return time.time() - t0


class Counts:
    """The launcher's count of the worker's store calls (``_wf_launch.py``)."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            try:
                data: dict[str, Any] = json.loads(self.path.read_text())
                return data
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def pg_transactions(con: Any) -> int:
    con.execute("SELECT pg_stat_clear_snapshot()")
    row = con.execute(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database "
        "WHERE datname = current_database()"
    ).fetchone()
    return int(row[0])


def suspended(kind: str, n: int, idle_seconds: float) -> dict[str, Any]:
    """(b) then (c) on one worker process with ``n`` executions in a one-hour wait."""
    out: dict[str, Any] = {"executions": n}
    with tempfile.TemporaryDirectory() as tmp_name, store_url(kind, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        flows = tmp / "flows.py"
        flows.write_text(textwrap.dedent(FLOWS))
        counts_file = tmp / "counts.json"
        out["insert_s"] = round(insert_sleepers(url, n, 3600), 1)
        env = {
            "SQLTIDE_STORE": url,
            "SQLTIDE_WAREHOUSE": "duckdb:///:memory:",
            "SQLTIDE_BENCH_COUNTS": str(counts_file),
            "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        }
        db = Db(url)
        t0 = time.time()
        with ServerProcess(
            role="worker", args=("--workflows", str(flows)), module="_wf_launch", **env
        ) as srv:
            assert srv.proc is not None
            proc = psutil.Process(srv.proc.pid)
            # every execution in its wait, back in the store, leased by nobody
            deadline = time.monotonic() + 900
            while True:
                waiting = db.one(
                    "SELECT count(*) FROM executions WHERE status = 'RUNNING' "
                    "AND lease_owner IS NULL AND next_run_at > ?",
                    time.time() + 600,
                )[0]
                if waiting >= n:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {waiting} of {n} suspended")
                time.sleep(0.2)
            out["all_suspended_s"] = round(time.time() - t0, 1)
            # settle: PostgreSQL counts a connection's transactions when it has been idle a
            # while (up to 10 s), so the burst of replays must not land in the window
            time.sleep(15 if kind == "postgres" else 3)
            counts = Counts(counts_file)
            pg = psycopg.connect(url, autocommit=True) if kind == "postgres" else None
            c0, cpu0, x0 = counts.read(), _cpu(proc), pg_transactions(pg) if pg else 0
            time.sleep(idle_seconds)
            c1, cpu1, x1 = counts.read(), _cpu(proc), pg_transactions(pg) if pg else 0
            span = c1["at"] - c0["at"]
            b: dict[str, Any] = {
                "worker_rss_mb": round(proc.memory_info().rss / 2**20, 1),
                "idle_window_s": round(span, 1),
                "worker_store_transactions_per_s": round((c1["tx"] - c0["tx"]) / span, 2),
                "worker_store_reads_per_s": round((c1["rows"] - c0["rows"]) / span, 2),
                "worker_idle_cpu_percent": round((cpu1 - cpu0) / idle_seconds * 100, 2),
                "worker_calls_per_s_by_name": {
                    k: round((v - c0["by_name"].get(k, 0)) / span, 2)
                    for k, v in sorted(c1["by_name"].items())
                    if v > c0["by_name"].get(k, 0)
                },
                "threads": proc.num_threads(),
                "target": "< 2 store transactions/s",
            }
            if pg is not None:
                # the probe's own two reads of the statistics are transactions too
                b["pg_transactions_per_s"] = round((x1 - x0 - 2) / idle_seconds, 2)
                pg.close()
            out["b"] = b
            # (c): every wait ends at T
            moment = round(time.time() + 8.0)
            db.script(
                (
                    "UPDATE execution_operations SET wake_at = ? "
                    "WHERE id = '2' AND type = 'WAIT' AND status = 'STARTED'",
                    (float(moment),),
                ),
                (
                    "UPDATE executions SET next_run_at = ? WHERE status = 'RUNNING'",
                    (float(moment),),
                ),
            )
            cpu0, n0 = _cpu(proc), counts.read()
            with profiled(proc.pid, f"c-{kind}"):
                last, failed = wait_ended(db, 0.0, n, timeout=1200)
            cpu = _cpu(proc) - cpu0
            time.sleep(0.6)
            n1 = counts.read()
            late = [
                r[0]
                for r in db.all(
                    "SELECT a.started_at - w.wake_at FROM execution_operations w "
                    "JOIN execution_operations a ON a.execution_id = w.execution_id "
                    "AND a.id = '3' WHERE w.id = '2'"
                )
            ]
        db.close()
    assert failed == 0 and len(late) == n, (failed, len(late))
    out["c"] = {
        "lateness_p50_ms": round(pct(late, 50) * 1000, 1),
        "lateness_p99_ms": round(pct(late, 99) * 1000, 1),
        "lateness_max_ms": round(max(late) * 1000, 1),
        "lateness_min_ms": round(min(late) * 1000, 1),
        "last_ended_after_moment_s": round(last - moment, 2),
        "resumes_per_s": round(n / (last - moment), 1),
        "worker_cpu_ms_per_resume": round(cpu / n * 1000, 3),
        "worker_cpu_ms_per_resume_by_thread": {
            name: round((t - n0["threads"].get(name, 0.0)) / n * 1000, 3)
            for name, t in sorted(n1["threads"].items())
            if t - n0["threads"].get(name, 0.0) > 0
        },
        "worker_calls_per_resume_by_name": {
            k: round((v - n0["by_name"].get(k, 0)) / n, 3)
            for k, v in sorted(n1["by_name"].items())
            if v > n0["by_name"].get(k, 0)
        },
        "target": "p99 <= 200 ms",
    }
    return out


def bench_bc(stores: list[str], rounds: int, n: int, idle_seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in stores:
        runs = []
        for r in range(rounds):
            print(f"(b, c) {kind} round {r + 1} ...", file=sys.stderr)
            runs.append(suspended(kind, n, idle_seconds))
            print(json.dumps(runs[-1]), file=sys.stderr)
        out[kind] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["a", "b"], help="a, b (b includes c)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--suspended", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    stores = [s for s in args.stores.split(",") if s]
    info = machine()
    if "a" in args.which:
        report("workflows-a", {"machine": info, "a": bench_a(stores, args.rounds)})
    if "b" in args.which or "c" in args.which:
        result = bench_bc(stores, args.rounds, args.suspended, args.idle_seconds)
        report("workflows-bc", {"machine": info, "bc": result})


if __name__ == "__main__":
    main()
