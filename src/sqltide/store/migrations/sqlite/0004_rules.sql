-- Rules (event patterns or schedules, with their targets), notification topics, and the
-- deliveries outbox that routing fills and the deliverer works through.
CREATE TABLE rules (
    principal             TEXT NOT NULL,
    name                  TEXT NOT NULL,
    description           TEXT,
    event_pattern         TEXT,
    schedule              TEXT,
    timezone              TEXT NOT NULL,
    state                 TEXT NOT NULL,
    targets               TEXT NOT NULL,
    missed_policy         TEXT NOT NULL,
    missed_window_seconds REAL,
    last_fired_at         REAL,
    created_at            REAL NOT NULL,
    updated_at            REAL NOT NULL,
    PRIMARY KEY (principal, name)
);

CREATE TABLE topics (
    principal     TEXT NOT NULL,
    name          TEXT NOT NULL,
    display_name  TEXT,
    subscriptions TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (principal, name)
);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    principal        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    rule_name        TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    target           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    delivered_at     REAL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    lease_owner      TEXT,
    lease_expires_at REAL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX deliveries_by_principal ON deliveries (principal, status, created_at);
