"""Server CPU of the Data API face against sqltide's own API (issue 10; not a test).

Run: ``python bench/data_api.py [cycles] [rounds]`` (defaults 300 and 5; about 30 s).

One ``sqltide serve`` (``--role all``: API and worker in one process, SQLite store, DuckDB) in
its own process, and a key with AWS credentials made by ``sqltide keys create --aws``. Two
clients, one after the other on the same server, each on one keep-alive connection:

boto3   ``boto3.client("redshift-data")`` (SigV4-signed AWS JSON 1.1 on ``POST /``):
        ``execute_statement`` → ``describe_statement(WaitTimeSeconds=10)`` until FINISHED →
        ``get_statement_result``.
client  ``sqltide.client.Client`` (``/v1``, bearer key): ``execute`` → ``describe(wait=10)``
        until ended → ``result_page``.

``cycle``  N such ``SELECT 1`` cycles; ``call`` N ``describe`` of one finished statement. The
figure is the server process's CPU time (user + system, psutil) over the N, divided by N, less
the server's idle CPU over the same wall time (heartbeats, polls), which the slower client
would otherwise be charged more of. The two clients take turns in ``rounds`` rounds, so both
see the same machine; each round gives one difference, and the report gives their median and
range. Per call: a cycle's difference divided by the requests it made.

Target (issue 10): the Data API path costs at most 1 ms more server CPU per call.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
import psutil
from _common import ServerProcess, machine, report
from botocore.config import Config

from sqltide.client import Client

TERMINAL = ("FINISHED", "FAILED", "ABORTED")
PROFILE = re.compile(r"aws_access_key_id = (\S+)\naws_secret_access_key = (\S+)")


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def aws_credentials(srv: ServerProcess) -> tuple[str, str]:
    """A key with AWS credentials for the bench, through the real CLI on the server's home."""
    done = subprocess.run(
        [sys.executable, "-m", "sqltide.cli", "keys", "create", "bench", "--aws", "--admin"],
        env=srv.env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = PROFILE.search(done.stdout)
    assert found is not None, done.stdout
    return found.group(1), found.group(2)


class Boto3Path:
    name = "boto3"

    def __init__(self, url: str, access_key_id: str, secret: str):
        self.rsd = boto3.client(
            "redshift-data",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}),
        )

    def cycle(self) -> int:
        sid = self.rsd.execute_statement(WorkgroupName="default", Database="dev", Sql="SELECT 1")[
            "Id"
        ]
        calls = 1
        while True:
            desc = self.rsd.describe_statement(Id=sid, WaitTimeSeconds=10)
            calls += 1
            if desc["Status"] in TERMINAL:
                break
        assert desc["Status"] == "FINISHED", desc
        page = self.rsd.get_statement_result(Id=sid)
        assert page["Records"] == [[{"longValue": 1}]], page
        return calls + 1

    def finished(self) -> str:
        sid = self.rsd.execute_statement(WorkgroupName="default", Sql="SELECT 1")["Id"]
        while self.rsd.describe_statement(Id=sid, WaitTimeSeconds=10)["Status"] not in TERMINAL:
            pass
        return str(sid)

    def describe(self, sid: str) -> None:
        self.rsd.describe_statement(Id=sid)

    def close(self) -> None:
        self.rsd.close()


class ClientPath:
    name = "client"

    def __init__(self, url: str, key: str):
        self.client = Client(url, key, timeout=30)

    def cycle(self) -> int:
        sid = self.client.execute("SELECT 1").id
        calls = 1
        while True:
            st = self.client.describe(sid, wait=10)
            calls += 1
            if st.is_terminal:
                break
        assert st.status == "FINISHED", st
        page = self.client.result_page(sid)
        assert page.rows == [[1]], page
        return calls + 1

    def finished(self) -> str:
        sid = self.client.execute("SELECT 1").id
        while not self.client.describe(sid, wait=10).is_terminal:
            pass
        return sid

    def describe(self, sid: str) -> None:
        self.client.describe(sid)

    def close(self) -> None:
        self.client.close()


def measure(
    proc: psutil.Process, idle_per_s: float, n: int, step: Callable[[], int | None]
) -> dict[str, float]:
    """Server CPU (ms) per step over ``n`` steps, less the idle rate; requests per step."""
    requests = 0
    c0, t0 = _cpu(proc), time.perf_counter()
    for _ in range(n):
        requests += step() or 1
    c1, t1 = _cpu(proc), time.perf_counter()
    wall = t1 - t0
    return {
        "server_cpu_ms": (c1 - c0 - idle_per_s * wall) / n * 1000,
        "raw_server_cpu_ms": (c1 - c0) / n * 1000,
        "wall_ms": wall / n * 1000,
        "requests": requests / n,
    }


def idle_rate(proc: psutil.Process, seconds: float = 3.0) -> float:
    c0 = _cpu(proc)
    time.sleep(seconds)  # nothing to wait on: this measures the idle server
    return (_cpu(proc) - c0) / seconds


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3) + 0.0,
        "min": round(min(values), 3) + 0.0,
        "max": round(max(values), 3) + 0.0,
    }


def bench(cycles: int = 300, rounds: int = 5, warmup: int = 100) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cycles_per_round": cycles,
        "rounds": rounds,
        "target": "Data API <= 1 ms more server CPU per call than /v1",
    }
    with ServerProcess() as srv:
        proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
        access_key_id, secret = aws_credentials(srv)
        paths = [Boto3Path(srv.url, access_key_id, secret), ClientPath(srv.url, srv.key)]
        for path in paths:
            for _ in range(warmup):
                path.cycle()
        done = {p.name: p.finished() for p in paths}
        idle = idle_rate(proc)
        out["server_idle_cpu_ms_per_s"] = round(idle * 1000, 2)
        per: dict[str, dict[str, list[dict[str, float]]]] = {
            p.name: {"cycle": [], "call": []} for p in paths
        }
        for r in range(rounds):
            # Alternate which goes first, so neither always follows the other.
            for path in paths if r % 2 == 0 else paths[::-1]:
                per[path.name]["cycle"].append(measure(proc, idle, cycles, path.cycle))
                sid = done[path.name]
                per[path.name]["call"].append(
                    measure(proc, idle, cycles, lambda p=path, s=sid: p.describe(s))  # type: ignore[misc]
                )
        for path in paths:
            path.close()

    for name, kinds in per.items():
        out[name] = {
            kind: {
                "server_cpu_ms": spread([m["server_cpu_ms"] for m in ms]),
                "raw_server_cpu_ms": spread([m["raw_server_cpu_ms"] for m in ms]),
                "wall_ms": spread([m["wall_ms"] for m in ms]),
                "requests": round(statistics.mean(m["requests"] for m in ms), 3),
            }
            for kind, ms in kinds.items()
        }
    diff_cycle = [
        b["server_cpu_ms"] - c["server_cpu_ms"]
        for b, c in zip(per["boto3"]["cycle"], per["client"]["cycle"], strict=True)
    ]
    per_call_of_cycle = [
        (b["server_cpu_ms"] - c["server_cpu_ms"]) / ((b["requests"] + c["requests"]) / 2)
        for b, c in zip(per["boto3"]["cycle"], per["client"]["cycle"], strict=True)
    ]
    diff_call = [
        b["server_cpu_ms"] - c["server_cpu_ms"]
        for b, c in zip(per["boto3"]["call"], per["client"]["call"], strict=True)
    ]
    out["data_api_minus_v1_ms"] = {
        "per_cycle": spread(diff_cycle),
        "per_call_in_cycle": spread(per_call_of_cycle),
        "per_describe_call": spread(diff_call),
    }
    worst = max(max(per_call_of_cycle), max(diff_call))
    out["target_met"] = worst <= 1.0
    return out


def main() -> None:
    args = [int(a) for a in sys.argv[1:3]]
    info = machine()
    print("running (data api vs /v1) ...", file=sys.stderr)
    result = bench(*args)
    label = os.environ.get("SQLTIDE_BENCH_LABEL", "")
    report(f"data-api{label}", {"machine": info, "data_api": result})


if __name__ == "__main__":
    main()
