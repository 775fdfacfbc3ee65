-- AWS credentials on API keys, for the Data API face (Signature Version 4): an access key id
-- (looked up on every signed request, hence unique and indexed), the secret access key sealed
-- with the server's secret (AES-GCM: the server must read it back to verify signatures, so it
-- cannot be a hash) and an optional ARN naming the caller (NULL: derived from the principal).
ALTER TABLE api_keys ADD COLUMN aws_access_key_id TEXT;
ALTER TABLE api_keys ADD COLUMN aws_secret_sealed TEXT;
ALTER TABLE api_keys ADD COLUMN aws_arn TEXT;

CREATE UNIQUE INDEX api_keys_aws_access_key_id
    ON api_keys (aws_access_key_id) WHERE aws_access_key_id IS NOT NULL;
