"""A lean load generator: stdlib ``http.client`` over keep-alive connections, one per thread.

The Python client (httpx) costs about a millisecond of CPU per request; on a 2-core machine
that shared with the server would measure the client. This measures the server.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit


class LeanUser:
    def __init__(self, url: str, key: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict:
        self.conn.request(method, path, body=body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
        return json.loads(data)

    def select_one(self) -> None:
        """Submit ``SELECT 1``, long-poll until it ends, fetch its result."""
        sid = self._call("POST", "/v1/statements", b'{"sql": "SELECT 1"}')["id"]
        st = self._call("GET", f"/v1/statements/{sid}?wait=10")
        while st["status"] not in ("FINISHED", "FAILED", "ABORTED"):
            st = self._call("GET", f"/v1/statements/{sid}?wait=10")
        assert st["status"] == "FINISHED", st
        page = self._call("GET", f"/v1/statements/{sid}/result")
        assert page["rows"] == [[1]], page

    def close(self) -> None:
        self.conn.close()


def run_users(url: str, key: str, users: int, seconds: float) -> tuple[int, float]:
    """``users`` threads each looping :meth:`LeanUser.select_one`; returns (done, elapsed)."""
    import threading

    done = [0] * users
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        user = LeanUser(url, key)
        try:
            while time.perf_counter() < stop:
                user.select_one()
                done[i] += 1
        finally:
            user.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), time.perf_counter() - t0


def worker_process(args: tuple[str, str, int, float]) -> tuple[int, float]:
    return run_users(*args)
