"""API keys: ``stk_<id>_<secret>``, kept only as a SHA-256 hash, each bound to a principal."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from .errors import Unauthorized, UnprocessableEntity
from .store import ApiKeyRecord, Store

PREFIX = "stk_"
# ARN-like names (arn:aws:iam::123456789012:user/etl) are allowed, so rules written for the
# Data API's events (which match on detail.principal) carry over.
_PRINCIPAL = re.compile(r"^[A-Za-z0-9_.@:/+=,-]{1,256}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store, principal: str, *, name: str | None = None, admin: bool = False
) -> tuple[ApiKeyRecord, str]:
    """A new key for ``principal``; the plain key is returned once and never stored."""
    if not _PRINCIPAL.match(principal):
        raise UnprocessableEntity(
            "principal may hold letters, digits and . _ @ : / + = , - (1 to 256 characters)"
        )
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
    return record, plain


def authenticate(store: Store, key: str | None) -> ApiKeyRecord:
    """The key's record, or :class:`Unauthorized` for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized()
    record = store.find_api_key(hash_key(key))
    if record is None or record.revoked_at is not None:
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    return record
