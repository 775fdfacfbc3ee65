-- Make query.sql slow on purpose, to watch its polls and durable waits (sqltide demo durable).
-- On Redshift the seed's refresh is a query that runs for longer than a Lambda may (15
-- minutes). A few thousand generated orders take milliseconds, so `orders` becomes a view that
-- first sleeps 25 seconds (DuckDB's sleep_ms, evaluated once per query) and then returns the
-- stored rows unchanged: the batch really runs for 25 s, in its one transaction.
-- Undo: DROP VIEW orders; ALTER TABLE orders_stored RENAME TO orders;

ALTER TABLE orders RENAME TO orders_stored;

CREATE VIEW orders AS
SELECT *
FROM orders_stored
WHERE (SELECT sleep_ms(25000)) IS NULL;
