"""API keys: ``stk_<id>_<secret>``, kept only as a SHA-256 hash, each bound to a principal."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence

from .errors import Unauthorized, UnprocessableEntity
from .grants import check_grant
from .store import ApiKeyRecord, GrantRecord, Store

PREFIX = "stk_"
# ARN-like names (arn:aws:iam::123456789012:user/etl) are allowed, so rules written for the
# Data API's events (which match on detail.principal) carry over.
_PRINCIPAL = re.compile(r"^[A-Za-z0-9_.@:/+=,-]{1,256}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_principal(principal: str) -> None:
    """Refuse a principal name sqltide does not accept (``UnprocessableEntity``)."""
    if not _PRINCIPAL.match(principal):
        raise UnprocessableEntity(
            "principal may hold letters, digits and . _ @ : / + = , - (1 to 256 characters)"
        )


def create_key(
    store: Store,
    principal: str,
    *,
    name: str | None = None,
    admin: bool = False,
    warehouses: Sequence[str] = (),
    access: str = "read_write",
    db_role: str | None = None,
) -> tuple[ApiKeyRecord, str]:
    """A new key for ``principal``; the plain key is returned once and never stored.

    ``warehouses`` are granted to the principal at the same time, with ``access`` and
    ``db_role`` (grants belong to the principal: every key of it shares them).
    """
    check_principal(principal)
    check_grant(access, db_role)
    key_id = secrets.token_hex(4)
    plain = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(
        id=key_id,
        principal=principal,
        key_hash=hash_key(plain),
        created_at=time.time(),
        name=name,
        is_admin=admin,
    )
    store.insert_api_key(record)
    for warehouse in warehouses:
        store.upsert_grant(GrantRecord(principal, warehouse, access, record.created_at, db_role))
    return record, plain


def authenticate(store: Store, key: str | None) -> ApiKeyRecord:
    """The key's record, or :class:`Unauthorized` for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized()
    record = store.find_api_key(hash_key(key))
    if record is None or record.revoked_at is not None:
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    return record
