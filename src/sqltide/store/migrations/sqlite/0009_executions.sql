-- Durable workflow executions (docs/adr/0008-durable-workflows.md): the executions, the
-- checkpoint of each durable operation, and the append-only history written in the same
-- transaction as every change. Times are epoch seconds, errors and details JSON text, inputs
-- and results the text the workflow's serdes made.
CREATE TABLE executions (
    id                  TEXT PRIMARY KEY,
    workflow            TEXT NOT NULL,
    name                TEXT NOT NULL,
    principal           TEXT NOT NULL,
    status              TEXT NOT NULL,
    input               TEXT,
    result              TEXT,
    error               TEXT,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    ended_at            REAL,
    timeout_at          REAL,
    expires_at          REAL,
    next_run_at         REAL,
    lease_owner         TEXT,
    lease_expires_at    REAL,
    replays             INTEGER NOT NULL DEFAULT 0,
    parent_id           TEXT,
    parent_operation_id TEXT
);
-- A name is started once per workflow (the idempotent start).
CREATE UNIQUE INDEX executions_name ON executions (workflow, name);
-- The claim: RUNNING and due, oldest first.
CREATE INDEX executions_due ON executions (status, next_run_at);
-- Recovery of expired leases, time-outs and retention, without scanning the rest.
CREATE INDEX executions_leased ON executions (lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE INDEX executions_timeout ON executions (timeout_at) WHERE status = 'RUNNING';
CREATE INDEX executions_retention ON executions (expires_at);
-- A principal's executions, newest first (keyset pages).
CREATE INDEX executions_by_principal ON executions (principal, created_at, id);

CREATE TABLE execution_operations (
    execution_id         TEXT NOT NULL,
    id                   TEXT NOT NULL,
    seq                  INTEGER NOT NULL,
    parent_id            TEXT,
    type                 TEXT NOT NULL,
    sub_type             TEXT NOT NULL,
    name                 TEXT,
    status               TEXT NOT NULL,
    attempt              INTEGER NOT NULL DEFAULT 0,
    result               TEXT,
    error                TEXT,
    next_attempt_at      REAL,
    wake_at              REAL,
    callback_id          TEXT,
    callback_timeout_at  REAL,
    heartbeat_timeout_at REAL,
    child_execution_id   TEXT,
    started_at           REAL,
    ended_at             REAL,
    updated_at           REAL,
    PRIMARY KEY (execution_id, id)
);
CREATE UNIQUE INDEX execution_operations_seq ON execution_operations (execution_id, seq);
CREATE UNIQUE INDEX execution_operations_callback ON execution_operations (callback_id)
    WHERE callback_id IS NOT NULL;

CREATE TABLE execution_history (
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    at           REAL NOT NULL,
    event        TEXT NOT NULL,
    operation_id TEXT,
    attempt      INTEGER,
    details      TEXT,
    PRIMARY KEY (execution_id, seq)
);
