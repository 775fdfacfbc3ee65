-- Durable batch example on PostgreSQL: the tables query.sql reads and refreshes.
-- query.sql (seed 001's, unchanged) reads `orders` and refreshes `public.mart_customer_summary`;
-- as on Redshift, both are in the `public` schema, which is on the default search_path.
-- Safe to run again: it changes nothing that exists.

-- One row per order line: an order of three products is three rows with one order_id.
CREATE TABLE IF NOT EXISTS public.orders (
    order_id    BIGINT        NOT NULL,
    customer_id INTEGER       NOT NULL,
    order_date  DATE          NOT NULL,
    product_id  INTEGER       NOT NULL,
    quantity    INTEGER       NOT NULL,
    unit_price  NUMERIC(10,2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One row per customer, rebuilt by query.sql (DELETE, then INSERT ... SELECT).
CREATE TABLE IF NOT EXISTS public.mart_customer_summary (
    customer_id     INTEGER       PRIMARY KEY,
    total_orders    BIGINT        NOT NULL,
    total_amount    NUMERIC(18,2) NOT NULL,
    last_order_date DATE          NOT NULL,
    updated_at      TIMESTAMP     NOT NULL
);
