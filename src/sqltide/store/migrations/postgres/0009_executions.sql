-- Durable workflow executions (docs/adr/0008-durable-workflows.md): the executions, the
-- checkpoint of each durable operation, and the append-only history written in the same
-- transaction as every change. Times are epoch seconds, errors and details JSON text, inputs
-- and results the text the workflow's serdes made.
CREATE TABLE executions (
    id                  text PRIMARY KEY,
    workflow            text NOT NULL,
    name                text NOT NULL,
    principal           text NOT NULL,
    status              text NOT NULL,
    input               text,
    result              text,
    error               text,
    created_at          double precision NOT NULL,
    updated_at          double precision NOT NULL,
    ended_at            double precision,
    timeout_at          double precision,
    expires_at          double precision,
    next_run_at         double precision,
    lease_owner         text,
    lease_expires_at    double precision,
    replays             integer NOT NULL DEFAULT 0,
    parent_id           text,
    parent_operation_id text
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
    execution_id         text NOT NULL,
    id                   text NOT NULL,
    seq                  integer NOT NULL,
    parent_id            text,
    type                 text NOT NULL,
    sub_type             text NOT NULL,
    name                 text,
    status               text NOT NULL,
    attempt              integer NOT NULL DEFAULT 0,
    result               text,
    error                text,
    next_attempt_at      double precision,
    wake_at              double precision,
    callback_id          text,
    callback_timeout_at  double precision,
    heartbeat_timeout_at double precision,
    child_execution_id   text,
    started_at           double precision,
    ended_at             double precision,
    updated_at           double precision,
    PRIMARY KEY (execution_id, id)
);
CREATE UNIQUE INDEX execution_operations_seq ON execution_operations (execution_id, seq);
CREATE UNIQUE INDEX execution_operations_callback ON execution_operations (callback_id)
    WHERE callback_id IS NOT NULL;

CREATE TABLE execution_history (
    execution_id text NOT NULL,
    seq          integer NOT NULL,
    at           double precision NOT NULL,
    event        text NOT NULL,
    operation_id text,
    attempt      integer,
    details      text,
    PRIMARY KEY (execution_id, seq)
);
