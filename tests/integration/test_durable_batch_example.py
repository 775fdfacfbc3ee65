"""``examples/durable-batch``: its order generator, and its setup SQL with the seed's
``query.sql`` on a real DuckDB and a real PostgreSQL (the demo runs DuckDB only, through
sqltide; this checks the files a user runs by hand on either)."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import sqlparse

import pgtools
from sqltide.demos.durable import example_dir, load_generator

EXAMPLE = example_dir()


@pytest.fixture(scope="module")
def generator() -> Any:
    return load_generator(EXAMPLE)


@pytest.fixture
def orders_csv(tmp_path: Path, generator: Any) -> Path:
    out = tmp_path / "orders.csv"
    generator.write_orders(out, 600, 80, seed=3)
    return out


def expected_mart(orders_csv: Path) -> dict[int, tuple[int, Decimal, str]]:
    """``customer_id -> (orders, amount, last order date)``, computed from the CSV file."""
    orders: dict[int, set[int]] = defaultdict(set)
    amount: dict[int, Decimal] = defaultdict(Decimal)
    last: dict[int, str] = {}
    with orders_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            customer = int(row["customer_id"])
            orders[customer].add(int(row["order_id"]))
            amount[customer] += int(row["quantity"]) * Decimal(row["unit_price"])
            last[customer] = max(last.get(customer, ""), row["order_date"])
    return {c: (len(orders[c]), amount[c], last[c]) for c in orders}


def query_sql() -> list[str]:
    """``query.sql`` as the seed's handler sends it: split by sqlparse."""
    return [s.strip() for s in sqlparse.split((EXAMPLE / "query.sql").read_text()) if s.strip()]


def test_the_generator_is_deterministic_and_every_customer_orders(
    tmp_path: Path, generator: Any
) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    rows = generator.write_orders(a, 500, 60, seed=7)
    assert generator.write_orders(b, 500, 60, seed=7) == rows
    generator.write_orders(c, 500, 60, seed=8)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()

    with a.open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == list(generator.COLUMNS)
    assert len(lines) == rows
    by_order: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in lines:
        by_order[line["order_id"]].append(line)
    assert sorted(int(o) for o in by_order) == list(range(1, 501))
    assert {len(v) for v in by_order.values()} <= {1, 2, 3, 4}
    assert max(len(v) for v in by_order.values()) > 1  # COUNT(DISTINCT order_id) matters
    # an order's lines share its customer and date, and name different products
    for order_lines in by_order.values():
        assert len({(x["customer_id"], x["order_date"]) for x in order_lines}) == 1
        assert len({x["product_id"] for x in order_lines}) == len(order_lines)
    assert {int(x["customer_id"]) for x in lines} == set(range(1, 61))
    assert all("2025-01-01" <= x["order_date"] <= "2025-12-31" for x in lines)
    assert all(Decimal(x["unit_price"]) > 0 and int(x["quantity"]) > 0 for x in lines)

    with pytest.raises(ValueError, match="at most orders"):
        generator.write_orders(tmp_path / "d.csv", 10, 11)


def test_setup_and_query_on_duckdb(orders_csv: Path) -> None:
    setup = (EXAMPLE / "sql" / "duckdb" / "setup.sql").read_text()
    con = duckdb.connect()
    try:
        con.execute(setup)
        con.execute(setup)  # safe to run again
        con.execute(f"COPY orders FROM '{orders_csv}' (HEADER)")
        for _ in range(2):  # a refresh: the second gives the same mart
            con.execute("BEGIN")
            for sql in query_sql():
                con.execute(sql)
            con.execute("COMMIT")
            rows = con.execute(
                "SELECT customer_id, total_orders, total_amount, "
                "CAST(last_order_date AS VARCHAR), updated_at IS NOT NULL "
                "FROM public.mart_customer_summary"
            ).fetchall()
            assert {c: (n, a, d) for c, n, a, d, _ in rows} == expected_mart(orders_csv)
            assert all(has_time for *_, has_time in rows)
    finally:
        con.close()


def test_setup_and_query_on_postgresql(orders_csv: Path) -> None:
    setup = (EXAMPLE / "sql" / "postgres" / "setup.sql").read_text()
    with pgtools.fresh_database() as url, psycopg.connect(url) as con:
        con.execute(setup)
        con.execute(setup)  # safe to run again
        with (
            con.cursor() as cur,
            cur.copy("COPY orders FROM STDIN WITH (FORMAT csv, HEADER)") as copy,
        ):
            copy.write(orders_csv.read_bytes())
        con.commit()
        for _ in range(2):  # a refresh: the second gives the same mart
            with con.transaction():
                for sql in query_sql():
                    con.execute(sql)
            rows = con.execute(
                "SELECT customer_id, total_orders, total_amount, last_order_date::text "
                "FROM public.mart_customer_summary"
            ).fetchall()
            assert {c: (n, a, d) for c, n, a, d in rows} == expected_mart(orders_csv)
