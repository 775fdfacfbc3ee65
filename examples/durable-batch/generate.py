#!/usr/bin/env python3
"""Orders for the durable batch example: the ``orders`` table that ``query.sql`` summarises.

One line per order line, as a CSV file with a header, the columns of :data:`COLUMNS`::

    order_id,customer_id,order_date,product_id,quantity,unit_price
    1,112,2025-01-01,37,2,19.90

An order has one to four lines (so ``COUNT(DISTINCT order_id)`` in ``query.sql`` counts
orders, not lines), each line a product, a quantity and the product's price. Customers buy at
different rates (a few order often, most now and then), every order falls in 2025, and each
customer has at least one order. DuckDB reads the file with ``COPY orders FROM 'orders.csv'
(HEADER)``, PostgreSQL with ``\\copy orders FROM 'orders.csv' WITH (FORMAT csv, HEADER)``.

Usage::

    python examples/durable-batch/generate.py --orders 3000 --customers 400 --out orders.csv

The same ``--seed`` and sizes give the same file, byte for byte. Standard library only, so
``sqltide demo durable`` loads it by path.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

__all__ = ["COLUMNS", "OrderLine", "iter_order_lines", "main", "write_orders"]

#: The columns of a line, in order (the ``orders`` table's columns).
COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "order_date",
    "product_id",
    "quantity",
    "unit_price",
)

#: Products on sale; each has one price for the whole year.
PRODUCTS = 60
FIRST_DAY = dt.date(2025, 1, 1)
DAYS = 365


class OrderLine(NamedTuple):
    order_id: int
    customer_id: int
    order_date: dt.date
    product_id: int
    quantity: int
    unit_price: Decimal


def _prices(rng: random.Random) -> list[Decimal]:
    """One price per product, 1.50 to about 250.00, most of them under 40.00."""
    out = []
    for _ in range(PRODUCTS):
        cents = int(150 + rng.lognormvariate(7.3, 0.9))
        out.append(Decimal(min(cents, 25_000)).scaleb(-2))
    return out


def iter_order_lines(orders: int, customers: int, seed: int = 1) -> Iterator[OrderLine]:
    """The lines of ``orders`` orders by ``customers`` customers, in order id order."""
    if orders < 1 or customers < 1:
        raise ValueError("orders and customers must be at least 1")
    if customers > orders:
        raise ValueError("every customer has an order: customers must be at most orders")
    rng = random.Random(seed)
    prices = _prices(rng)
    # How often each customer orders: a long tail (a few regulars, many occasional buyers).
    weights = [rng.paretovariate(1.5) for _ in range(customers)]
    # Every customer orders once; the other orders go by weight.
    buyers = list(range(1, customers + 1))
    buyers += rng.choices(range(1, customers + 1), weights=weights, k=orders - customers)
    rng.shuffle(buyers)
    days = sorted(rng.randrange(DAYS) for _ in range(orders))
    for n, (customer_id, day) in enumerate(zip(buyers, days, strict=True), start=1):
        order_date = FIRST_DAY + dt.timedelta(days=day)
        lines = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        for product_id in sorted(rng.sample(range(1, PRODUCTS + 1), lines)):
            quantity = rng.choices((1, 2, 3, 5, 10), weights=(60, 20, 10, 7, 3))[0]
            yield OrderLine(n, customer_id, order_date, product_id, quantity, prices[product_id - 1])


def write_orders(out: Path, orders: int, customers: int, seed: int = 1) -> int:
    """Write the CSV file; returns how many lines (rows) it holds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for line in iter_order_lines(orders, customers, seed):
            writer.writerow(
                (
                    line.order_id,
                    line.customer_id,
                    line.order_date.isoformat(),
                    line.product_id,
                    line.quantity,
                    f"{line.unit_price:.2f}",
                )
            )
            rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000, help="orders (default 3000)")
    parser.add_argument("--customers", type=int, default=400, help="customers (default 400)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, default=Path("orders.csv"), help="the CSV file")
    args = parser.parse_args(argv)
    try:
        rows = write_orders(args.out, args.orders, args.customers, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{args.orders:,} orders, {rows:,} order lines: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
