-- Durable batch example on DuckDB: the tables query.sql reads and refreshes.
-- query.sql (seed 001's, unchanged) reads `orders` and refreshes `public.mart_customer_summary`.
-- On Redshift both live in the `public` schema, where unqualified names resolve. DuckDB's
-- default schema is `main`: `orders` is created there (so the unqualified name finds it) and
-- the mart in a schema named `public` (so the qualified name finds it).
-- Safe to run again: it changes nothing that exists.

CREATE SCHEMA IF NOT EXISTS public;

-- One row per order line: an order of three products is three rows with one order_id.
CREATE TABLE IF NOT EXISTS orders (
    order_id    BIGINT        NOT NULL,
    customer_id INTEGER       NOT NULL,
    order_date  DATE          NOT NULL,
    product_id  INTEGER       NOT NULL,
    quantity    INTEGER       NOT NULL,
    unit_price  DECIMAL(10,2) NOT NULL
);

-- One row per customer, rebuilt by query.sql (DELETE, then INSERT ... SELECT).
CREATE TABLE IF NOT EXISTS public.mart_customer_summary (
    customer_id     INTEGER       NOT NULL,
    total_orders    BIGINT        NOT NULL,
    total_amount    DECIMAL(18,2) NOT NULL,
    last_order_date DATE          NOT NULL,
    updated_at      TIMESTAMP     NOT NULL
);
