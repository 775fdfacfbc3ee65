"""The Amazon Redshift Data API face (docs/data-api.md): AWS SDKs and tools talk to sqltide."""
