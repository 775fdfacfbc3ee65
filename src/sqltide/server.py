"""Running the HTTP API with uvicorn: in the foreground (``sqltide serve``) or in a thread.

:class:`ServerThread` serves a runtime on a loopback port from a background thread; the demo,
the benchmarks and the integration tests use it to talk to a real server over real HTTP.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import Any

import uvicorn

from .api import create_app
from .runtime import Runtime
from .server_protocol import HttpLimits, protocol_class
from .settings import Settings


def uvicorn_config(app: Any, settings: Settings, **where: Any) -> uvicorn.Config:
    """The one uvicorn configuration, for ``sqltide serve`` and :class:`ServerThread` alike.

    ``where`` is ``host`` and ``port``, or nothing when the caller passes a bound socket to
    ``Server.run``. The protocol class adds the header timeout and the per-client connection
    limit uvicorn lacks (``server_protocol.py``). The listen backlog stays uvicorn's 2048.
    """
    limits = HttpLimits.from_settings(settings)
    return uvicorn.Config(
        app,
        **where,
        http=protocol_class(limits),
        # The protocol sets the exact (float) keep-alive; uvicorn's own field is an int.
        timeout_keep_alive=max(1, math.ceil(limits.keep_alive)),
        server_header=False,  # no need to tell the world which server and version runs
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """``with ServerThread(runtime) as server: httpx.get(server.url + "/health")``."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        no_auth: bool = False,
    ):
        self.runtime = runtime
        self.host = host
        self.port = port or free_port(host)
        self.app = create_app(runtime, no_auth=no_auth)
        config = uvicorn_config(self.app, runtime.settings, host=host, port=self.port)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="sqltide-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the sqltide server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sqltide server did not start within {timeout} s")
            time.sleep(0.01)  # waiting on a condition with a deadline
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
