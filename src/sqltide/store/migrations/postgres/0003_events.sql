-- Events: the archive and the bus's outbox. A state change that causes an event inserts it
-- here in the same transaction, and the bus routes rows whose routed_at is NULL.
CREATE TABLE events (
    id               text PRIMARY KEY,
    principal        text NOT NULL,
    source           text NOT NULL,
    detail_type      text NOT NULL,
    time             double precision NOT NULL,
    body             text NOT NULL,
    depth            integer NOT NULL DEFAULT 0,
    created_at       double precision NOT NULL,
    routed_at        double precision,
    lease_owner      text,
    lease_expires_at double precision
);
CREATE INDEX events_unrouted ON events (created_at) WHERE routed_at IS NULL;
CREATE INDEX events_archive ON events (principal, time, id);
