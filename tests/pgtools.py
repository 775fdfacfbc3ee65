"""Real PostgreSQL for tests: a fresh database per test, cloned from a migrated template.

The server comes from ``SQLTIDE_TEST_PG_URL`` (default: the local trust-auth server as
``postgres``). A test that needs PostgreSQL and cannot reach it fails with a clear message; it
is never silently skipped (``.ci/run`` makes sure the server is up).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

PG_URL = os.environ.get("SQLTIDE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(dbname: str) -> str:
    parts = urlsplit(PG_URL)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc}). Start it (the CI script does) "
            "or point SQLTIDE_TEST_PG_URL at one.",
            pytrace=False,
        )


def create_database(template: str | None = None, prefix: str = "sqltide_t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin() as con:
        clause = f" TEMPLATE {template}" if template else ""
        con.execute(f"CREATE DATABASE {name}{clause}")
    return name


def drop_database(name: str) -> None:
    with admin() as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def fresh_database(template: str | None = None) -> Iterator[str]:
    """A new empty (or template-cloned) database; yields its URL and drops it afterwards."""
    name = create_database(template)
    try:
        yield url_for(name)
    finally:
        drop_database(name)


@contextmanager
def answer_lost(monkeypatch: pytest.MonkeyPatch, st: Any) -> Iterator[None]:
    """The next transaction of ``st`` (a PostgresStore) commits, then fails as if the connection dropped (so it is retried)."""
    real = st._pool.connection
    left = [1]

    @contextmanager
    def flaky(*args: Any, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
        with real(*args, **kwargs) as conn:
            yield conn
        if left[0] > 0:
            left[0] -= 1
            raise psycopg.OperationalError("injected: connection lost after COMMIT")

    with monkeypatch.context() as m:
        m.setattr(st._pool, "connection", flaky)
        yield
    assert left[0] == 0, "the injected failure happened"
