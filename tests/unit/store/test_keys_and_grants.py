"""API keys and warehouse grants."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from sqltide.store import ApiKeyRecord, GrantRecord, Store

from .conftest import T0


# -- API keys ----------------------------------------------------------------------------------
def test_api_keys_insert_find_list_revoke(store: Store) -> None:
    admin = ApiKeyRecord("k1", "alice", "h1", T0, name="ci", is_admin=True)
    plain = ApiKeyRecord("k2", "bob", "h2", T0 + 1)
    store.insert_api_key(plain)
    store.insert_api_key(admin)
    assert store.find_api_key("h1") == admin
    assert store.find_api_key("nope") is None
    assert store.list_api_keys() == [admin, plain]  # oldest first
    assert store.revoke_api_key("k2", T0 + 5)
    assert not store.revoke_api_key("k2", T0 + 6)  # once
    assert not store.revoke_api_key("unknown", T0 + 6)
    got = store.find_api_key("h2")
    assert got is not None and got.revoked_at == T0 + 5


def test_has_admin_key_counts_only_active_admin_keys(store: Store) -> None:
    store.insert_api_key(ApiKeyRecord("k1", "alice", "h1", T0, is_admin=True))
    store.insert_api_key(ApiKeyRecord("k2", "bob", "h2", T0))  # not an admin key
    store.insert_api_key(ApiKeyRecord("k3", "carol", "h3", T0, is_admin=True))
    assert store.revoke_api_key("k3", T0 + 1)
    assert store.has_admin_key("alice")
    assert not store.has_admin_key("bob")
    assert not store.has_admin_key("carol")  # revoked
    assert not store.has_admin_key("nobody")


def test_api_keys_found_by_aws_access_key_id(store: Store) -> None:
    aws = ApiKeyRecord(
        "k1",
        "alice",
        "h1",
        T0,
        aws_access_key_id="ASQTAAAABBBBCCCCDDDD",
        aws_secret_sealed="v1:sealed",
        aws_arn="arn:aws:iam::123456789012:user/alice",
    )
    store.insert_api_key(aws)
    store.insert_api_key(ApiKeyRecord("k2", "bob", "h2", T0 + 1))  # no AWS credentials
    assert store.find_api_key_by_access_key_id("ASQTAAAABBBBCCCCDDDD") == aws
    assert store.find_api_key_by_access_key_id("ASQTAAAABBBBCCCCDDDE") is None
    assert store.find_api_key("h1") == aws
    assert [k.aws_access_key_id for k in store.list_api_keys()] == ["ASQTAAAABBBBCCCCDDDD", None]
    assert store.revoke_api_key("k1", T0 + 5)
    revoked = store.find_api_key_by_access_key_id("ASQTAAAABBBBCCCCDDDD")
    assert revoked is not None and revoked.revoked_at == T0 + 5  # found; the caller refuses it
    assert "v1:sealed" not in repr(aws)


def test_an_aws_access_key_id_belongs_to_one_key(store: Store) -> None:
    store.insert_api_key(ApiKeyRecord("k1", "alice", "h1", T0, aws_access_key_id="ASQTX"))
    store.insert_api_key(ApiKeyRecord("k2", "bob", "h2", T0))
    store.insert_api_key(ApiKeyRecord("k3", "carol", "h3", T0))  # many keys without one
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        store.insert_api_key(ApiKeyRecord("k4", "bob", "h4", T0, aws_access_key_id="ASQTX"))


# -- warehouse grants --------------------------------------------------------------------------
def test_grants_upsert_get_list_delete(store: Store) -> None:
    ro = GrantRecord("bob", "pg", "read_only", T0, db_role="bob_role")
    assert store.upsert_grant(GrantRecord("alice", "default", "read_write", T0))
    assert store.upsert_grant(ro)
    assert store.upsert_grant(GrantRecord("bob", "default", "read_write", T0 + 1))
    assert store.get_grant("bob", "pg") == ro
    assert store.get_grant("bob", "nope") is None
    assert store.get_grant("carol", "pg") is None
    assert [(g.principal, g.warehouse) for g in store.list_grants()] == [
        ("alice", "default"),
        ("bob", "default"),
        ("bob", "pg"),
    ]
    assert [g.warehouse for g in store.list_grants("bob")] == ["default", "pg"]
    assert store.list_grants("carol") == []
    # changing a grant keeps when it was first made
    assert not store.upsert_grant(GrantRecord("bob", "pg", "read_write", T0 + 9))
    assert store.get_grant("bob", "pg") == GrantRecord("bob", "pg", "read_write", T0)
    assert store.delete_grant("bob", "pg")
    assert not store.delete_grant("bob", "pg")
    assert store.get_grant("bob", "pg") is None
    assert [g.warehouse for g in store.list_grants("bob")] == ["default"]


def test_a_grant_s_access_is_checked_by_the_schema(store: Store) -> None:
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        store.upsert_grant(GrantRecord("bob", "pg", "superuser", T0))
