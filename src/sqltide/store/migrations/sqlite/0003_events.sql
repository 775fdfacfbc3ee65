-- Events: the archive and the bus's outbox. A state change that causes an event inserts it
-- here in the same transaction, and the bus routes rows whose routed_at is NULL.
CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    principal        TEXT NOT NULL,
    source           TEXT NOT NULL,
    detail_type      TEXT NOT NULL,
    time             REAL NOT NULL,
    body             TEXT NOT NULL,
    depth            INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    routed_at        REAL,
    lease_owner      TEXT,
    lease_expires_at REAL
);
CREATE INDEX events_unrouted ON events (created_at) WHERE routed_at IS NULL;
CREATE INDEX events_archive ON events (principal, time, id);
