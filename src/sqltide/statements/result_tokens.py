"""Next tokens of result pages: opaque, signed positions in one statement's result.

A token is ``base64url(payload) + "." + base64url(mac)``: the payload is the compact JSON
``[chunk, batch, offset]`` and the MAC a truncated HMAC-SHA256 over the payload, the result key
and the page format. A token therefore only works for the result and format it was made for,
and nobody can forge or edit one without the server's secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from ..errors import InvalidNextToken

_DOMAIN = b"sqltide-result-page-v1"
_MAC_BYTES = 16
_MAX_TOKEN_CHARS = 512


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _invalid(reason: str) -> InvalidNextToken:
    return InvalidNextToken(details={"reason": reason})


class TokenSigner:
    """Makes and checks next tokens with one server secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes):
        self._secret = bytes(secret)

    def _mac(self, result_key: str, fmt: str, payload: str) -> bytes:
        msg = b"\0".join((_DOMAIN, result_key.encode(), fmt.encode(), payload.encode()))
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, result_key: str, chunk: int, batch: int, offset: int, fmt: str) -> str:
        """The token for the page of ``result_key`` in ``fmt`` starting at this position."""
        payload = _b64encode(json.dumps([chunk, batch, offset], separators=(",", ":")).encode())
        return f"{payload}.{_b64encode(self._mac(result_key, fmt, payload))}"

    def decode(self, token: str, result_key: str, fmt: str) -> tuple[int, int, int]:
        """``(chunk, batch, offset)`` of a token made by :meth:`encode` for this result.

        Raises :class:`~sqltide.errors.InvalidNextToken` (``details["reason"]`` says why) for
        anything else: garbage, a truncated or edited token, or one of another result or format.
        """
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise _invalid("malformed")
        payload, sep, mac_text = token.partition(".")
        if not sep or not payload or not mac_text:
            raise _invalid("malformed")
        try:
            mac = _b64decode(mac_text)
            raw = _b64decode(payload)
        except (binascii.Error, ValueError):
            raise _invalid("malformed") from None
        if not hmac.compare_digest(mac, self._mac(result_key, fmt, payload)):
            raise _invalid("bad_signature")
        try:
            position = json.loads(raw)
        except ValueError:
            raise _invalid("malformed") from None
        if (
            not isinstance(position, list)
            or len(position) != 3
            or not all(type(v) is int and v >= 0 for v in position)
        ):
            raise _invalid("malformed")
        chunk, batch, offset = position
        return chunk, batch, offset
