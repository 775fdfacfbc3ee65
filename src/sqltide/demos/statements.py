"""``sqltide demo statements``: a tour of statements on the embedded default, through the real HTTP API.

It starts an embedded server on a loopback port, loads generated taxi trips into DuckDB with
a batch, runs a parameterised query, polls a long statement, cancels another, shows a failing
batch rolled back and a client token giving back the same statement, then lists them all.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..client import Client
from ..keys import create_key
from ..runtime import Runtime
from ..server import ServerThread
from ..settings import Settings
from .steps import Steps

LOAD_TRIPS = """
CREATE TABLE trips AS
SELECT
    i AS trip_id,
    TIMESTAMP '2015-01-01' + to_seconds((hash(i) % 31536000)::BIGINT) AS pickup_at,
    1 + (hash(i * 7) % 6)::INTEGER AS passenger_count,
    round(0.3 + (hash(i * 13) % 2000) / 100.0, 2) AS trip_distance,
    ['Credit card', 'Cash', 'No charge', 'Dispute'][1 + (hash(i * 17) % 4)::INTEGER] AS payment_type,
    (2.5 + (hash(i * 19) % 5000) / 100.0)::DECIMAL(10, 2) AS fare_amount
FROM range(:rows) AS t(i)
"""

MONTHLY = """
CREATE TABLE monthly_volume AS
SELECT date_trunc('month', pickup_at) AS month, payment_type,
       count(*) AS trips, sum(fare_amount) AS fares
FROM trips GROUP BY ALL
"""


class Demo(Steps):
    def __init__(self, console: Console, client: Client, rows: int):
        super().__init__(console)
        self.client = client
        self.rows = rows

    def show_rows(self, statement_id: str, limit: int = 12) -> None:
        if not self.ok:
            return
        table = Table(header_style="bold", show_edge=False)
        for n, row in enumerate(self._rows(statement_id, table)):
            if n >= limit:
                break
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        self.console.print(table)

    def _rows(self, statement_id: str, table: Table) -> Any:
        for page in self.client.result(statement_id):
            if not table.columns:
                for c in page.columns:
                    table.add_column(f"{c.name}\n[dim]{c.type_name}[/]")
            yield from page.rows

    def run(self) -> None:
        c = self.client
        self.step(f"1. Load {self.rows:,} sample taxi trips with a batch (one transaction)")
        st = c.batch([LOAD_TRIPS, MONTHLY], {"rows": self.rows}, statement_name="demo-load")
        self.console.print(f"  submitted batch {st.id} ({st.status})")
        st = c.wait(st.id, timeout=600)
        for sub in st.sub_statements:
            self.console.print(
                f"  {sub.id}  {sub.status}  rows={sub.result_rows}  {(sub.duration_ns or 0) / 1e6:.0f} ms"
            )
        self.check(st.status == "FINISHED", f"batch {st.status}")

        self.step("2. A query with a named parameter (:payment), result fetched in pages")
        st = c.execute(
            "SELECT strftime(month, '%Y-%m') AS month, trips, fares FROM monthly_volume "
            "WHERE payment_type = :payment ORDER BY month",
            {"payment": "Cash"},
            statement_name="demo-monthly",
        )
        st = c.wait(st.id, timeout=60)
        self.check(
            st.status == "FINISHED",
            f"{st.status}, {st.result_rows} rows, {st.result_size} bytes stored",
        )
        self.show_rows(st.id)

        self.step("3. A long statement, polled while it runs")
        st = c.execute(
            "SELECT payment_type, count(*) AS n, avg(fare_amount * r.range) AS x "
            "FROM trips, range(:repeat) AS r GROUP BY ALL ORDER BY 1",
            {"repeat": max(1, 400_000_000 // max(self.rows, 1))},
            statement_name="demo-long",
        )
        start = time.monotonic()
        seen: list[str] = []
        while True:
            if not seen or seen[-1] != st.status:
                seen.append(st.status)
                self.console.print(f"  {time.monotonic() - start:6.2f}s  {st.status}")
            if st.is_terminal:
                break
            st = c.describe(st.id, wait=0.5)  # long-poll: answers at once when it ends
        self.check(
            st.status == "FINISHED",
            f"went {' -> '.join(seen)} in {(st.duration_ns or 0) / 1e9:.2f}s",
        )
        self.show_rows(st.id)

        self.step("4. A statement cancelled while it runs")
        st = c.execute(
            "SELECT count(*) FROM range(1000000000000) AS t(i) WHERE i % 7 = 3",
            statement_name="demo-cancel",
        )
        deadline = time.monotonic() + 30
        while st.status != "STARTED" and not st.is_terminal and time.monotonic() < deadline:
            st = c.describe(st.id, wait=0.2)
        self.console.print(f"  {st.id} is {st.status}; cancelling")
        st = c.cancel(st.id)
        st = c.wait(st.id, timeout=30)
        self.check(st.status == "ABORTED", f"ended {st.status}: {(st.error or {}).get('message')}")

        self.step("5. A batch that fails half-way is rolled back whole")
        before = self.scalar("SELECT count(*) FROM trips")
        st = c.batch(
            ["INSERT INTO trips SELECT * FROM trips LIMIT 1000", "SELECT * FROM no_such_table"],
            statement_name="demo-rollback",
        )
        st = c.wait(st.id, timeout=60)
        error = st.error or {}
        self.console.print(f"  {st.status}: {error.get('message')}")
        self.console.print(f"  SQLSTATE {error.get('sqlstate')}, position {error.get('position')}")
        for sub in st.sub_statements:
            self.console.print(f"  {sub.id}  {sub.status}")
        after = self.scalar("SELECT count(*) FROM trips")
        self.check(st.status == "FAILED" and before == after, f"trips still has {after:,} rows")

        self.step("6. The same client token gives back the same statement")
        a = c.execute("SELECT 42 AS answer", client_token="demo-token-1")
        b = c.execute("SELECT 42 AS answer", client_token="demo-token-1")
        self.check(a.id == b.id, f"both submissions are statement {a.id}")

        self.step("7. Every statement of this demo, as `sqltide statements list` shows them")
        table = Table("name", "status", "duration", "rows", header_style="bold", show_edge=False)
        for st in c.list(name_prefix="demo-"):
            table.add_row(
                st.statement_name or "",
                st.status,
                f"{(st.duration_ns or 0) / 1e9:.3f}s",
                "" if st.result_rows is None else str(st.result_rows),
            )
        self.console.print(table)

    def scalar(self, sql: str) -> Any:
        st = self.client.wait(self.client.execute(sql).id, timeout=60)
        return next(iter(self.client.rows(st.id)))[0]


def run_demo(console: Console, *, rows: int = 2_000_000, home: Path | None = None) -> int:
    """Run the tour; returns 0 when everything happened as it should."""
    with tempfile.TemporaryDirectory(prefix="sqltide-demo-") as tmp:
        settings = Settings(home=home or Path(tmp))
        runtime = Runtime.build(settings)
        _, key = create_key(runtime.store, "demo", name="demo", warehouses=list(runtime.engines))
        console.print(
            f"[bold]sqltide demo[/]: embedded DuckDB + SQLite + files in {settings.home_dir}"
        )
        with ServerThread(runtime) as server, Client(server.url, key) as client:
            console.print(f"server on {server.url} (API docs: {server.url}/docs)")
            demo = Demo(console, client, rows)
            demo.run()
        if demo.ok:
            console.print("\n[bold green]Demo finished: every step went as expected.[/]")
            console.print(
                'Run your own server with [bold]sqltide serve[/], then [bold]sqltide sql "SELECT 1"[/].'
            )
            return 0
        console.print("\n[bold red]Demo finished with unexpected results (see above).[/]")
        return 1
