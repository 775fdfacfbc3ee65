-- The first schema: meta, API keys, statements (with sub-statements), sessions.

CREATE TABLE sqltide_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    principal    TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    name         TEXT,
    is_admin     INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    revoked_at   REAL,
    last_used_at REAL
);

CREATE TABLE statements (
    id               TEXT PRIMARY KEY,
    parent_id        TEXT,
    idx              INTEGER NOT NULL DEFAULT 0,
    principal        TEXT NOT NULL,
    warehouse        TEXT NOT NULL,
    status           TEXT NOT NULL,
    query_string     TEXT NOT NULL,
    query_strings    TEXT,
    parameters       TEXT,
    statement_name   TEXT,
    client_token     TEXT,
    request_hash     TEXT,
    with_event       INTEGER NOT NULL DEFAULT 0,
    is_batch         INTEGER NOT NULL DEFAULT 0,
    batch_mode       TEXT,
    session_id       TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    ended_at         REAL,
    result_rows      INTEGER,
    result_size      INTEGER,
    has_result_set   INTEGER NOT NULL DEFAULT 0,
    result_meta      TEXT,
    result_expired   INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    lease_owner      TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0
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
CREATE INDEX statements_ended ON statements (ended_at) WHERE parent_id IS NULL AND result_expired = 0;

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    principal          TEXT NOT NULL,
    warehouse          TEXT NOT NULL,
    keep_alive_seconds INTEGER NOT NULL,
    created_at         REAL NOT NULL,
    expires_at         REAL NOT NULL,
    closed_at          REAL,
    owner              TEXT
);
