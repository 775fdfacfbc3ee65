"""Helpers for tests that run sqltide as real processes: ``sqltide serve`` and the CLI.

Import them as ``from helpers import ...`` (``tests/`` is on ``sys.path`` because of the
rootdir ``conftest.py``, like ``from conftest import make_settings``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from sqltide.client import Client
from sqltide.server import free_port

START_TIMEOUT = 20.0


def wait_for(what: str, check: Callable[[], object], timeout: float = 5.0) -> object:
    """Poll ``check`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)  # polling a condition with a deadline


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """:func:`wait_for` without a description: the value ``check`` gave, once truthy."""
    return wait_for("a condition", check, timeout)


def api(server: Any, key: str) -> httpx.Client:
    """An HTTP client on ``server`` (a ServerThread) sending ``key`` as a bearer token."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without any ``SQLTIDE_*`` setting, plus ``env``.

    Webhooks may reach the tests' loopback receivers (127.0.0.1 and ::1, nothing else), as
    in every in-process test (``conftest._isolated_home``); ``env`` may say otherwise.
    """
    out = {k: v for k, v in os.environ.items() if not k.startswith("SQLTIDE_")}
    out["SQLTIDE_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.1,::1"
    out.update(env)
    return out


class ServeProcess:
    """One ``sqltide serve`` subprocess on ``home``, its output (stdout + stderr) in ``log``.

    ``args`` go after ``serve --port N`` (e.g. ``["--role", "worker"]``).
    """

    def __init__(self, home: Path, log: Path, env: Mapping[str, str], args: Sequence[str] = ()):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # env may override the defaults (a heartbeat, even the home)
        full_env = clean_env(
            **{"SQLTIDE_HOME": str(home), "SQLTIDE_HEARTBEAT_SECONDS": "0.2", **env}
        )
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sqltide.cli", "serve", "--port", str(self.port), *args],
            env=full_env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.started_at = time.monotonic()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"sqltide serve exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"sqltide serve not healthy in {timeout} s:\n{self.output()}")
            time.sleep(0.02)  # polling a condition with a deadline

    def client(self) -> Client:
        key = (self.home / "credentials").read_text().strip()
        return Client(self.url, key, timeout=10.0)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


def run_cli(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 30.0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``sqltide ARGS...`` as a user would (a new process) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "sqltide.cli", *args],
        env=dict(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


class Receiver:
    """An HTTP server on loopback that records POSTs and answers what it is told to."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []  # status codes to give, in order; then 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                    )
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: The pipeline file of docs/pipelines.md: seed 000's ELT, nightly, mailing when it ends.
ELT_PIPELINE = """\
version: 1
topics:
  elt-status:
    subscriptions:
      - {protocol: email, endpoint: data-team@example.com}
rules:
  nightly-elt:
    schedule: ${ELT_SCHEDULE:-cron(0 11 ? * MON-FRI *)}
    timezone: UTC
    targets:
      - {id: run, kind: sql, sql: "CALL run_elt_process()", with_event: true, statement_name: nightly-elt}
  elt-done:
    event_pattern: {source: [aws.redshift-data], detail: {principal: [etl]}}
    targets:
      - id: mail
        kind: topic
        topic: elt-status
        input_transformer:
          input_paths_map: {state: $.detail.state, id: $.detail.statementId}
          input_template: '{"subject": "ELT <state>", "body": "Statement <id> ended <state>"}'
"""
