-- Where a statement came from when it was submitted through the Data API face (a JSON object:
-- cluster or workgroup, database, db_user, secret_arn, result_format JSON|CSV, the caller's
-- ARN), shown by DescribeStatement and ListStatements, NULL for statements from /v1. A session
-- opened by such a statement records the same (ListSessions shows it). ListSessions reads a
-- principal's sessions newest first.
ALTER TABLE statements ADD COLUMN origin TEXT;
ALTER TABLE sessions ADD COLUMN origin TEXT;

CREATE INDEX sessions_principal_created ON sessions (principal, created_at, id);
