"""API keys and the warehouse grants of principals."""

from __future__ import annotations

import abc

from ..records import ApiKeyRecord, GrantRecord


class KeyStore(abc.ABC):
    """API keys (stored by hash) and per-principal warehouse grants."""

    # -- API keys --------------------------------------------------------------------------
    @abc.abstractmethod
    def insert_api_key(self, key: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    def find_api_key_by_access_key_id(self, access_key_id: str) -> ApiKeyRecord | None:
        """The key carrying this AWS access key id (revoked or not), or None."""

    @abc.abstractmethod
    def list_api_keys(self) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    def revoke_api_key(self, key_id: str, now: float) -> bool: ...

    @abc.abstractmethod
    def has_admin_key(self, principal: str) -> bool:
        """Whether ``principal`` holds an admin key that is not revoked."""

    # -- warehouse grants ------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_grant(self, grant: GrantRecord) -> bool:
        """Grant a principal a warehouse, or change an existing grant's access and role (its
        ``created_at`` is kept); True when the grant is new."""

    @abc.abstractmethod
    def get_grant(self, principal: str, warehouse: str) -> GrantRecord | None: ...

    @abc.abstractmethod
    def list_grants(self, principal: str | None = None) -> list[GrantRecord]:
        """Grants by principal, then warehouse (every principal's when None)."""

    @abc.abstractmethod
    def delete_grant(self, principal: str, warehouse: str) -> bool:
        """Revoke a grant; False when there was none."""
