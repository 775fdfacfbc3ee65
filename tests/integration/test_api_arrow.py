"""Result pages as Arrow IPC streams (``format=arrow``)."""

from __future__ import annotations

import httpx
import pyarrow as pa

from sqltide.client import Client
from sqltide.server import ServerThread


def test_arrow_pages_concatenate_to_the_whole_result(client: Client) -> None:
    st = client.wait(
        client.execute(
            "SELECT range AS i, range::VARCHAR AS s, (range / 3)::DECIMAL(12, 2) AS d "
            "FROM range(50000)"
        ).id,
        timeout=30,
    )
    pages = list(client.result_arrow(st.id, max_rows=12_000))
    assert [p.num_rows for p in pages] == [12_000, 12_000, 12_000, 12_000, 2_000]
    table = pa.concat_tables(pages)
    assert table.column("i").to_pylist() == list(range(50000))
    assert table.schema.field("d").type == pa.decimal128(12, 2)
    assert client.result_table(st.id).equals(table)


def test_an_empty_result_still_has_its_schema(client: Client) -> None:
    st = client.wait(client.execute("SELECT 1 AS a, 'x' AS b WHERE false").id, timeout=30)
    table = client.result_table(st.id)
    assert table.num_rows == 0
    assert table.schema.names == ["a", "b"]


def test_arrow_answer_headers_and_token_binding(
    client: Client, server: ServerThread, api_key: str
) -> None:
    st = client.wait(client.execute("SELECT range AS i FROM range(100)").id, timeout=30)
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{server.url}/v1/statements/{st.id}/result"
    first = httpx.get(url, params={"format": "arrow", "max_rows": 60}, headers=headers)
    assert first.headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert first.headers["Sqltide-Total-Rows"] == "100"
    token = first.headers["Sqltide-Next-Token"]
    # a token is bound to its format: an Arrow token is no good for JSON pages
    wrong = httpx.get(url, params={"format": "json", "next_token": token}, headers=headers)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_next_token"
    rest = httpx.get(url, params={"format": "arrow", "next_token": token}, headers=headers)
    assert pa.ipc.open_stream(rest.content).read_all().column("i").to_pylist() == list(
        range(60, 100)
    )
    assert "Sqltide-Next-Token" not in rest.headers
