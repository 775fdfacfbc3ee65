"""A cancel that lands in the window between the cancel check and the engine starting the
statement (an interrupt with nothing to stop) still stops the statement."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from sqltide.engines.duckdb import DuckDBConnection
from sqltide.statements.execution import Execution
from sqltide.storage import storage_from_url
from sqltide.store import StatementRecord, StatementStatus, store_from_url

ENDLESS = "SELECT count(*) FROM range(10000000000000) AS t(i) WHERE i % 7 = 3"


class RacyConnection(DuckDBConnection):
    """A real DuckDB connection whose ``execute`` first pauses in the race window, until the
    test has cancelled the run."""

    def __init__(self) -> None:
        super().__init__(duckdb.connect(), 1000)
        self.in_window = threading.Event()
        self.go_on = threading.Event()

    def execute(self, sql, params=None):  # type: ignore[no-untyped-def]
        self.in_window.set()
        assert self.go_on.wait(10)
        return super().execute(sql, params)


def test_a_cancel_just_before_the_engine_starts_still_stops_it(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    storage = storage_from_url(f"file:///{tmp_path / 'files'}")
    record = StatementRecord(
        id="00000000-0000-4000-8000-000000000001",
        principal="p",
        warehouse="default",
        status=StatementStatus.STARTED,
        query_string=ENDLESS,
        created_at=0.0,
        updated_at=0.0,
    )
    conn = RacyConnection()
    execution = Execution(record, conn, store, storage, lambda: 0.0, 1 << 20)
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(execution.run()), daemon=True)
    runner.start()
    try:
        assert conn.in_window.wait(10)
        execution.cancel()  # its first interrupt finds no query running
        conn.go_on.set()
        runner.join(10)
        assert not runner.is_alive(), "the statement kept running after its cancel"
        [(status, fields)] = outcome
        assert status is StatementStatus.ABORTED
        assert fields["error"]["code"] == "cancelled"
        assert execution.finished.is_set()
    finally:
        conn.go_on.set()
        conn.interrupt()
        runner.join(10)
        store.close()
