-- Retention sweeps: finished statements and settled deliveries past their retention are
-- deleted in slices, oldest first, without scanning what is still kept.
CREATE INDEX statements_retention ON statements (ended_at) WHERE parent_id IS NULL;
CREATE INDEX deliveries_settled ON deliveries (status, updated_at) WHERE status <> 'PENDING';
