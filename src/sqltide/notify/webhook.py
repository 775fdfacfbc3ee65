"""Signed webhooks: one HTTP POST per attempt, classified for retry.

Signing (the scheme of Stripe's webhooks, with our header names). Each request carries::

    Sqltide-Timestamp: 1735689600
    Sqltide-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

where the signature is the hex HMAC-SHA256, keyed with the subscription's secret, of the
timestamp, a dot and the raw request body: ``f"{timestamp}.{body}"`` (bytes). While a secret
is being rotated the sender passes both secrets and the header carries one ``v1=`` entry per
secret, comma-separated; a receiver accepts the request when any entry matches. A receiver
should:

1. take the raw body bytes (before any JSON parsing) and the two headers;
2. call :func:`verify_signature` (or recompute the HMAC and compare in constant time);
3. reject timestamps more than a few minutes from its clock (default 300 s), which stops
   replays of captured requests;
4. drop duplicates by the notification's ``MessageId``: delivery is at least once.

Retry classification (see :mod:`sqltide.notify.delivery`): 2xx is success; 408, 429 and 5xx
(with ``Retry-After`` honoured as :attr:`DeliveryError.retry_after`), timeouts and connection
errors are retryable; any other status (3xx, since redirects are not followed, and 4xx) is
not. At most :data:`MAX_RESPONSE_BYTES` of the response body are read, for the summary.

Where a webhook may go: :mod:`sqltide.notify.netguard` judges every address a URL resolves
to and pins the connection to a judged one; a refused URL fails with ``target_forbidden``,
not retried. A header value with a line break fails with ``webhook_invalid_header``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from sqltide import __version__
from sqltide.notify.delivery import DeliveryError, DeliveryResult
from sqltide.notify.headers import header_problem
from sqltide.notify.netguard import NetworkGuard, TargetForbidden, guarded_client

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MAX_RESPONSE_BYTES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "send_webhook",
    "sign",
    "verify_signature",
]

TIMESTAMP_HEADER = "Sqltide-Timestamp"
SIGNATURE_HEADER = "Sqltide-Signature"
#: How far a receiver lets a request's timestamp be from its clock, in seconds.
DEFAULT_TOLERANCE_S = 300
#: The most of a response body read (for the summary); the rest is never downloaded.
MAX_RESPONSE_BYTES = 4096
_SUMMARY_CHARS = 300
_RETRYABLE_STATUSES = frozenset({408, 429})


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1`` signature: hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """For receivers: whether a request really comes from the holder of ``secret``.

    Args:
        secret: the subscription's signing secret.
        timestamp: the ``Sqltide-Timestamp`` header.
        body: the raw request body, exactly as received.
        signature: the ``Sqltide-Signature`` header (one or more ``v1=<hex>``, comma-separated).
        tolerance: the most seconds the timestamp may be from ``now`` (either way).
        now: the receiver's clock, in unix seconds (default: ``time.time()``).

    Returns:
        True only if the timestamp is an integer within ``tolerance`` of ``now`` and one of
        the ``v1`` signatures matches.

    >>> ts, body = 1735689600, b'{"Message":"hi"}'
    >>> verify_signature("s3cret", ts, body, "v1=" + sign("s3cret", ts, body), now=ts + 5)
    True
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, ts, raw)
    candidates = [
        value.strip()
        for scheme, _, value in (part.strip().partition("=") for part in signature.split(","))
        if scheme == "v1"
    ]
    # compare against every candidate, so timing does not tell which one matched
    results = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(results)


def send_webhook(
    url: str,
    payload: bytes | Mapping[str, Any],
    *,
    secret: str | Sequence[str] | None,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    guard: NetworkGuard | None = None,
) -> DeliveryResult:
    """POST ``payload`` to ``url``, signed; one attempt.

    Args:
        url: the endpoint (``http`` or ``https``).
        payload: a JSON body: a mapping (serialized compactly as UTF-8) or bytes sent as is
            (e.g. :attr:`ProtocolMessage.body` encoded).
        secret: the signing secret; during a rotation, a list of secrets (one ``v1`` entry
            each); None sends no signature (the timestamp header is still sent).
        timeout: seconds allowed for each of connecting, writing the request and waiting for
            the response (httpx's per-phase timeouts).
        headers: extra request headers (they may override ``Content-Type``, not the
            signature headers).
        client: an :class:`httpx.Client` to reuse (connection pooling, custom CA);
            redirects are never followed. Build it with
            :func:`~sqltide.notify.netguard.guarded_client`: a client without the guard can
            reach any address. A throw-away guarded client is used when None.
        guard: the addresses the throw-away client may reach (default: the ``SQLTIDE_``
            settings of the environment, see :mod:`sqltide.notify.netguard`).

    Returns:
        ``ok=True`` with the status and the start of the response body.

    Raises:
        DeliveryError: ``webhook_timeout``, ``webhook_unreachable``,
            ``webhook_http_<status>``, ``webhook_invalid_url``, ``webhook_invalid_header``
            or ``target_forbidden`` (see the module docstring).
    """
    for name, value in (headers or {}).items():
        problem = header_problem(name, value)
        if problem:  # checked when the target was created; a stored value may predate that
            raise DeliveryError("webhook_invalid_header", problem, retryable=False)
    if isinstance(payload, bytes):
        body = payload
    else:
        body = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    # httpx.Headers is case-insensitive: the caller's "content-type" replaces ours, and
    # nobody's "sqltide-signature" survives ours.
    request_headers = httpx.Headers(
        {"Content-Type": "application/json", "User-Agent": f"sqltide-webhook/{__version__}"}
    )
    request_headers.update(headers or {})
    request_headers[TIMESTAMP_HEADER] = str(timestamp)
    request_headers.pop(SIGNATURE_HEADER, None)
    secrets = [secret] if isinstance(secret, str) else list(secret or [])
    if secrets:
        request_headers[SIGNATURE_HEADER] = ",".join(
            f"v1={sign(s, timestamp, body)}" for s in secrets
        )
    own_client = client is None
    http = client or guarded_client(guard or NetworkGuard.from_env(), timeout=timeout)
    started = time.monotonic()
    try:
        status, reason, excerpt, retry_after = _post(http, url, body, request_headers, timeout)
    except DeliveryError as exc:
        exc.latency_s = time.monotonic() - started
        raise
    finally:
        if own_client:
            http.close()
    latency = time.monotonic() - started
    summary = f"HTTP {status} {reason}".rstrip() + (f": {excerpt}" if excerpt else "")
    if 200 <= status < 300:
        return DeliveryResult(ok=True, latency_s=latency, status=status, summary=summary)
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    raise DeliveryError(
        f"webhook_http_{status}",
        f"{url} answered {summary}",
        retryable=retryable,
        status=status,
        retry_after=retry_after if retryable else None,
        latency_s=latency,
    )


def _post(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: httpx.Headers,
    timeout: float,
) -> tuple[int, str, str, float | None]:
    try:
        with http.stream(
            "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
        ) as response:
            excerpt = _read_excerpt(response)
            return (
                response.status_code,
                response.reason_phrase,
                excerpt,
                _retry_after(response.headers.get("Retry-After")),
            )
    except TargetForbidden as exc:
        raise DeliveryError(
            "target_forbidden", f"cannot POST to {url}: {exc.message}", retryable=False
        ) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryError(
            "webhook_timeout",
            f"{url} did not answer within {timeout} s ({type(exc).__name__})",
            retryable=True,
        ) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise DeliveryError(
            "webhook_invalid_url", f"cannot POST to {url!r}: {exc}", retryable=False
        ) from exc
    except httpx.TransportError as exc:
        # connection refused or reset, DNS failure, TLS handshake or certificate, a reply
        # that is not HTTP: all worth another try later (a certificate gets renewed)
        raise DeliveryError(
            "webhook_unreachable",
            f"cannot reach {url}: {exc or type(exc).__name__}",
            retryable=True,
        ) from exc


def _read_excerpt(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES:
                break  # leaving the stream closes the connection: the rest is never read
    except httpx.HTTPError:
        pass  # the status is what counts; a body cut short still leaves a summary
    text = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "\u2026"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
