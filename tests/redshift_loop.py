"""A loopback Redshift Data API for the ``redshift-data://`` engine's tests: a real sqltide
server whose warehouse ``pg`` is PostgreSQL, reached with a key made with ``aws=True``.

Import as ``from redshift_loop import ...`` (``tests/`` is on ``sys.path``). AWS is not
reachable from the tests, so the engine's boto3 client is pointed at this server
(``endpoint_url``): the round trip proves that both sides speak the real protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pgtools
from conftest import make_settings
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class DataApiLoop:
    """A running loopback Data API: its URL, an AWS key of principal ``etl``, the database
    of its warehouse ``pg``, and the runtime behind it."""

    url: str
    access_key_id: str
    secret_access_key: str
    database: str
    runtime: Runtime

    def warehouse_url(
        self, *, cluster: str = "pg", secret: str | None = None, **params: str
    ) -> str:
        """A ``redshift-data://`` URL reaching warehouse ``pg`` (or ``cluster``)."""
        key = quote(self.access_key_id, safe="")
        password = quote(secret if secret is not None else self.secret_access_key, safe="")
        query = "&".join(
            f"{k}={quote(v, safe='')}"
            for k, v in {"region": REGION, "endpoint_url": self.url, **params}.items()
        )
        return f"redshift-data://{key}:{password}@{cluster}/{self.database}?{query}"


@contextmanager
def data_api_loop(home: Path, **settings: Any) -> Iterator[DataApiLoop]:
    """Start the loopback server (SQLite store under ``home``) on a fresh PostgreSQL database."""
    with pgtools.fresh_database() as url:
        runtime = Runtime.build(
            make_settings(
                home,
                store=f"sqlite:///{home / 'home' / 'state.db'}",
                warehouses={"pg": url},
                **settings,
            )
        )
        try:
            _, _, creds = create_key(runtime.store, "etl", warehouses=["pg"], aws=True)
            with ServerThread(runtime) as server:
                yield DataApiLoop(
                    server.url,
                    creds.access_key_id,
                    creds.secret_access_key,
                    url.rsplit("/", 1)[1],
                    runtime,
                )
        finally:
            runtime.stop()
