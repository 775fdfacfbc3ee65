"""API keys and warehouse grants, written once for both dialects."""

from __future__ import annotations

from dataclasses import asdict

from ..interfaces.keys import KeyStore
from ..records import ApiKeyRecord, GrantRecord
from . import base as codec
from .base import SqlHooks, Tx


class KeysMixin(SqlHooks, KeyStore):
    """API keys and grants (:class:`~sqltide.store.interfaces.keys.KeyStore`)."""

    # -- API keys ------------------------------------------------------------------------------
    def insert_api_key(self, key: ApiKeyRecord) -> None:
        row = asdict(key)

        def run(tx: Tx) -> None:
            if tx.retried and tx.one("SELECT 1 FROM api_keys WHERE id = ?", (key.id,)):
                return  # the first attempt committed
            tx.execute(
                f"INSERT INTO api_keys ({', '.join(row)}) "
                f"VALUES ({', '.join(':' + k for k in row)})",
                row,
            )

        self._tx("insert_api_key", run)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        rows = self._rows("find_api_key", "SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return codec.api_key(rows[0]) if rows else None

    def find_api_key_by_access_key_id(self, access_key_id: str) -> ApiKeyRecord | None:
        rows = self._rows(
            "find_api_key_by_access_key_id",
            "SELECT * FROM api_keys WHERE aws_access_key_id = ?",
            (access_key_id,),
        )
        return codec.api_key(rows[0]) if rows else None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        rows = self._rows("list_api_keys", "SELECT * FROM api_keys ORDER BY created_at")
        return [codec.api_key(r) for r in rows]

    def has_admin_key(self, principal: str) -> bool:
        rows = self._rows(
            "has_admin_key",
            "SELECT 1 FROM api_keys WHERE principal = ? AND is_admin = ? AND revoked_at IS NULL "
            "LIMIT 1",
            (principal, True),
        )
        return bool(rows)

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
            if cur.rowcount > 0:
                return True
            if tx.retried:  # revoked by our own first attempt?
                row = tx.one("SELECT revoked_at FROM api_keys WHERE id = ?", (key_id,))
                return row is not None and row["revoked_at"] == now
            return False

        return self._tx("revoke_api_key", run)

    # -- warehouse grants ----------------------------------------------------------------------
    def upsert_grant(self, grant: GrantRecord) -> bool:
        row = {
            "principal": grant.principal,
            "warehouse": grant.warehouse,
            "access": grant.access,
            "db_role": grant.db_role,
            "created_at": grant.created_at,
        }
        return self._tx(
            "upsert_grant",
            lambda tx: self._upsert(
                tx,
                "INSERT INTO warehouse_grants (principal, warehouse, access, db_role, created_at) "
                "VALUES (:principal, :warehouse, :access, :db_role, :created_at) "
                "ON CONFLICT (principal, warehouse) DO UPDATE SET "
                "access = excluded.access, db_role = excluded.db_role",
                row,
                "SELECT 1 FROM warehouse_grants WHERE principal = :principal "
                "AND warehouse = :warehouse",
            ),
        )

    def get_grant(self, principal: str, warehouse: str) -> GrantRecord | None:
        rows = self._rows(
            "get_grant",
            "SELECT * FROM warehouse_grants WHERE principal = ? AND warehouse = ?",
            (principal, warehouse),
        )
        return codec.grant(rows[0]) if rows else None

    def list_grants(self, principal: str | None = None) -> list[GrantRecord]:
        if principal is None:
            rows = self._rows(
                "list_grants", "SELECT * FROM warehouse_grants ORDER BY principal, warehouse"
            )
        else:
            rows = self._rows(
                "list_grants",
                "SELECT * FROM warehouse_grants WHERE principal = ? ORDER BY warehouse",
                (principal,),
            )
        return [codec.grant(r) for r in rows]

    def delete_grant(self, principal: str, warehouse: str) -> bool:
        def run(tx: Tx) -> bool:
            cur = tx.execute(
                "DELETE FROM warehouse_grants WHERE principal = ? AND warehouse = ?",
                (principal, warehouse),
            )
            # A retry finding nothing: our first attempt deleted it (as delete_rule does).
            return cur.rowcount > 0 or tx.retried

        return self._tx("delete_grant", run)
