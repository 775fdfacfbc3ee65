-- Warehouse grants: which principal may use which warehouse, how (read_write or read_only)
-- and as which database role (PostgreSQL warehouses). A statement records the access it was
-- granted when it was accepted, so the worker acts on the record alone.
CREATE TABLE warehouse_grants (
    principal  text NOT NULL,
    warehouse  text NOT NULL,
    access     text NOT NULL CHECK (access IN ('read_write', 'read_only')),
    db_role    text,
    created_at double precision NOT NULL,
    PRIMARY KEY (principal, warehouse)
);

ALTER TABLE statements ADD COLUMN access text;
ALTER TABLE statements ADD COLUMN db_role text;
