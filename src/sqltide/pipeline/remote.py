"""The server, as a plan and apply see it: :class:`Remote`, a small HTTP client for
``/v1/rules``, ``/v1/topics`` and ``/v1/warehouses``, which turns error answers back into
sqltide's exceptions.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import httpx

from .. import errors


class Remote:
    """The few calls a plan needs, over plain HTTP (``/v1/rules``, ``/v1/topics``).

    ``url`` and ``api_key`` default as the client's do: ``$SQLTIDE_URL`` / the local server,
    and ``$SQLTIDE_API_KEY`` / the key ``sqltide serve`` saved.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        from ..client._base import resolve_api_key, resolve_base_url

        self.url = resolve_base_url(url)
        key = resolve_api_key(api_key)
        headers = {"Accept": "application/json", "User-Agent": "sqltide-apply"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            from ..client import ConnectionFailed

            raise ConnectionFailed(
                f"Could not reach the sqltide server at {self.url} ({type(exc).__name__}: {exc}). "
                "Is it running? Start one with `sqltide serve`, or point SQLTIDE_URL at it.",
                details={"url": self.url},
            ) from exc
        if not response.is_success:
            raise _error_from(response)
        return response.json() if response.content else None

    def list_rules(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/rules")["rules"])

    def list_topics(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/topics")["topics"])

    def list_warehouses(self) -> list[str]:
        return [w["name"] for w in self._call("GET", "/v1/warehouses")["warehouses"]]

    def put(self, kind: Literal["rule", "topic"], name: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", f"/v1/{kind}s/{quote(name, safe='')}", body)

    def delete(self, kind: Literal["rule", "topic"], name: str) -> None:
        self._call("DELETE", f"/v1/{kind}s/{quote(name, safe='')}")


def _error_from(response: httpx.Response) -> errors.SqltideError:
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict) and isinstance(envelope.get("code"), str):
        code = envelope["code"]
        details = envelope.get("details")
        details = details if isinstance(details, dict) else None
        try:
            exc = errors.error_class_for(code)(envelope.get("message"), details=details)
        except TypeError:  # a class built differently (InvalidFilterPolicy(reason, path))
            exc = errors.SqltideError(envelope.get("message"), details=details)
            exc.http_status = response.status_code  # type: ignore[misc]
        if exc.code != code:
            exc.code = code  # type: ignore[misc]
        return exc
    exc = errors.SqltideError(
        f"{response.request.method} {response.request.url}: HTTP {response.status_code} "
        f"{response.text[:200]}",
        details={"status": response.status_code},
    )
    exc.code = "http_error"  # type: ignore[misc]
    return exc
