"""Server CPU per ``SELECT 1`` cycle, and new connections under load (issue 9; not a test).

Run: ``python bench/server_cpu.py [cpu] [connect]`` (about a minute). To measure another
checkout of sqltide in the same sitting, point the *server* at its sources:
``SQLTIDE_BENCH_SERVER_PATH=/tmp/before/src python bench/server_cpu.py``.

cpu     ``sqltide serve`` (``--role all``: API and worker in one process, SQLite store, DuckDB)
        in its own process; one lean client (stdlib, keep-alive) runs N submit → long-poll →
        fetch cycles one after another. The figure is the server process's CPU time (user +
        system, psutil) over those N cycles, divided by N: what one cycle costs the server,
        whatever the machine's other load. The same three requests against ``/health`` give
        the cost of the HTTP stack alone.
connect 50 clients start at once (2 load processes of 25 threads), each opening a new
        connection and running cycles for a fixed time: the wait for each client's *first*
        request (connect, then submit) under that full load, and the p99 of the later cycles.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from multiprocessing import Pool

import psutil
from _common import ServerProcess, machine, pct, report
from _lean import LeanUser


def _server(**env: str) -> ServerProcess:
    path = os.environ.get("SQLTIDE_BENCH_SERVER_PATH")
    if path:
        env["PYTHONPATH"] = path
    return ServerProcess(**env)


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def bench_cpu(cycles: int = 2000, warmup: int = 300) -> dict:
    out: dict = {"cycles": cycles, "target": "<= 2 ms of server CPU per cycle"}
    with _server() as srv:
        proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
        user = LeanUser(srv.url, srv.key)
        for _ in range(warmup):
            user.select_one()
        c0, t0 = _cpu(proc), time.perf_counter()
        for _ in range(cycles):
            user.select_one()
        c1, t1 = _cpu(proc), time.perf_counter()
        out["server_cpu_ms_per_cycle"] = round((c1 - c0) / cycles * 1000, 3)
        out["wall_ms_per_cycle"] = round((t1 - t0) / cycles * 1000, 3)
        # The HTTP stack alone: three GET /health per "cycle" on the same connection.
        c0 = _cpu(proc)
        for _ in range(cycles):
            for _ in range(3):
                user.conn.request("GET", "/health")
                user.conn.getresponse().read()
        c1 = _cpu(proc)
        out["server_cpu_ms_per_3_health"] = round((c1 - c0) / cycles * 1000, 3)
        # An idle second, for the background (heartbeats, polls) included above.
        c0 = _cpu(proc)
        time.sleep(2.0)
        out["server_cpu_ms_idle_per_s"] = round((_cpu(proc) - c0) / 2.0 * 1000, 2)
        user.close()
    return out


def _clients(args: tuple[str, str, int, float]) -> tuple[list[float], list[float], int]:
    """``n`` threads, each on a new connection, cycling for ``seconds``: each one's first
    request (connect + submit) time, the later cycles' times, and the cycles done."""
    url, key, n, seconds = args
    first: list[float] = []
    later: list[float] = []
    done = [0]
    lock = threading.Lock()
    start = threading.Barrier(n)

    def run() -> None:
        start.wait()
        t0 = time.perf_counter()
        user = LeanUser(url, key)  # connects on the first request
        try:
            user._call("POST", "/v1/statements", b'{"sql": "SELECT 1"}')
            mine = [time.perf_counter() - t0]
            stop = t0 + seconds
            cycles = []
            while time.perf_counter() < stop:
                c0 = time.perf_counter()
                user.select_one()
                cycles.append(time.perf_counter() - c0)
            with lock:
                first.extend(mine)
                later.extend(cycles)
                done[0] += len(cycles)
        finally:
            user.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return first, later, done[0]


def bench_connect(clients: int = 50, seconds: float = 10.0) -> dict:
    out: dict = {"clients": clients, "seconds": seconds, "target": "first request <= 250 ms"}
    with _server() as srv:
        user = LeanUser(srv.url, srv.key)
        for _ in range(100):
            user.select_one()
        user.close()
        with Pool(2) as pool:
            parts = pool.map(_clients, [(srv.url, srv.key, clients // 2, seconds)] * 2)
    first = [x for p in parts for x in p[0]]
    later = [x for p in parts for x in p[1]]
    out["first_request_ms"] = {
        "max": round(max(first) * 1000, 1),
        "p50": round(pct(first, 50) * 1000, 1),
        "n": len(first),
    }
    out["later_cycles_ms"] = {
        "p50": round(pct(later, 50) * 1000, 1),
        "p99": round(pct(later, 99) * 1000, 1),
        "max": round(max(later) * 1000, 1),
    }
    out["cycles_per_s"] = round(sum(p[2] for p in parts) / seconds, 1)
    return out


def main() -> None:
    which = sys.argv[1:] or ["cpu", "connect"]
    info = machine()
    label = os.environ.get("SQLTIDE_BENCH_LABEL", "")
    for name in which:
        print(f"running ({name}) ...", file=sys.stderr)
        result = {"cpu": bench_cpu, "connect": bench_connect}[name]()
        result["server_path"] = os.environ.get("SQLTIDE_BENCH_SERVER_PATH", "this checkout")
        report(f"server-cpu-{name}{label}", {"machine": info, name: result})


if __name__ == "__main__":
    main()
