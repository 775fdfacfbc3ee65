"""AWS Signature Version 4, verified: who signed a Data API request.

The SDKs sign every request with a key's AWS credentials (``sqltide keys create --aws``):
an ``Authorization: AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/redshift-data/aws4_request,
SignedHeaders=..., Signature=...`` header over a canonical form of the request. The server
rebuilds that form from what it received, signs it with the key's secret and compares. A
failure is answered as AWS answers it (:class:`~sqltide.errors.AwsAuthFailure` carrying the
AWS exception name and AWS's message), so botocore, the AWS CLI and the other SDKs show the
message they show for AWS itself.

What is checked, in order (the cheap checks first; the store is read only for a well-formed,
timely request):

1. an ``Authorization`` header of the AWS4 family (else ``MissingAuthenticationTokenException``),
   with the one algorithm, a ``Credential``, ``SignedHeaders`` and ``Signature``, and an
   ``X-Amz-Date`` (or ``Date``) header (else ``IncompleteSignatureException``);
2. the credential scope: five parts, the service (``redshift-data`` unless the caller names
   another: ``lambda`` for ``sqltide.lambda_durable``), terminator ``aws4_request``, any
   region (recorded on the caller), the date of ``X-Amz-Date``; ``host`` among the signed
   headers; the request time within 15 minutes of the server's clock (else
   ``InvalidSignatureException``, with AWS's "Signature expired: ..." for a stale request);
3. the access key id: a key that carries it and is not revoked, and no session token (sqltide
   issues none) (else ``UnrecognizedClientException``);
4. the payload: ``X-Amz-Content-SHA256``, when sent, must be the body's SHA-256 (an unsigned
   payload is refused: every SDK signs the Data API's small JSON bodies);
5. the signature, compared in constant time.

A verified key (its record and opened secret) is remembered for :data:`CACHE_SECONDS`, as
``api/auth.py`` remembers bearer keys, so a busy client costs no store read per request and a
revoked key stops working within that time; the derived signing key is kept per (access key
id, date, region, service), so a request costs two SHA-256 hashes and two HMACs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ..errors import AwsAuthFailure
from ..keys import caller_arn, open_aws_secret, server_secret

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..store import ApiKeyRecord

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "redshift-data"
TERMINATOR = "aws4_request"
#: How far a request's time may be from the server's clock, either way (AWS's 15 minutes).
MAX_SKEW = timedelta(minutes=15)
#: How long a verified key is remembered (a revoked key works at most this much longer).
CACHE_SECONDS = 2.0
_CACHE_MAX = 10_000
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNSIGNED = ("UNSIGNED-PAYLOAD", "STREAMING-")
_ECHO_MAX = 512

#: AWS's own messages, word for word.
MISSING_TOKEN = "Request is missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


@dataclass(frozen=True, slots=True)
class AwsCaller:
    """Who signed a request: the key's principal, as the rest of sqltide knows it, and its ARN."""

    principal: str
    is_admin: bool
    arn: str
    access_key_id: str
    #: The region the request was signed for (any is accepted; sqltide has no regions).
    region: str = ""


def authenticate(
    runtime: Runtime,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    service: str = SERVICE,
) -> AwsCaller:
    """The verified signer of a request, or :class:`~sqltide.errors.AwsAuthFailure`.

    ``service`` is the signing name the credential scope must carry (the Data API's by
    default; the Lambda durable execution face passes ``lambda``).

    ``path`` is the request's path exactly as it came on the wire, still percent-encoded
    (ASGI's ``raw_path``, decoded as Latin-1), and ``query`` the raw query string without
    ``?``; ``headers`` maps lower-case names to values (a repeated header as its values joined
    with ``,``, or a Starlette ``Headers``, whose ``getlist`` is used). Blocking: the store may
    be read, so call it off the event loop (``api.calls.off_loop`` / ``read``). The request time
    is checked against ``runtime.clock``.
    """
    return _verifier(runtime).verify(runtime, method, path, query, headers, body, service)


def _fail(aws_type: str, message: str) -> AwsAuthFailure:
    return AwsAuthFailure(message, details={"aws_type": aws_type})


# -- the Authorization header ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Signed:
    """The parts of a well-formed ``Authorization`` header and the request time."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # the request time in ISO 8601 basic format, as signed
    when: datetime
    service: str = SERVICE


def _parse(headers: Mapping[str, str], query: str, expected: str = SERVICE) -> _Signed:
    header = headers.get("authorization")
    if _has_query_signature(query):
        if header:
            raise _fail(
                "InvalidSignatureException",
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' "
                "as HTTP header.",
            )
        raise _fail(
            "IncompleteSignatureException",
            "Signature Version 4 in the query string (a presigned URL) is not supported "
            "here: sign the Authorization header, as the SDKs do.",
        )
    if not header or not header.startswith("AWS4-"):
        raise _fail("MissingAuthenticationTokenException", MISSING_TOKEN)
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise _fail("IncompleteSignatureException", f"Unsupported AWS 'algorithm': '{algorithm}'")
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            digest = base64.b64encode(hashlib.sha256(part.encode()).digest()).decode()
            raise _fail(
                "IncompleteSignatureException",
                "Invalid key=value pair (missing equal-sign) in Authorization header (hashed "
                f"with SHA-256 and encoded with Base64): '{digest}'.",
            )
        params.setdefault(name.strip(), value.strip())
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    amz_date = headers.get("x-amz-date")
    http_date = headers.get("date")
    if not amz_date and not http_date:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        # AWS echoes the header back; a long one is cut (it came from the caller anyway).
        echo = header if len(header) <= _ECHO_MAX else header[:_ECHO_MAX] + "..."
        raise _fail("IncompleteSignatureException", " ".join([*missing, f"Authorization={echo}"]))
    when = _request_time(amz_date, http_date)
    amz_date = when.strftime(_AMZ_DATE)

    credential = params["Credential"]
    scope = credential.split("/")
    if len(scope) != 5:
        raise _fail(
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'",
        )
    access_key_id, date, region, service, terminator = scope
    if terminator != TERMINATOR:
        raise _fail(
            "InvalidSignatureException",
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'.",
        )
    if service != expected:
        raise _fail(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{expected}'. ",
        )
    if not region:
        raise _fail("InvalidSignatureException", "Credential should be scoped to a valid region. ")
    if date != amz_date[:8]:
        raise _fail(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    # As the signer listed them (lower case and sorted, by the specification): a list in any
    # other form is what that signer signed too, so it is used as it is.
    signed = tuple(params["SignedHeaders"].split(";"))
    if "host" not in signed:
        raise _fail("InvalidSignatureException", HOST_NOT_SIGNED)
    return _Signed(
        access_key_id, date, region, signed, params["Signature"], amz_date, when, service
    )


def _has_query_signature(query: str) -> bool:
    return any(
        unquote(pair.partition("=")[0]) == "X-Amz-Algorithm" for pair in query.split("&") if pair
    )


def _request_time(amz_date: str | None, http_date: str | None) -> datetime:
    if amz_date:
        try:
            return datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise _fail(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601",
            ) from None
    try:
        when = parsedate_to_datetime(http_date or "")
    except (TypeError, ValueError):
        raise _fail(
            "IncompleteSignatureException",
            f"Date must be an RFC 7231 HTTP date or an X-Amz-Date. Got '{http_date}'.",
        ) from None
    # "-0000" (what botocore writes) parses as a naive time: UTC, of unknown local origin.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _check_time(when: datetime, now: datetime) -> None:
    def basic(t: datetime) -> str:
        return t.strftime(_AMZ_DATE)

    if when < now - MAX_SKEW:
        raise _fail(
            "InvalidSignatureException",
            f"Signature expired: {basic(when)} is now earlier than {basic(now - MAX_SKEW)} "
            f"({basic(now)} - 15 min.)",
        )
    if when > now + MAX_SKEW:
        raise _fail(
            "InvalidSignatureException",
            f"Signature not yet current: {basic(when)} is still later than "
            f"{basic(now + MAX_SKEW)} ({basic(now)} + 15 min.)",
        )


# -- the canonical request ---------------------------------------------------------------------
def canonical_uri(path: str) -> str:
    """The path as SigV4 signs it for every service but S3: dot segments and empty segments
    removed, then URI-encoded once more (the path as sent is encoded already)."""
    segments: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if segments:
                segments.pop()
        elif seg and seg != ".":
            segments.append(seg)
    normal = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normal += "/"
    return quote(normal, safe="/~")


def canonical_query(query: str) -> str:
    """Each name and value decoded, then encoded as RFC 3986 says (all but ``A-Za-z0-9-_.~``),
    sorted by name, then value."""
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _header_value(headers: Mapping[str, str], name: str) -> str:
    getlist = getattr(headers, "getlist", None)
    values = getlist(name) if getlist is not None else [headers.get(name, "")]
    # Trimall: no space around the value, runs of spaces inside as one.
    return ",".join(" ".join(v.split()) for v in values)


def _payload_hash(headers: Mapping[str, str], body: bytes) -> str:
    computed = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return computed
    if declared.startswith(_UNSIGNED):
        raise _fail(
            "InvalidSignatureException",
            f"The payload must be signed: X-Amz-Content-SHA256 '{declared}' is not accepted.",
        )
    if declared != computed:
        raise _fail(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return declared


def string_to_sign(
    signed: _Signed,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    """What the signature signs: the algorithm, the time, the scope and the canonical request's
    SHA-256."""
    canonical = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            "".join(
                f"{name}:{_header_value(headers, name.lower())}\n" for name in signed.signed_headers
            ),
            ";".join(signed.signed_headers),
            payload_hash,
        ]
    )
    scope = f"{signed.date}/{signed.region}/{signed.service}/{TERMINATOR}"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{signed.amz_date}\n{scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The key a day's requests for one region and service are signed with, derived from the
    secret."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


# -- keys, remembered --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Known:
    record: ApiKeyRecord
    secret: str
    until: float


class _Verifier:
    """One runtime's caches: verified keys (briefly) and derived signing keys."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = weakref.ref(runtime)
        self._server_key: bytes | None = None
        self._keys: dict[str, _Known] = {}
        self._signing: dict[tuple[str, str, str, str], bytes] = {}

    def owned_by(self, runtime: Runtime) -> bool:
        return self._runtime() is runtime

    def verify(
        self,
        runtime: Runtime,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        service: str = SERVICE,
    ) -> AwsCaller:
        signed = _parse(headers, query, service)
        now = runtime.clock()
        _check_time(signed.when, datetime.fromtimestamp(now, UTC))
        if headers.get("x-amz-security-token"):
            # Temporary (STS) credentials: sqltide issues none, so the token cannot be ours.
            raise _fail("UnrecognizedClientException", INVALID_TOKEN)
        known = self._key(runtime, signed.access_key_id, now)
        payload_hash = _payload_hash(headers, body)
        to_sign = string_to_sign(signed, method, path, query, headers, payload_hash)
        cache_key = (signed.access_key_id, signed.date, signed.region, signed.service)
        key = self._signing.get(cache_key)
        if key is None:
            key = signing_key(known.secret, signed.date, signed.region, signed.service)
            if len(self._signing) >= _CACHE_MAX:
                self._signing.clear()
            self._signing[cache_key] = key
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
            raise _fail("InvalidSignatureException", SIGNATURE_MISMATCH)
        record = known.record
        return AwsCaller(
            principal=record.principal,
            is_admin=record.is_admin,
            arn=caller_arn(record, runtime.settings.aws_account_id),
            access_key_id=signed.access_key_id,
            region=signed.region,
        )

    def _key(self, runtime: Runtime, access_key_id: str, now: float) -> _Known:
        hit = self._keys.get(access_key_id)
        # A clock set back must not stretch a cached entry's life: it is valid until ``until``
        # and never for longer than CACHE_SECONDS from now.
        if hit is not None and now < hit.until <= now + CACHE_SECONDS:
            return hit
        record = runtime.store.find_api_key_by_access_key_id(access_key_id)
        if record is None or record.revoked_at is not None or not record.aws_secret_sealed:
            self._keys.pop(access_key_id, None)
            raise _fail("UnrecognizedClientException", INVALID_TOKEN)
        if self._server_key is None:
            self._server_key = server_secret(runtime.store)
        try:
            secret = open_aws_secret(self._server_key, access_key_id, record.aws_secret_sealed)
        except ValueError:
            # The row was sealed under another server secret (or altered): unusable, and the
            # operator should know. The secret itself is never logged.
            logger.error(
                "the AWS secret of key %s (access key id %s) does not open with this "
                "server's secret; create new AWS credentials for it",
                record.id,
                access_key_id,
            )
            raise _fail("UnrecognizedClientException", INVALID_TOKEN) from None
        known = _Known(record, secret, now + CACHE_SECONDS)
        if len(self._keys) >= _CACHE_MAX:
            self._keys.clear()
        self._keys[access_key_id] = known
        return known


_VERIFIERS: dict[int, _Verifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def _verifier(runtime: Runtime) -> _Verifier:
    """The runtime's verifier, made on first use and dropped with the runtime."""
    found = _VERIFIERS.get(id(runtime))
    if found is not None and found.owned_by(runtime):
        return found
    with _VERIFIERS_LOCK:
        found = _VERIFIERS.get(id(runtime))
        if found is None or not found.owned_by(runtime):
            found = _Verifier(runtime)
            _VERIFIERS[id(runtime)] = found
            weakref.finalize(runtime, _forget, id(runtime), found)
        return found


def _forget(runtime_id: int, verifier: Any) -> None:
    if _VERIFIERS.get(runtime_id) is verifier:
        del _VERIFIERS[runtime_id]
