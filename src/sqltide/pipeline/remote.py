"""The server, as a plan and apply see it: :class:`Remote`, the few calls of
:class:`~sqltide.client.Client` a plan needs, under the names :mod:`.plans` uses.

Errors come back as the client raises them: the API's error classes, and
:class:`~sqltide.client.ConnectionFailed` when the server cannot be reached.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from ..client import Client


class Remote:
    """The rules, topics and warehouses of a server (``/v1/rules``, ``/v1/topics``).

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
        self._client = Client(url, api_key, timeout=timeout, transport=transport)
        self.url = self._client.base_url

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def list_rules(self) -> list[dict[str, Any]]:
        return self._client.rules()

    def list_topics(self) -> list[dict[str, Any]]:
        return self._client.topics()

    def list_warehouses(self) -> list[str]:
        return [w["name"] for w in self._client.warehouses()]

    def put(self, kind: Literal["rule", "topic"], name: str, body: dict[str, Any]) -> Any:
        """Create or replace a rule or topic from a pipeline file's ``body`` (its keys are the
        client's keyword arguments: :data:`~sqltide.pipeline.model.RULE_KEYS`, ``TOPIC_KEYS``)."""
        if kind == "rule":
            return self._client.put_rule(name, **body)
        return self._client.put_topic(
            name, body.get("subscriptions") or [], display_name=body.get("display_name")
        )

    def delete(self, kind: Literal["rule", "topic"], name: str) -> None:
        if kind == "rule":
            self._client.delete_rule(name)
        else:
            self._client.delete_topic(name)
