-- Rules (event patterns and schedules), notification topics, and the delivery outbox: one row
-- per event on its way to one target, worked through by the deliverers.
CREATE TABLE rules (
    principal             text NOT NULL,
    name                  text NOT NULL,
    description           text,
    event_pattern         text,
    schedule              text,
    timezone              text NOT NULL,
    state                 text NOT NULL,
    targets               text NOT NULL,
    missed_policy         text NOT NULL,
    missed_window_seconds double precision,
    last_fired_at         double precision,
    created_at            double precision NOT NULL,
    updated_at            double precision NOT NULL,
    PRIMARY KEY (principal, name)
);

CREATE TABLE topics (
    principal     text NOT NULL,
    name          text NOT NULL,
    display_name  text,
    subscriptions text NOT NULL,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    PRIMARY KEY (principal, name)
);

CREATE TABLE deliveries (
    id               text PRIMARY KEY,
    principal        text NOT NULL,
    event_id         text NOT NULL,
    rule_name        text NOT NULL,
    target_id        text NOT NULL,
    target           text NOT NULL,
    payload          text NOT NULL,
    status           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  double precision NOT NULL,
    last_error       text,
    delivered_at     double precision,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    lease_owner      text,
    lease_expires_at double precision
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX deliveries_by_principal ON deliveries (principal, status, created_at);
