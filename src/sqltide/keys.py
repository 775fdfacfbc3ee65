"""API keys: ``stk_<id>_<secret>``, kept only as a SHA-256 hash, each bound to a principal.

A key may also carry AWS credentials, for the Data API face (``sqltide.dataapi``): an access
key id (``ASQT`` and 16 base-32 characters, shaped like AWS's ``AKIA…`` ids but never mistaken
for one) and a 40-character secret access key. The server needs the secret itself to verify
Signature Version 4, so it is kept sealed (AES-GCM, under a key derived with HKDF from the
server's secret in the store's meta, bound to its access key id), shown once at creation and
never again.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import Unauthorized, UnprocessableEntity
from .grants import check_grant
from .store import ApiKeyRecord, GrantRecord, Store

PREFIX = "stk_"
#: The start of every AWS access key id sqltide makes. AWS's own ids start with AKIA, ASIA,
#: AIDA, AROA… (and secret scanners look for those); ASQT is none of them.
ACCESS_KEY_PREFIX = "ASQT"
#: The account in the ARN of a key that names none (``Settings.aws_account_id``'s default).
DEFAULT_ACCOUNT_ID = "000000000000"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ACCESS_KEY_ID = re.compile(rf"^{ACCESS_KEY_PREFIX}[{_BASE32}]{{16}}$")
# HKDF's "info": what the derived key is for, so the server secret's other uses never share it.
_SEAL_INFO = b"sqltide/api-keys/aws-secret-access-key/v1"
_SEALED_VERSION = "v1"
# ARNs as IAM writes them: partition, service, (no region), a 12-digit account, a resource.
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+::\d{12}:[A-Za-z0-9_+=,.@/:-]{1,1000}$")
# What an IAM user name and path may hold; anything else in a principal becomes "-".
_NOT_IAM_NAME = re.compile(r"[^A-Za-z0-9_+=,.@/-]")
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


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """A key's AWS credentials as :func:`create_key` returns them, the only time they are shown."""

    access_key_id: str
    secret_access_key: str = field(repr=False)  # never in a log line or a traceback's locals
    arn: str


@overload
def create_key(
    store: Store,
    principal: str,
    *,
    name: str | None = None,
    admin: bool = False,
    warehouses: Sequence[str] = (),
    access: str = "read_write",
    db_role: str | None = None,
    aws: Literal[False] = False,
    arn: None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> tuple[ApiKeyRecord, str]: ...


@overload
def create_key(
    store: Store,
    principal: str,
    *,
    name: str | None = None,
    admin: bool = False,
    warehouses: Sequence[str] = (),
    access: str = "read_write",
    db_role: str | None = None,
    aws: Literal[True],
    arn: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> tuple[ApiKeyRecord, str, AwsCredentials]: ...


@overload
def create_key(
    store: Store,
    principal: str,
    *,
    name: str | None = None,
    admin: bool = False,
    warehouses: Sequence[str] = (),
    access: str = "read_write",
    db_role: str | None = None,
    aws: bool = False,
    arn: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> tuple[ApiKeyRecord, str] | tuple[ApiKeyRecord, str, AwsCredentials]: ...


def create_key(
    store: Store,
    principal: str,
    *,
    name: str | None = None,
    admin: bool = False,
    warehouses: Sequence[str] = (),
    access: str = "read_write",
    db_role: str | None = None,
    aws: bool = False,
    arn: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> tuple[ApiKeyRecord, str] | tuple[ApiKeyRecord, str, AwsCredentials]:
    """A new key for ``principal``; the plain key is returned once and never stored.

    ``warehouses`` are granted to the principal at the same time, with ``access`` and
    ``db_role`` (grants belong to the principal: every key of it shares them).

    With ``aws=True`` the key also gets AWS credentials for the Data API face, and the result
    is ``(record, plain_key, AwsCredentials)``: the secret access key is returned this once and
    kept only sealed. ``arn`` is the ARN its caller appears as (in events' ``detail.principal``);
    without one it is derived from the principal with :func:`aws_arn` and ``account_id`` (the
    server uses ``Settings.aws_account_id``, so pass that to show what it will use).

    In a test, a key boto3's ``redshift-data`` client signs with (any region works)::

        record, key, aws = create_key(
            runtime.store, "alice", warehouses=list(runtime.engines), aws=True
        )
        client = boto3.client(
            "redshift-data",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=aws.access_key_id,
            aws_secret_access_key=aws.secret_access_key,
        )
    """
    check_principal(principal)
    check_grant(access, db_role)
    if arn is not None and not aws:
        raise UnprocessableEntity("an ARN belongs to AWS credentials: ask for them (aws=True)")
    if arn is not None:
        check_arn(arn)
    if not re.fullmatch(r"\d{12}", account_id):
        raise UnprocessableEntity(
            "an AWS account id is 12 digits", details={"account_id": account_id}
        )
    key_id = secrets.token_hex(4)
    plain = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    credentials = None
    sealed = None
    if aws:
        access_key_id = ACCESS_KEY_PREFIX + "".join(secrets.choice(_BASE32) for _ in range(16))
        # 30 random bytes are 40 base-64 characters: AWS's length and alphabet.
        secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
        sealed = seal_aws_secret(server_secret(store), access_key_id, secret)
        credentials = AwsCredentials(access_key_id, secret, arn or aws_arn(principal, account_id))
    record = ApiKeyRecord(
        id=key_id,
        principal=principal,
        key_hash=hash_key(plain),
        created_at=time.time(),
        name=name,
        is_admin=admin,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_sealed=sealed,
        aws_arn=arn,
    )
    store.insert_api_key(record)
    for warehouse in warehouses:
        store.upsert_grant(GrantRecord(principal, warehouse, access, record.created_at, db_role))
    if credentials is not None:
        return record, plain, credentials
    return record, plain


def authenticate(store: Store, key: str | None) -> ApiKeyRecord:
    """The key's record, or :class:`Unauthorized` for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized()
    record = store.find_api_key(hash_key(key))
    if record is None or record.revoked_at is not None:
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    return record


# -- AWS credentials -------------------------------------------------------------------------
def check_arn(arn: str) -> None:
    """Refuse a string that is not an IAM-style ARN (``UnprocessableEntity``)."""
    if not _ARN.match(arn):
        raise UnprocessableEntity(
            "an ARN looks like arn:aws:iam::123456789012:user/etl (a partition, a service, "
            "no region, a 12-digit account, then the resource)",
            details={"arn": arn[:200]},
        )


def is_access_key_id(text: str) -> bool:
    """Whether ``text`` is shaped like an access key id sqltide makes."""
    return bool(_ACCESS_KEY_ID.match(text))


def aws_arn(principal: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """The ARN a principal appears as: itself when it is an ARN already (principals may be
    ARNs, so rules written for AWS's events carry over), else an IAM user of ``account_id``."""
    if principal.startswith("arn:"):
        return principal
    return f"arn:aws:iam::{account_id}:user/{_NOT_IAM_NAME.sub('-', principal)}"


def caller_arn(record: ApiKeyRecord, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """The ARN a key's caller appears as: the key's own, or its principal's."""
    return record.aws_arn or aws_arn(record.principal, account_id)


def server_secret(store: Store) -> bytes:
    """The server's secret (made on first use), as ``Runtime.build`` reads it."""
    return bytes.fromhex(store.get_or_set_meta("secret", secrets.token_hex(32)))


def _sealer(server_key: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(server_key)
    return AESGCM(key)


def seal_aws_secret(server_key: bytes, access_key_id: str, secret: str) -> str:
    """``secret`` encrypted for the store: ``v1:`` and base-64 of nonce and ciphertext.

    The access key id is the associated data, so a sealed secret moved to another key's row
    does not open.
    """
    nonce = secrets.token_bytes(12)
    sealed = _sealer(server_key).encrypt(nonce, secret.encode(), access_key_id.encode())
    return f"{_SEALED_VERSION}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def open_aws_secret(server_key: bytes, access_key_id: str, sealed: str) -> str:
    """The secret :func:`seal_aws_secret` sealed; ``ValueError`` when it does not open (another
    server secret, another key's row, or altered)."""
    version, _, blob = sealed.partition(":")
    if version != _SEALED_VERSION:
        raise ValueError(f"unknown sealed-secret version {version!r}")
    try:
        raw = base64.b64decode(blob, validate=True)
        plain = _sealer(server_key).decrypt(raw[:12], raw[12:], access_key_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise ValueError("the sealed secret does not open with this server's secret") from exc
    return plain.decode()
