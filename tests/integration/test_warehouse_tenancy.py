"""Tenants down to the data: warehouse grants, read-only access, PostgreSQL roles.

Everything goes through the HTTP API of a real server. The PostgreSQL tests make a fresh
database and two login roles with unique names (roles are cluster-wide), protect a shared
table with row-level security, and drop it all at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import pgtools
from conftest import make_settings
from helpers import api, wait_until
from sqltide.client import Client, Statement
from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread

WAIT = 20.0


def done(http: httpx.Client, body: dict[str, Any], path: str = "/v1/statements") -> dict[str, Any]:
    """Submit, then long-poll until the statement ends; its description."""
    resp = http.post(path, json=body)
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    deadline = time.monotonic() + WAIT
    while True:
        st = http.get(f"/v1/statements/{sid}", params={"wait": 5}).json()
        if st["status"] in ("FINISHED", "FAILED", "ABORTED"):
            return st
        assert time.monotonic() < deadline, st


def ok(http: httpx.Client, sql: str, **body: Any) -> dict[str, Any]:
    st = done(http, {"sql": sql, **body})
    assert st["status"] == "FINISHED", st["error"]
    return st


def rows(http: httpx.Client, sql: str, **body: Any) -> list[list[Any]]:
    """Every row of a query's result, page after page."""
    st = ok(http, sql, **body)
    out: list[list[Any]] = []
    token = None
    while True:
        params = {"max_rows": 1} | ({"next_token": token} if token else {})
        page = http.get(f"/v1/statements/{st['id']}/result", params=params).json()
        out += page["rows"]
        token = page.get("next_token")
        if not token:
            return out


def denied(http: httpx.Client, sql: str, **body: Any) -> dict[str, Any]:
    """The statement fails with permission_denied (SQLSTATE 42501); its error."""
    st = done(http, {"sql": sql, **body})
    assert st["status"] == "FAILED", st
    assert (st["error"]["code"], st["error"]["sqlstate"]) == ("permission_denied", "42501"), st
    return st["error"]


def not_found(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 404, resp.text
    error = resp.json()["error"]
    assert error["code"] == "not_found", error
    return error


def same_as_unknown(http: httpx.Client, method: str, path: str, warehouse: str, **kw: Any) -> None:
    """Asking for ``warehouse`` answers exactly as asking for one that does not exist."""

    def answer(name: str) -> tuple[int, str, str, dict[str, Any]]:
        if method == "GET":
            resp = http.get(path, params={**kw.get("params", {}), "warehouse": name})
        else:
            resp = http.post(path, json={**kw["json"], "warehouse": name})
        error = not_found(resp)
        details = {k: ("<w>" if v == name else v) for k, v in error["details"].items()}
        return resp.status_code, error["code"], error["message"].replace(repr(name), "<w>"), details

    assert answer(warehouse) == answer("no_such_warehouse")


# -- grants on DuckDB warehouses ------------------------------------------------------------------
@pytest.fixture
def two_warehouses(tmp_path: Path, store_url: str) -> Iterator[tuple[Runtime, ServerThread]]:
    settings = make_settings(
        tmp_path,
        store=store_url,
        warehouses={"alice_wh": f"duckdb:///{tmp_path / 'alice.duckdb'}"},
    )
    rt = Runtime.build(settings)
    try:
        with ServerThread(rt) as srv:
            yield rt, srv
    finally:
        rt.stop()


def test_an_ungranted_warehouse_answers_as_an_unknown_one(
    two_warehouses: tuple[Runtime, ServerThread],
) -> None:
    rt, srv = two_warehouses
    alice = api(srv, create_key(rt.store, "alice", warehouses=["alice_wh"])[1])
    bob = api(srv, create_key(rt.store, "bob", warehouses=["default"])[1])
    ok(alice, "CREATE TABLE alice_private AS SELECT 'secret' AS s", warehouse="alice_wh")
    assert rows(alice, "SELECT s FROM alice_private", warehouse="alice_wh") == [["secret"]]

    # submit (one statement, a batch, a new session) and the catalog: a plain 404
    sql = {"sql": "SELECT * FROM alice_private"}
    same_as_unknown(bob, "POST", "/v1/statements", "alice_wh", json=sql)
    same_as_unknown(bob, "POST", "/v1/statements/batch", "alice_wh", json={"sqls": ["SELECT 1"]})
    session = {**sql, "session_keep_alive_seconds": 60}
    same_as_unknown(bob, "POST", "/v1/statements", "alice_wh", json=session)
    for path in (
        "/v1/catalog/databases",
        "/v1/catalog/schemas",
        "/v1/catalog/tables",
        "/v1/catalog/tables/main/alice_private",
    ):
        same_as_unknown(bob, "GET", path, "alice_wh")
    message = not_found(bob.post("/v1/statements", json={**sql, "warehouse": "alice_wh"}))
    assert "alice_wh" not in message["message"].replace("'alice_wh'", "")  # not listed

    # /v1/warehouses lists only what each may use
    assert [w["name"] for w in bob.get("/v1/warehouses").json()["warehouses"]] == ["default"]
    assert alice.get("/v1/warehouses").json()["warehouses"] == [
        {"name": "alice_wh", "scheme": "duckdb", "default": False, "access": "read_write"}
    ]
    # on bob's own warehouse alice's table does not exist either
    st = done(bob, sql)
    assert st["status"] == "FAILED" and st["error"]["code"] == "undefined_object"
    # alice's statements, sessions and the default warehouse are not hers
    same_as_unknown(alice, "POST", "/v1/statements", "default", json={"sql": "SELECT 1"})

    # a principal with no grant at all can use nothing
    carol = api(srv, create_key(rt.store, "carol")[1])
    assert carol.get("/v1/warehouses").json() == {"warehouses": []}
    assert "none yet" in not_found(carol.post("/v1/statements", json=sql))["message"]

    # revoking takes effect at once
    assert rt.store.delete_grant("alice", "alice_wh")
    same_as_unknown(alice, "POST", "/v1/statements", "alice_wh", json=sql)
    assert alice.get("/v1/warehouses").json() == {"warehouses": []}


def test_admin_keys_and_default_grants(tmp_path: Path, store_url: str) -> None:
    settings = make_settings(
        tmp_path,
        store=store_url,
        warehouses={"lake": f"duckdb:///{tmp_path / 'lake.duckdb'}"},
        default_grants="lake:read_only",
    )
    rt = Runtime.build(settings)
    try:
        with ServerThread(rt) as srv:
            admin = api(srv, create_key(rt.store, "ops", admin=True)[1])
            anyone = api(srv, create_key(rt.store, "anyone")[1])
            # an admin key may use every warehouse, reading and writing
            assert [
                (w["name"], w["access"]) for w in admin.get("/v1/warehouses").json()["warehouses"]
            ] == [("default", "read_write"), ("lake", "read_write")]
            ok(admin, "CREATE TABLE fish AS SELECT 1 AS n", warehouse="lake")
            ok(admin, "SELECT 1", warehouse="default")
            # SQLTIDE_DEFAULT_GRANTS: every principal gets lake, read-only
            assert anyone.get("/v1/warehouses").json()["warehouses"] == [
                {"name": "lake", "scheme": "duckdb", "default": False, "access": "read_only"}
            ]
            assert rows(anyone, "SELECT n FROM fish", warehouse="lake") == [[1]]
            denied(anyone, "INSERT INTO fish VALUES (2)", warehouse="lake")
            same_as_unknown(anyone, "POST", "/v1/statements", "default", json={"sql": "SELECT 1"})
            # an explicit grant wins over the default one
            rt.statements.grants.grant("anyone", "lake", "read_write")
            ok(anyone, "INSERT INTO fish VALUES (2)", warehouse="lake")
    finally:
        rt.stop()


def test_a_read_only_principal_can_read_but_not_write(
    two_warehouses: tuple[Runtime, ServerThread],
) -> None:
    rt, srv = two_warehouses
    owner = api(srv, create_key(rt.store, "owner", warehouses=["default"])[1])
    reader = api(srv, create_key(rt.store, "reader", warehouses=["default"], access="read_only")[1])
    ok(owner, "CREATE TABLE t AS SELECT range AS n FROM range(3)")

    assert rows(reader, "SELECT n FROM t ORDER BY n") == [[0], [1], [2]]
    assert reader.get("/v1/warehouses").json()["warehouses"][0]["access"] == "read_only"
    assert "read_only" in denied(reader, "INSERT INTO t VALUES (9)")["message"]
    denied(reader, "CREATE TABLE mine (n INTEGER)")
    denied(reader, "UPDATE t SET n = n + 1")
    # what would end the read-only transaction is refused before it runs
    for sql in ("COMMIT", "BEGIN", "ROLLBACK", "ABORT", "END", "CHECKPOINT", "FORCE CHECKPOINT"):
        assert "not allowed" in denied(reader, sql)["message"], sql
    denied(reader, "SELECT * FROM checkpoint()")
    denied(reader, f"ATTACH '{rt.settings.home_dir / 'other.duckdb'}' AS other")

    # a batch runs in one read-only transaction
    st = done(reader, {"sqls": ["SELECT 1", "DELETE FROM t"]}, "/v1/statements/batch")
    assert st["status"] == "FAILED" and st["error"]["code"] == "permission_denied", st
    st = done(
        reader, {"sqls": ["SELECT 1", "COMMIT"], "mode": "auto_commit"}, "/v1/statements/batch"
    )
    assert st["status"] == "FAILED" and st["error"]["code"] == "permission_denied", st
    # a session: a refused write does not break it
    first = ok(reader, "SELECT count(*) FROM t", session_keep_alive_seconds=60)
    denied(reader, "DROP TABLE t", session_id=first["session_id"])
    assert rows(reader, "SELECT count(*) FROM t", session_id=first["session_id"]) == [[3]]

    assert rows(owner, "SELECT n FROM t ORDER BY n") == [[0], [1], [2]]  # nothing changed
    ok(owner, "INSERT INTO t VALUES (3)")  # the owner still writes


def test_a_rule_s_sql_target_respects_its_owner_s_grants(
    two_warehouses: tuple[Runtime, ServerThread],
) -> None:
    rt, srv = two_warehouses
    alice = api(srv, create_key(rt.store, "alice", warehouses=["alice_wh"])[1])
    ok(alice, "CREATE TABLE hits (n INTEGER)", warehouse="alice_wh")
    target = {"id": "t", "kind": "sql", "sql": "INSERT INTO hits VALUES (1)", "warehouse": "x"}

    # naming a warehouse the owner may not use is refused like an unknown one
    for name in ("default", "nope"):
        resp = alice.put(
            "/v1/rules/r",
            json={"event_pattern": {"source": ["s"]}, "targets": [{**target, "warehouse": name}]},
        )
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_rule", resp.text
        assert "that you may use" in resp.json()["error"]["message"]

    rule = {"event_pattern": {"source": ["s"]}, "targets": [{**target, "warehouse": "alice_wh"}]}
    assert alice.put("/v1/rules/r", json=rule).status_code == 201
    alice.post("/v1/events", json={"entries": [{"source": "s", "detail_type": "d"}]})
    wait_until(
        lambda: rows(alice, "SELECT count(*) FROM hits", warehouse="alice_wh") == [[1]], WAIT
    )

    # the grant is revoked: the next delivery fails for good instead of running the SQL
    rt.store.delete_grant("alice", "alice_wh")
    alice.post("/v1/events", json={"entries": [{"source": "s", "detail_type": "d"}]})
    (dead,) = wait_until(
        lambda: alice.get("/v1/deliveries", params={"status": "DEAD"}).json()["deliveries"], WAIT
    )
    assert dead["last_error"]["code"] == "permission_denied", dead
    assert "alice_wh" in dead["last_error"]["message"]
    rt.statements.grants.grant("alice", "alice_wh")
    assert rows(alice, "SELECT count(*) FROM hits", warehouse="alice_wh") == [[1]]  # not run


def test_grants_over_http_need_an_admin_key(two_warehouses: tuple[Runtime, ServerThread]) -> None:
    rt, srv = two_warehouses
    admin = api(srv, create_key(rt.store, "ops", admin=True)[1])
    bob = api(srv, create_key(rt.store, "bob", warehouses=["default"])[1])
    for method, path in (
        ("GET", "/v1/grants"),
        ("PUT", "/v1/grants/bob/alice_wh"),
        ("DELETE", "/v1/grants/bob/default"),
    ):
        resp = bob.request(method, path, json={} if method == "PUT" else None)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "permission_denied"

    arn = "arn:aws:iam::123456789012:user/etl"  # principals may hold "/"
    resp = admin.put(f"/v1/grants/{arn}/alice_wh", json={"access": "read_only"})
    assert resp.status_code == 201, resp.text
    assert {k: v for k, v in resp.json().items() if k != "created_at"} == {
        "principal": arn,
        "warehouse": "alice_wh",
        "access": "read_only",
        "db_role": None,
    }
    resp = admin.put(f"/v1/grants/{arn}/alice_wh", json={"access": "read_write"})
    assert resp.status_code == 200 and resp.json()["access"] == "read_write"
    assert admin.put("/v1/grants/bob/alice_wh", json={}).status_code == 201
    assert [w["name"] for w in bob.get("/v1/warehouses").json()["warehouses"]] == [
        "default",
        "alice_wh",
    ]
    resp = admin.put("/v1/grants/bob/alice_wh", json={"db_role": "bob"})
    assert resp.status_code == 422 and "PostgreSQL warehouses only" in resp.text
    not_found(admin.put("/v1/grants/bob/nope", json={}))
    assert admin.put("/v1/grants/bob/default", json={"access": "admin"}).status_code == 422

    listed = admin.get("/v1/grants").json()["grants"]
    assert [(g["principal"], g["warehouse"]) for g in listed] == [
        (arn, "alice_wh"),
        ("bob", "alice_wh"),
        ("bob", "default"),
    ]
    mine = admin.get("/v1/grants", params={"principal": arn}).json()["grants"]
    assert [g["warehouse"] for g in mine] == ["alice_wh"]
    assert admin.delete("/v1/grants/bob/alice_wh").status_code == 204
    not_found(admin.delete("/v1/grants/bob/alice_wh"))
    same_as_unknown(bob, "POST", "/v1/statements", "alice_wh", json={"sql": "SELECT 1"})


# -- PostgreSQL: database roles and row-level security ---------------------------------------------
@pytest.fixture
def pg_tenants() -> Iterator[tuple[str, str, str]]:
    """A database with roles for alice and bob, a shared table under row-level security and
    a table only alice may read; yields (url, alice's role, bob's role)."""
    suffix = uuid.uuid4().hex[:8]
    alice_role, bob_role = f"sqlt_alice_{suffix}", f"sqlt_bob_{suffix}"
    name = pgtools.create_database(prefix="sqltide_tenancy")
    try:
        with pgtools.admin() as con:
            for role in (alice_role, bob_role):
                con.execute(f"CREATE ROLE {role} LOGIN")
        with _db(name) as db:
            db.execute("CREATE TABLE shared (owner text NOT NULL, note text NOT NULL)")
            db.execute(
                "INSERT INTO shared VALUES "
                f"('{alice_role}', 'a1'), ('{alice_role}', 'a2'), ('{bob_role}', 'b1')"
            )
            db.execute("ALTER TABLE shared ENABLE ROW LEVEL SECURITY")
            db.execute("ALTER TABLE shared FORCE ROW LEVEL SECURITY")
            db.execute("CREATE POLICY own_rows ON shared USING (owner = current_user)")
            db.execute(f"GRANT SELECT, INSERT ON shared TO {alice_role}, {bob_role}")
            db.execute("CREATE TABLE alice_private (secret text)")
            db.execute("INSERT INTO alice_private VALUES ('only for alice')")
            db.execute(f"GRANT SELECT ON alice_private TO {alice_role}")
        yield pgtools.url_for(name), alice_role, bob_role
    finally:
        pgtools.drop_database(name)
        with pgtools.admin() as con:
            for role in (alice_role, bob_role):
                con.execute(f"DROP ROLE IF EXISTS {role}")


def _db(name: str) -> Any:
    import psycopg

    return psycopg.connect(pgtools.url_for(name), autocommit=True)


@pytest.fixture
def pg_server(
    tmp_path: Path, store_url: str, pg_tenants: tuple[str, str, str]
) -> Iterator[tuple[Runtime, ServerThread, str, str]]:
    url, alice_role, bob_role = pg_tenants
    sep = "&" if "?" in url else "?"
    settings = make_settings(
        tmp_path,
        store=store_url,
        warehouses={"pg": url, "pg_shared": f"{url}{sep}sqltide_role_mode=set_role"},
    )
    rt = Runtime.build(settings)
    try:
        with ServerThread(rt) as srv:
            yield rt, srv, alice_role, bob_role
    finally:
        rt.stop()


@pytest.mark.parametrize("warehouse", ["pg", "pg_shared"])  # login, set_role
def test_postgres_roles_see_only_their_rows(
    pg_server: tuple[Runtime, ServerThread, str, str], warehouse: str
) -> None:
    rt, srv, alice_role, bob_role = pg_server
    alice = api(srv, create_key(rt.store, "alice", warehouses=[warehouse], db_role=alice_role)[1])
    bob = api(srv, create_key(rt.store, "bob", warehouses=[warehouse], db_role=bob_role)[1])
    on = {"warehouse": warehouse}

    # row-level security: each sees only its rows, in every page
    query = "SELECT current_user, note FROM shared ORDER BY note"
    assert rows(alice, query, **on) == [[alice_role, "a1"], [alice_role, "a2"]]
    assert rows(bob, query, **on) == [[bob_role, "b1"]]
    # and only its privileges: bob cannot read alice's table
    error = denied(bob, "SELECT * FROM alice_private", **on)
    assert "alice_private" in error["message"]
    assert rows(alice, "SELECT secret FROM alice_private", **on) == [["only for alice"]]
    # a write goes through the same policy (WITH CHECK defaults to USING)
    denied(bob, f"INSERT INTO shared VALUES ('{alice_role}', 'forged')", **on)
    ok(bob, f"INSERT INTO shared VALUES ('{bob_role}', 'b2')", **on)
    assert rows(alice, "SELECT count(*) FROM shared", **on) == [[2]]

    # the catalog runs as the role too
    def tables(http: httpx.Client) -> list[str]:
        resp = http.get("/v1/catalog/tables", params={"schema_pattern": "public", **on})
        return [t["name"] for t in resp.json()["tables"]]

    assert tables(alice) == ["alice_private", "shared"]
    assert tables(bob) == ["shared"]
    not_found(bob.get("/v1/catalog/tables/public/alice_private", params=on))
    assert alice.get("/v1/catalog/tables/public/alice_private", params=on).status_code == 200

    # switching back to the server's user is refused
    for sql in ("RESET ROLE", "SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"):
        assert "changing the role" in denied(bob, sql, **on)["message"], sql
    # in a session too, which keeps its role from statement to statement
    first = ok(bob, "SELECT 1", session_keep_alive_seconds=60, **on)
    assert rows(bob, "SELECT current_user", session_id=first["session_id"], **on) == [[bob_role]]


def test_postgres_read_only_grant(pg_server: tuple[Runtime, ServerThread, str, str]) -> None:
    rt, srv, alice_role, _ = pg_server
    reader = api(srv, create_key(rt.store, "reader", warehouses=["pg"], access="read_only")[1])
    mapped = api(
        srv,
        create_key(rt.store, "mapped", warehouses=["pg"], access="read_only", db_role=alice_role)[
            1
        ],
    )
    on = {"warehouse": "pg"}
    assert rows(reader, "SELECT count(*) FROM alice_private", **on) == [[1]]
    assert "read_only" in denied(reader, "CREATE TABLE nope (n int)", **on)["message"]
    denied(reader, "INSERT INTO alice_private VALUES ('x')", **on)
    denied(mapped, "INSERT INTO shared VALUES (current_user, 'x')", **on)
    for sql in ("COMMIT", "BEGIN", "ROLLBACK", "START TRANSACTION", "SAVEPOINT s", "END"):
        assert "not allowed" in denied(reader, sql, **on)["message"], sql
    # not even the first statement of a batch can turn the transaction read-write
    st = done(
        reader,
        {"sqls": ["SET TRANSACTION READ WRITE", "CREATE TABLE nope (n int)"], **on},
        "/v1/statements/batch",
    )
    assert st["status"] == "FAILED", st
    st = done(reader, {"sql": "SET transaction_read_only = off", **on})
    assert st["status"] == "FAILED", st
    assert rows(reader, "SELECT count(*) FROM pg_tables WHERE tablename = 'nope'", **on) == [[0]]


def test_a_client_sees_the_same(pg_server: tuple[Runtime, ServerThread, str, str]) -> None:
    """The Python client over the same API: bob's failure is a permission error."""
    rt, srv, _, bob_role = pg_server
    key = create_key(rt.store, "bob", warehouses=["pg"], db_role=bob_role)[1]
    with Client(srv.url, key) as bob:
        st: Statement = bob.wait(
            bob.execute("SELECT * FROM alice_private", warehouse="pg").id, timeout=WAIT
        )
        assert st.status == "FAILED"
        assert st.error is not None and st.error["sqlstate"] == "42501"
        assert [w["name"] for w in bob.warehouses()] == ["pg"]
