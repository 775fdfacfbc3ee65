"""Statement benchmarks of issue 2 (not tests). Run: ``python bench/statements.py [a|b|c ...]``.

(a) ``SELECT 1`` submitted, waited for and fetched over HTTP: p50/p99 latency at concurrency 1,
    statements per second at concurrency 16 (server in its own process).
(b) A GROUP BY giving ~10,000 rows over a 10-million-row table, through the API (submit, wait,
    fetch every page) against the same query run directly in DuckDB, same process, same run.
(c) A 10-million-row result fetched through all its pages: rows/s and the server's peak RSS.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from multiprocessing import Pool

import psutil
from _common import ServerProcess, machine, pct, report
from _lean import LeanUser, worker_process

from sqltide.client import AsyncClient, Client


def bench_a(n_latency: int = 2000, seconds: float = 15.0, concurrency: int = 16) -> dict:
    """Server latency and capacity with a lean stdlib client, and the same with ours."""
    out: dict = {"target": "p50 <= 5 ms, >= 300 statements/s"}
    with ServerProcess() as srv:
        user = LeanUser(srv.url, srv.key)
        for _ in range(200):  # warm up
            user.select_one()
        lat = []
        for _ in range(n_latency):
            t0 = time.perf_counter()
            user.select_one()
            lat.append(time.perf_counter() - t0)
        user.close()
        out["lean_client_latency_c1_ms"] = _latency(lat)
        # Two load processes (one per core), each with half the users.
        with Pool(2) as pool:
            half = concurrency // 2
            parts = pool.map(worker_process, [(srv.url, srv.key, half, seconds)] * 2)
        done = sum(p[0] for p in parts)
        out[f"lean_client_throughput_c{concurrency}_per_s"] = round(
            done / max(p[1] for p in parts), 1
        )

        # The same with sqltide.client (httpx): what a Python application sees.
        with Client(srv.url, srv.key) as c:
            lat = []
            for _ in range(n_latency // 2):
                t0 = time.perf_counter()
                st = c.execute("SELECT 1")
                st = c.describe(st.id, wait=10)
                page = c.result_page(st.id)
                lat.append(time.perf_counter() - t0)
                assert st.status == "FINISHED" and page.rows == [[1]]
        out["python_client_latency_c1_ms"] = _latency(lat)

        async def load() -> tuple[int, float]:
            done = 0
            async with AsyncClient(srv.url, srv.key) as ac:
                stop = time.perf_counter() + seconds

                async def one_user() -> None:
                    nonlocal done
                    while time.perf_counter() < stop:
                        st = await ac.execute("SELECT 1")
                        st = await ac.describe(st.id, wait=10)
                        page = await ac.result_page(st.id)
                        assert st.status == "FINISHED" and page.rows == [[1]]
                        done += 1

                t0 = time.perf_counter()
                await asyncio.gather(*(one_user() for _ in range(concurrency)))
                return done, time.perf_counter() - t0

        done, elapsed = asyncio.run(load())
        out[f"python_async_client_throughput_c{concurrency}_per_s"] = round(done / elapsed, 1)
    return out


def _latency(lat: list[float]) -> dict:
    return {
        "p50": round(pct(lat, 50) * 1000, 2),
        "p99": round(pct(lat, 99) * 1000, 2),
        "mean": round(statistics.mean(lat) * 1000, 2),
        "n": len(lat),
    }


GROUP_BY = "SELECT k, count(*) AS n, sum(v) AS total, avg(v) AS mean FROM big GROUP BY k ORDER BY k"


def bench_b(rows: int = 10_000_000, repeats: int = 9) -> dict:
    """The server runs in its own process, as deployed; the direct DuckDB runs here on an
    identical table (the data is a deterministic function of the row number)."""
    import duckdb

    make = (
        "CREATE TABLE big AS SELECT range AS id, (range % 10000) AS k, "
        "(hash(range) % 1000)::DOUBLE AS v FROM range({rows})"
    )
    with ServerProcess() as srv, Client(srv.url, srv.key) as c:
        st = c.wait(c.execute(make.format(rows=":rows"), {"rows": rows}).id, timeout=600)
        assert st.status == "FINISHED", st.error
        direct_con = duckdb.connect()
        direct_con.execute(make.format(rows=rows))
        # Each API path against the direct call that hands over the same thing.
        paths = {
            "json": (
                lambda: len(direct_con.sql(GROUP_BY).fetchall()),
                lambda: sum(1 for _ in c.rows(c.wait(c.execute(GROUP_BY).id, 600).id)),
            ),
            "arrow": (
                lambda: direct_con.sql(GROUP_BY).to_arrow_table().num_rows,
                lambda: c.result_table(c.wait(c.execute(GROUP_BY).id, 600).id).num_rows,
            ),
        }
        out: dict = {"rows_scanned": rows, "result_rows": 10_000, "target": "ratio <= 1.10"}
        for name, (direct, api) in paths.items():
            assert direct() == api() == 10_000
            times: dict[str, list[float]] = {"direct": [], "api": []}
            for _ in range(repeats):  # interleaved so drift hits both alike
                for which, fn in (("direct", direct), ("api", api)):
                    t0 = time.perf_counter()
                    fn()
                    times[which].append(time.perf_counter() - t0)
            d = statistics.median(times["direct"])
            a = statistics.median(times["api"])
            out[name] = {
                "direct_duckdb_ms": round(d * 1000, 1),
                "api_ms": round(a * 1000, 1),
                "ratio": round(a / d, 3),
            }
    return out


def bench_c(rows: int = 10_000_000) -> dict:
    out: dict = {"rows": rows, "target": "server RSS < 500 MB"}
    with ServerProcess() as srv:
        proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
        peak = [proc.memory_info().rss]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                try:
                    rss = proc.memory_info().rss + sum(
                        ch.memory_info().rss for ch in proc.children(recursive=True)
                    )
                except psutil.Error:
                    return
                peak[0] = max(peak[0], rss)

        threading.Thread(target=watch, daemon=True).start()
        with Client(srv.url, srv.key, timeout=600) as c:
            sql = (
                "SELECT range AS id, range * 2 AS twice, 'row ' || range::VARCHAR AS label "
                "FROM range(:rows)"
            )
            t0 = time.perf_counter()
            st = c.wait(c.execute(sql, {"rows": rows}).id, timeout=600)
            produced = time.perf_counter() - t0
            assert st.status == "FINISHED", st.error
            for fmt in ("json", "csv"):
                t0 = time.perf_counter()
                if fmt == "json":
                    n = sum(len(p.rows) for p in c.result(st.id))
                else:
                    n = sum(chunk.count(b"\n") for chunk in c.result_csv(st.id)) - 1
                elapsed = time.perf_counter() - t0
                assert n == rows, (fmt, n)
                out[f"fetch_{fmt}_rows_per_s"] = round(rows / elapsed)
                out[f"fetch_{fmt}_s"] = round(elapsed, 2)
            out["execute_and_store_s"] = round(produced, 2)
            out["result_size_bytes"] = st.result_size
        stop.set()
    out["server_peak_rss_mb"] = round(peak[0] / 2**20, 1)
    return out


def main() -> None:
    which = sys.argv[1:] or ["a", "b", "c"]
    results: dict = {"machine": machine()}
    for name in which:
        fn = {"a": bench_a, "b": bench_b, "c": bench_c}[name]
        print(f"running ({name}) ...", file=sys.stderr)
        results[name] = fn()
        report(f"statements-{name}", {"machine": results["machine"], name: results[name]})


if __name__ == "__main__":
    main()
