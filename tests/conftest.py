"""Fixtures shared by every test: a runtime on temporary embedded backends, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgtools
from sqltide.client import Client
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread
from sqltide.settings import Settings


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's ~/.sqltide or pick up their settings."""
    for name in list(os.environ):
        if name.startswith("SQLTIDE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path / "home"))
    # Tests' webhook receivers listen on loopback: allow exactly those two addresses, so
    # the default-deny webhook guard still runs for everything else in every test.
    monkeypatch.setenv("SQLTIDE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1,::1")


#: Which state stores the store-dependent tests run on (``SQLTIDE_TEST_STORES=sqlite`` to
#: run on SQLite alone while developing; CI runs both).
STORES = [s for s in os.environ.get("SQLTIDE_TEST_STORES", "sqlite,postgres").split(",") if s]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database with every migration applied, cloned for each test."""
    from sqltide.store.postgres import PostgresStore

    name = pgtools.create_database(prefix="sqltide_tpl")
    try:
        store = PostgresStore(pgtools.url_for(name))
        store.migrate()
        store.close()
        yield name
    finally:
        pgtools.drop_database(name)


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state store of each kind: SQLite in the test's folder, or a new PostgreSQL
    database cloned from the migrated template."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'state.db'}"
        return
    with pgtools.fresh_database(request.getfixturevalue("pg_template")) as url:
        yield url


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "home": tmp_path / "home",
        "heartbeat_seconds": 0.2,
        "worker_concurrency": 4,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return make_settings(tmp_path, store=store_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    yield rt
    rt.stop()  # also when never started: its store and listener hold connections


@pytest.fixture
def server(runtime: Runtime) -> Iterator[ServerThread]:
    with ServerThread(runtime) as srv:
        yield srv


@pytest.fixture
def api_key(runtime: Runtime) -> str:
    """A key for principal ``alice``, granted every configured warehouse."""
    return create_key(runtime.store, "alice", warehouses=list(runtime.engines))[1]


@pytest.fixture
def client(server: ServerThread, api_key: str) -> Iterator[Client]:
    with Client(server.url, api_key) as c:
        yield c
