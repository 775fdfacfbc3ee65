"""Signed list cursors: where the next page of a list starts, as a token the caller cannot forge.

A cursor is the ``(time, id)`` of the last item shown, bound to the principal and to the list it
came from with an HMAC of the server's secret. So a token cannot be edited to start somewhere
else, cannot be used by another principal, and a statements cursor is no events cursor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from . import errors

#: Longer tokens are refused before anything is decoded.
_MAX_TOKEN_CHARS = 512


class ListCursors:
    """Makes and checks list cursors with one server secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None = None):
        #: Without a secret (tests, a service built alone) tokens last as long as the process.
        self._secret = bytes(secret) if secret is not None else secrets.token_bytes(32)

    def encode(self, principal: str, scope: str, at: float, item_id: str) -> str:
        """The token for the page after the item ``(at, item_id)`` of ``scope``'s list."""
        payload = base64.urlsafe_b64encode(json.dumps([at, item_id]).encode())
        return f"{payload.decode()}.{self._mac(principal, scope, payload)}"

    def decode(self, principal: str, scope: str, token: str) -> tuple[float, str]:
        """``(at, item_id)`` of a token :meth:`encode` made for this principal and list.

        Raises :class:`~sqltide.errors.InvalidNextToken` for anything else.
        """
        if len(token) > _MAX_TOKEN_CHARS:
            raise errors.InvalidNextToken(details={"reason": "malformed"})
        payload, _, mac = token.partition(".")
        # compare_digest raises TypeError for non-ASCII text: compare bytes.
        expected = self._mac(principal, scope, payload.encode()).encode()
        if not hmac.compare_digest(mac.encode(), expected):
            raise errors.InvalidNextToken(details={"reason": "signature does not match"})
        try:
            at, item_id = json.loads(base64.urlsafe_b64decode(payload))
            return float(at), str(item_id)
        except (ValueError, TypeError) as exc:
            raise errors.InvalidNextToken(details={"reason": "malformed"}) from exc

    def _mac(self, principal: str, scope: str, payload: bytes) -> str:
        msg = b"\n".join((scope.encode(), principal.encode(), payload))
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:24]
