"""List cursors are signed: a next_token cannot be edited, carried to another principal, or
used for another list (statements and events share one signer, cursors.py)."""

from __future__ import annotations

import base64
import json

import httpx

from sqltide.keys import create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread


def _get(server: ServerThread, key: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(
        server.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_events_and_statements_cursors_are_signed(
    server: ServerThread, runtime: Runtime, api_key: str
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    entries = [{"source": "app", "detail_type": "ping", "detail": {"n": n}} for n in range(3)]
    put = httpx.post(server.url + "/v1/events", json={"entries": entries}, headers=headers)
    assert put.status_code == 200, put.text
    for n in range(3):
        r = httpx.post(server.url + "/v1/statements", json={"sql": f"SELECT {n}"}, headers=headers)
        assert r.status_code == 201, r.text

    events = _get(server, api_key, "/v1/events", max_results=1).json()
    statements = _get(server, api_key, "/v1/statements", max_results=1).json()
    ev_token, st_token = events["next_token"], statements["next_token"]
    assert ev_token and st_token
    # A real token pages on.
    following = _get(server, api_key, "/v1/events", max_results=1, next_token=ev_token)
    assert following.status_code == 200 and following.json()["events"] != events["events"]

    # An unsigned token in the old format (base64 of [time, id]) is refused.
    old = base64.urlsafe_b64encode(json.dumps([0.0, "x"]).encode()).decode()
    # An edited one: the same signature on another position.
    mac = ev_token.partition(".")[2]
    edited = base64.urlsafe_b64encode(json.dumps([0.0, "x"]).encode()).decode() + "." + mac
    for token in (old, edited, "garbage", st_token):  # a statements cursor is no events cursor
        r = _get(server, api_key, "/v1/events", next_token=token)
        assert r.status_code == 400, (token, r.text)
        assert r.json()["error"]["code"] == "invalid_next_token"
    r = _get(server, api_key, "/v1/statements", next_token=ev_token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_next_token"

    # Another principal cannot page on with alice's cursor.
    bob = create_key(runtime.store, "bob")[1]
    for path, token in (("/v1/events", ev_token), ("/v1/statements", st_token)):
        r = _get(server, bob, path, next_token=token)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_next_token"
