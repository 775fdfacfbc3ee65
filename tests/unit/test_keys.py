"""API keys with AWS credentials: made once, the secret kept only sealed, on each state store."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from sqltide.errors import UnprocessableEntity
from sqltide.keys import (
    ACCESS_KEY_PREFIX,
    aws_arn,
    create_key,
    is_access_key_id,
    open_aws_secret,
    seal_aws_secret,
    server_secret,
)
from sqltide.store import Store, store_from_url
from sqltide.urls import path_of


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = store_from_url(store_url)
    st.migrate()
    yield st
    st.close()


def raw_row(store_url: str, key_id: str) -> dict[str, Any]:
    """The key's row as the database holds it, read past the store."""
    sql = "SELECT * FROM api_keys WHERE id = ?"
    if store_url.startswith("sqlite"):
        con = sqlite3.connect(path_of(store_url))
        con.row_factory = sqlite3.Row
        try:
            return dict(con.execute(sql, (key_id,)).fetchone())
        finally:
            con.close()
    with psycopg.connect(store_url) as pg:
        cur = pg.execute(sql.replace("?", "%s").encode(), (key_id,))
        names = [d.name for d in cur.description or []]
        row = cur.fetchone()
        assert row is not None
        return dict(zip(names, row, strict=True))


def test_a_key_with_aws_credentials_keeps_its_secret_only_sealed(
    store: Store, store_url: str
) -> None:
    record, plain, aws = create_key(store, "alice", name="ci", aws=True)
    assert plain.startswith("stk_")
    assert is_access_key_id(aws.access_key_id) and aws.access_key_id.startswith("ASQT")
    assert len(aws.access_key_id) == 20 and len(aws.secret_access_key) == 40
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", aws.secret_access_key)
    assert aws.arn == "arn:aws:iam::000000000000:user/alice"
    assert aws.secret_access_key not in repr(aws) and aws.secret_access_key not in repr(record)

    row = raw_row(store_url, record.id)
    assert row["aws_access_key_id"] == aws.access_key_id
    assert row["aws_arn"] is None  # derived from the principal when the caller is made
    assert row["aws_secret_sealed"].startswith("v1:")
    for value in row.values():  # the secret is nowhere in the row, in any column
        assert aws.secret_access_key not in str(value)
    assert plain not in str(row.values())

    found = store.find_api_key_by_access_key_id(aws.access_key_id)
    assert found == record
    assert found.aws_secret_sealed is not None
    opened = open_aws_secret(server_secret(store), aws.access_key_id, found.aws_secret_sealed)
    assert opened == aws.secret_access_key


def test_the_sealed_secret_opens_only_with_its_server_secret_and_key_id(store: Store) -> None:
    _, _, aws = create_key(store, "alice", aws=True)
    record = store.find_api_key_by_access_key_id(aws.access_key_id)
    assert record is not None and record.aws_secret_sealed
    sealed = record.aws_secret_sealed
    secret = server_secret(store)
    assert server_secret(store) == secret  # made once, then kept
    with pytest.raises(ValueError, match="does not open"):
        open_aws_secret(b"\x00" * 32, aws.access_key_id, sealed)  # another server
    with pytest.raises(ValueError, match="does not open"):
        open_aws_secret(secret, ACCESS_KEY_PREFIX + "A" * 16, sealed)  # another key's row
    tampered = sealed[:-6] + ("AAAA==" if not sealed.endswith("AAAA==") else "BBBB==")
    with pytest.raises(ValueError, match="does not open"):
        open_aws_secret(secret, aws.access_key_id, tampered)
    with pytest.raises(ValueError, match="version"):
        open_aws_secret(secret, aws.access_key_id, "v0:" + sealed[3:])
    # two seals of one secret differ (a fresh nonce each time)
    assert seal_aws_secret(secret, "id", "s") != seal_aws_secret(secret, "id", "s")


def test_keys_without_aws_credentials_are_as_before(store: Store) -> None:
    out = create_key(store, "bob")
    assert len(out) == 2
    assert out[0].aws_access_key_id is None and out[0].aws_secret_sealed is None


def test_an_aws_key_may_name_its_arn_and_its_account(store: Store) -> None:
    arn = "arn:aws:iam::123456789012:role/etl-runner"
    record, _, aws = create_key(store, "etl", aws=True, arn=arn)
    assert (record.aws_arn, aws.arn) == (arn, arn)
    _, _, other = create_key(store, "ops@example.com", aws=True, account_id="123456789012")
    assert other.arn == "arn:aws:iam::123456789012:user/ops@example.com"
    for bad in ("arn:aws:iam:eu-west-1:123456789012:user/x", "arn:aws:iam::1234:user/x", "etl"):
        with pytest.raises(UnprocessableEntity, match="an ARN looks like"):
            create_key(store, "etl", aws=True, arn=bad)
    with pytest.raises(UnprocessableEntity, match="ask for them"):
        create_key(store, "etl", arn=arn)
    with pytest.raises(UnprocessableEntity, match="12 digits"):
        create_key(store, "etl", aws=True, account_id="000")
    assert len(store.list_api_keys()) == 2  # nothing was made by the refused calls


@pytest.mark.parametrize(
    ("principal", "arn"),
    [
        ("alice", "arn:aws:iam::000000000000:user/alice"),
        ("team/etl", "arn:aws:iam::000000000000:user/team/etl"),
        ("a:b", "arn:aws:iam::000000000000:user/a-b"),
        ("arn:aws:iam::123456789012:user/etl", "arn:aws:iam::123456789012:user/etl"),
    ],
)
def test_the_arn_of_a_principal(principal: str, arn: str) -> None:
    assert aws_arn(principal) == arn
