-- The first schema: meta, API keys, statements (with sub-statements), sessions.
-- The same tables and columns as SQLite's; times are epoch seconds (double precision, like
-- SQLite's REAL) so both stores behave alike; JSON stays text, flags are booleans.

CREATE TABLE sqltide_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    principal    text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    name         text,
    is_admin     boolean NOT NULL DEFAULT false,
    created_at   double precision NOT NULL,
    revoked_at   double precision,
    last_used_at double precision
);

CREATE TABLE statements (
    id               text PRIMARY KEY,
    parent_id        text,
    idx              integer NOT NULL DEFAULT 0,
    principal        text NOT NULL,
    warehouse        text NOT NULL,
    status           text NOT NULL,
    query_string     text NOT NULL,
    query_strings    text,
    parameters       text,
    statement_name   text,
    client_token     text,
    request_hash     text,
    with_event       boolean NOT NULL DEFAULT false,
    is_batch         boolean NOT NULL DEFAULT false,
    batch_mode       text,
    session_id       text,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    started_at       double precision,
    ended_at         double precision,
    result_rows      bigint,
    result_size      bigint,
    has_result_set   boolean NOT NULL DEFAULT false,
    result_meta      text,
    result_expired   boolean NOT NULL DEFAULT false,
    error            text,
    lease_owner      text,
    lease_expires_at double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    attempts         integer NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX statements_client_token
    ON statements (principal, client_token)
    WHERE client_token IS NOT NULL AND parent_id IS NULL;
CREATE INDEX statements_queue
    ON statements (status, warehouse, created_at) WHERE parent_id IS NULL;
CREATE INDEX statements_principal_created
    ON statements (principal, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX statements_parent ON statements (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX statements_session ON statements (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX statements_ended ON statements (ended_at) WHERE parent_id IS NULL AND NOT result_expired;

CREATE TABLE sessions (
    id                 text PRIMARY KEY,
    principal          text NOT NULL,
    warehouse          text NOT NULL,
    keep_alive_seconds integer NOT NULL,
    created_at         double precision NOT NULL,
    expires_at         double precision NOT NULL,
    closed_at          double precision,
    owner              text
);
