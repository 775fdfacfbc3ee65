"""Helpers shared by the benchmark scripts: a server subprocess, machine facts, percentiles."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sqltide.server import free_port


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import duckdb

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "os": platform.platform(),
    }


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class ServerProcess:
    """``sqltide serve`` in a subprocess on a temporary home and a free loopback port.

    ``args`` go after ``serve``'s own (``--workflows PATH``); ``module`` is what ``python -m``
    runs (a bench's launcher that instruments the process, then calls the CLI).
    """

    def __init__(
        self,
        role: str = "all",
        *,
        args: tuple[str, ...] = (),
        module: str = "sqltide.cli",
        **env: str,
    ):
        self.home = Path(tempfile.mkdtemp(prefix="sqltide-bench-"))
        self.port = free_port()
        self.role = role
        self.args = args
        self.module = module
        self.env = {**os.environ, "SQLTIDE_HOME": str(self.home), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.module,
                "serve",
                "--port",
                str(self.port),
                "--role",
                self.role,
                *self.args,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self.role == "worker":  # no HTTP: give it a moment to connect and migrate
            time.sleep(1.0)
            return self
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        creds = self.home / "credentials"
        self.key = creds.read_text().strip() if creds.exists() else ""
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def report(name: str, data: dict[str, Any]) -> None:
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
