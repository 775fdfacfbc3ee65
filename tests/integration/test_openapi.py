from __future__ import annotations

import httpx

from sqltide.server import ServerThread


def test_openapi_documents_every_route_and_the_error_envelope(server: ServerThread) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/statements",
        "/v1/statements/batch",
        "/v1/statements/{statement_id}",
        "/v1/statements/{statement_id}/result",
        "/v1/statements/{statement_id}/cancel",
        "/v1/catalog/tables",
        "/health",
    ):
        assert path in paths, path
    post = paths["/v1/statements"]["post"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "StatementOut"
    )
    assert post["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorEnvelope"
    )
    assert "ExecuteBody" in spec["components"]["schemas"]


def test_docs_page_and_health_need_no_key(server: ServerThread) -> None:
    assert httpx.get(server.url + "/docs").status_code == 200
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
