-- Make query.sql slow on purpose, to watch its polls and durable waits.
-- On Redshift the seed's refresh is a query that runs for longer than a Lambda may (15
-- minutes). A few thousand generated orders take milliseconds, so `orders` becomes a view that
-- first sleeps 25 seconds (pg_sleep, in a subquery evaluated once per query) and then returns
-- the stored rows unchanged: the batch really runs for 25 s, in its one transaction.
-- Undo: DROP VIEW public.orders; ALTER TABLE public.orders_stored RENAME TO orders;

ALTER TABLE public.orders RENAME TO orders_stored;

CREATE VIEW public.orders AS
SELECT *
FROM public.orders_stored
WHERE (SELECT pg_sleep(25)) IS NOT NULL;
