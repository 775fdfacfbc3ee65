-- Counting a principal's unfinished statements (on every submit) must not scan its history.
CREATE INDEX statements_principal_status
    ON statements (principal, status) WHERE parent_id IS NULL;
