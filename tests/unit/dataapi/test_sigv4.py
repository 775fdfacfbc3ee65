"""Signature Version 4 verification against botocore's own signer (``SigV4Auth``).

Every request here is signed by botocore exactly as boto3's ``redshift-data`` client signs
one, at a fixed time (botocore's clock is set, the server's is the runtime's), then verified by
``sqltide.dataapi.sigv4.authenticate`` on each state store.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from sqltide.dataapi import sigv4
from sqltide.dataapi.sigv4 import AwsCaller, authenticate
from sqltide.errors import AwsAuthFailure
from sqltide.keys import AwsCredentials, create_key, seal_aws_secret
from sqltide.runtime import Runtime
from sqltide.settings import Settings
from sqltide.store import ApiKeyRecord

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8765/"
BODY = b'{"WorkgroupName": "default", "Sql": "SELECT 1", "Database": "dev"}'
TARGET = "RedshiftData.ExecuteStatement"


@dataclass
class Clock:
    """The server's clock (``Runtime.clock``), set by each test."""

    now: float = T.timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    runtime: Runtime
    clock: Clock
    creds: AwsCredentials
    sign_at: list[datetime] = field(default_factory=lambda: [T])


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    clock = Clock()
    rt = Runtime.build(settings, role="api", clock=clock)
    creds = create_key(rt.store, "alice", aws=True)[2]
    out = Env(rt, clock, creds)
    # botocore signs "now": make its now the test's fixed time.
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda remove_tzinfo=True: out.sign_at[0].replace(tzinfo=None),
    )
    yield out
    rt.stop()


def signed(
    creds: AwsCredentials | Credentials,
    *,
    url: str = URL,
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    service: str = "redshift-data",
    region: str = "us-east-1",
) -> dict[str, Any]:
    """A request signed by botocore, as ``authenticate``'s keyword arguments."""
    if isinstance(creds, AwsCredentials):
        creds = Credentials(creds.access_key_id, creds.secret_access_key)
    base = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET}
    req = AWSRequest(method="POST", url=url, data=body, headers={**base, **(headers or {})})
    SigV4Auth(creds, service, region).add_auth(req)
    parts = urlsplit(url)
    wire = {k.lower(): v for k, v in req.headers.items()}
    wire["host"] = parts.netloc  # the HTTP client's Host header, as botocore signed it
    return {
        "method": "POST",
        "path": parts.path,
        "query": parts.query,
        "headers": wire,
        "body": body,
    }


def verify(env: Env, request: dict[str, Any]) -> AwsCaller:
    return authenticate(env.runtime, **request)


def refused(env: Env, request: dict[str, Any]) -> AwsAuthFailure:
    with pytest.raises(AwsAuthFailure) as caught:
        verify(env, request)
    return caught.value


# -- what passes -----------------------------------------------------------------------------------
def test_a_request_signed_by_botocore_is_verified(env: Env) -> None:
    caller = verify(env, signed(env.creds))
    assert caller == AwsCaller(
        principal="alice",
        is_admin=False,
        arn="arn:aws:iam::000000000000:user/alice",
        access_key_id=env.creds.access_key_id,
        region="us-east-1",
    )
    assert caller.arn == env.creds.arn


@pytest.mark.parametrize("region", ["eu-central-1", "local", "us-gov-west-1"])
def test_any_region_is_accepted_and_recorded(env: Env, region: str) -> None:
    assert verify(env, signed(env.creds, region=region)).region == region


@pytest.mark.parametrize(
    "query",
    [
        "b=2&a=1",
        "a=2&a=1&a=10",  # repeated names sort by value
        "empty=&flag",
        "sql=" + quote("SELECT * FROM t WHERE x = 'ä b'", safe="-_.~"),
        "k%20ey=v%2Fa%3Dl~ue",
        quote("名前", safe="") + "=" + quote("値", safe=""),
    ],
)
def test_query_string_parameters_are_canonicalised_as_aws_does(env: Env, query: str) -> None:
    assert verify(env, signed(env.creds, url=f"{URL}?{query}")).principal == "alice"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/data%20api/",
        "/" + quote("café/straße", safe="/"),  # percent-encoded UTF-8, as a client sends it
        "/a/./b/../c//d",  # dot segments and empty segments are normalised away
        "/redshift/~user/x",
    ],
)
def test_paths_with_unicode_and_odd_segments_verify(env: Env, path: str) -> None:
    request = signed(env.creds, url=f"http://127.0.0.1:8765{path}")
    assert request["path"] == path
    assert verify(env, request).principal == "alice"


def test_a_date_header_may_stand_in_for_x_amz_date(env: Env) -> None:
    # botocore signs with Date (RFC 7231, "-0000") when the request already has one.
    request = signed(env.creds, headers={"Date": "whatever; botocore replaces it"})
    assert "x-amz-date" not in request["headers"]
    assert request["headers"]["date"].endswith("-0000")
    assert verify(env, request).principal == "alice"


def test_a_correct_x_amz_content_sha256_header_is_used(env: Env) -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    request = signed(env.creds, headers={"X-Amz-Content-SHA256": digest})
    assert verify(env, request).principal == "alice"


def test_starlette_headers_are_read_as_the_server_receives_them(env: Env) -> None:
    request = signed(env.creds, headers={"X-Note": "  spaced    out  value "})
    raw = [(k.encode(), v.encode()) for k, v in request["headers"].items()]
    request["headers"] = Headers(raw=raw)
    assert verify(env, request).principal == "alice"


def test_the_request_time_may_be_fifteen_minutes_off_either_way(env: Env) -> None:
    request = signed(env.creds)
    for offset in (timedelta(minutes=15), timedelta(minutes=-15), timedelta(0)):
        env.clock.now = (T + offset).timestamp()
        assert verify(env, request).principal == "alice"


def test_the_arn_is_the_key_s_own_or_derived_from_the_principal(
    env: Env, settings: Settings
) -> None:
    store = env.runtime.store
    own = create_key(store, "bob", aws=True, arn="arn:aws:iam::123456789012:role/etl")[2]
    assert verify(env, signed(own)).arn == "arn:aws:iam::123456789012:role/etl"
    as_arn = create_key(store, "arn:aws:iam::123456789012:user/etl", aws=True)[2]
    assert verify(env, signed(as_arn)).arn == "arn:aws:iam::123456789012:user/etl"
    odd = create_key(store, "team:ops", aws=True, admin=True)[2]
    caller = verify(env, signed(odd))
    assert (caller.arn, caller.is_admin) == ("arn:aws:iam::000000000000:user/team-ops", True)
    # the account is the server's setting, read when the caller is made
    other = settings.model_copy(update={"aws_account_id": "111122223333"})
    rt = Runtime.build(other, role="api", clock=env.clock)
    try:
        assert authenticate(rt, **signed(env.creds)).arn == "arn:aws:iam::111122223333:user/alice"
    finally:
        rt.stop()


# -- what is refused -------------------------------------------------------------------------------
MISMATCH = ("InvalidSignatureException", sigv4.SIGNATURE_MISMATCH)
INVALID_TOKEN = ("UnrecognizedClientException", sigv4.INVALID_TOKEN)


def _set_header(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        request["headers"][name] = value

    return change


def _drop_header(name: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        del request["headers"][name]

    return change


def _authorization(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        header = request["headers"]["authorization"]
        assert old in header
        request["headers"]["authorization"] = header.replace(old, new)

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        request[key] = value

    return change


def _no_change(request: dict[str, Any]) -> None:
    pass


@dataclass(frozen=True)
class Bad:
    """A request made bad: how it is signed, what is done to it after, what AWS answers."""

    id: str
    change: Callable[[dict[str, Any]], None] = _no_change
    aws_type: str = MISMATCH[0]
    message: str = MISMATCH[1]
    sign: dict[str, Any] = field(default_factory=dict)
    server_time: datetime = T
    status: int = 400


BAD = [
    Bad("tampered body", _set("body", BODY.replace(b"SELECT 1", b"DROP TABLE t"))),
    Bad("body dropped", _set("body", b"")),
    Bad("tampered signed header", _set_header("x-amz-target", "RedshiftData.CancelStatement")),
    Bad("tampered host", _set_header("host", "127.0.0.1:9999")),
    Bad("tampered method", _set("method", "PUT")),
    Bad("tampered path", _set("path", "/other")),
    Bad("query added after signing", _set("query", "a=1")),
    Bad("query changed", _set("query", "a=2"), sign={"url": URL + "?a=1"}),
    Bad("signature altered", _authorization("Signature=", "Signature=0")),
    Bad("signature upper-cased", lambda r: _upper_signature(r)),
    Bad("x-amz-date moved", _set_header("x-amz-date", "20260301T120001Z")),
    Bad("region changed", _authorization("/us-east-1/", "/eu-west-1/")),
    Bad(
        "wrong secret",
        sign={"creds": "wrong-secret"},
    ),
    Bad(
        "wrong service",
        aws_type="InvalidSignatureException",
        message="Credential should be scoped to correct service: 'redshift-data'. ",
        sign={"service": "redshift"},
    ),
    Bad(
        "wrong terminator",
        _authorization("/aws4_request", "/aws4_reqest"),
        message="Credential should be scoped with a valid terminator: 'aws4_request', "
        "not 'aws4_reqest'.",
    ),
    Bad(
        "empty region",
        _authorization("/us-east-1/", "//"),
        message="Credential should be scoped to a valid region. ",
    ),
    Bad(
        "credential date is not the request's",
        _authorization("/20260301/", "/20260302/"),
        message="Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '20260302' != '20260301', from '20260301T120000Z'.",
    ),
    Bad(
        "unsigned host",
        _authorization("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"),
        message=sigv4.HOST_NOT_SIGNED,
    ),
    Bad(
        "expired",
        server_time=T + timedelta(minutes=15, seconds=1),
        message="Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z "
        "(20260301T121501Z - 15 min.)",
    ),
    Bad(
        "from the future",
        server_time=T - timedelta(minutes=20),
        message="Signature not yet current: 20260301T120000Z is still later than "
        "20260301T115500Z (20260301T114000Z + 15 min.)",
    ),
    Bad(
        "unknown access key id",
        sign={"creds": "unknown"},
        aws_type=INVALID_TOKEN[0],
        message=INVALID_TOKEN[1],
    ),
    Bad(
        "a session token",
        sign={"creds": "token"},
        aws_type=INVALID_TOKEN[0],
        message=INVALID_TOKEN[1],
    ),
    Bad(
        "payload hash header disagrees with the body",
        _set("body", b"{}"),
        message="The provided 'x-amz-content-sha256' header does not match what was computed.",
        sign={"headers": {"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()}},
    ),
    Bad(
        "unsigned payload",
        message="The payload must be signed: X-Amz-Content-SHA256 'UNSIGNED-PAYLOAD' is not "
        "accepted.",
        sign={"headers": {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}},
    ),
    Bad(
        "no Authorization header",
        _drop_header("authorization"),
        aws_type="MissingAuthenticationTokenException",
        message="Request is missing Authentication Token",
        status=403,
    ),
    Bad(
        "a bearer key instead of a signature",
        _set_header("authorization", "Bearer stk_0000_secret"),
        aws_type="MissingAuthenticationTokenException",
        message="Request is missing Authentication Token",
        status=403,
    ),
    Bad(
        "another algorithm",
        _authorization("AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 "),
        aws_type="IncompleteSignatureException",
        message="Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
    ),
    Bad(
        "no Signature or SignedHeaders",
        lambda r: r["headers"].update(authorization=r["headers"]["authorization"].split(",")[0]),
        aws_type="IncompleteSignatureException",
        message="Authorization header requires 'Signature' parameter. Authorization header "
        "requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=",
    ),
    Bad(
        "a part without '='",
        _authorization(", Signature=", ", Signature "),
        aws_type="IncompleteSignatureException",
        message="Invalid key=value pair (missing equal-sign) in Authorization header",
    ),
    Bad(
        "a credential of three parts",
        _authorization("/redshift-data/aws4_request", ""),
        aws_type="IncompleteSignatureException",
        message="Credential must have exactly 5 slash-delimited elements, e.g. "
        "keyid/date/region/service/term, got '",
    ),
    Bad(
        "no date header",
        _drop_header("x-amz-date"),
        aws_type="IncompleteSignatureException",
        message="Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
        "header.",
    ),
    Bad(
        "a date not in ISO 8601 basic format",
        _set_header("x-amz-date", "2026-03-01T12:00:00Z"),
        aws_type="IncompleteSignatureException",
        message="Date must be in ISO-8601 'basic format'. Got '2026-03-01T12:00:00Z'.",
    ),
    Bad(
        "a presigned query string",
        lambda r: (
            r["headers"].pop("authorization"),
            r.update(query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"),
        ),
        aws_type="IncompleteSignatureException",
        message="Signature Version 4 in the query string (a presigned URL) is not supported",
    ),
    Bad(
        "both a presigned query string and a header",
        _set("query", "X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        message="Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as "
        "HTTP header.",
    ),
]


def _upper_signature(request: dict[str, Any]) -> None:
    header = request["headers"]["authorization"]
    head, _, sig = header.rpartition("Signature=")
    request["headers"]["authorization"] = f"{head}Signature={sig.upper()}"


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_a_bad_request_is_refused_as_aws_refuses_it(env: Env, bad: Bad) -> None:
    sign = dict(bad.sign)
    who = sign.pop("creds", None)
    creds: AwsCredentials | Credentials = env.creds
    if who == "wrong-secret":
        creds = Credentials(env.creds.access_key_id, "x" * 40)
    elif who == "unknown":
        creds = Credentials("ASQT" + "A" * 16, env.creds.secret_access_key)
    elif who == "token":
        creds = Credentials(env.creds.access_key_id, env.creds.secret_access_key, "FQoGZXIvY")
    request = signed(creds, **sign)
    if bad.change is not _no_change:  # unchanged, it passes: the change alone is refused
        assert verify(env, copy.deepcopy(request)).principal == "alice"
    bad.change(request)
    env.clock.now = bad.server_time.timestamp()
    failure = refused(env, request)
    assert failure.aws_type == bad.aws_type, failure.message
    assert failure.message.startswith(bad.message), failure.message
    assert failure.http_status == bad.status
    assert env.creds.secret_access_key not in failure.message


def test_a_revoked_key_stops_working_within_the_cache_time(env: Env) -> None:
    store = env.runtime.store
    record, _, creds = create_key(store, "bob", aws=True)
    assert verify(env, signed(creds)).principal == "bob"
    assert store.revoke_api_key(record.id, T.timestamp())
    # remembered for CACHE_SECONDS: no store read, so the revocation is not seen yet ...
    env.clock.now += sigv4.CACHE_SECONDS / 2
    assert verify(env, signed(creds)).principal == "bob"
    # ... and seen once that time is over
    env.clock.now += sigv4.CACHE_SECONDS
    failure = refused(env, signed(creds))
    assert (failure.aws_type, failure.message) == INVALID_TOKEN


def test_a_clock_set_back_does_not_stretch_the_cache(env: Env) -> None:
    store = env.runtime.store
    record, _, creds = create_key(store, "bob", aws=True)
    env.clock.now = (T + timedelta(minutes=10)).timestamp()
    assert verify(env, signed(creds)).principal == "bob"  # cached until T+10min+2s
    assert store.revoke_api_key(record.id, T.timestamp())
    env.clock.now = (T - timedelta(minutes=10)).timestamp()
    assert refused(env, signed(creds)).aws_type == "UnrecognizedClientException"


def test_a_secret_sealed_under_another_server_secret_is_an_unrecognized_client(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    access_key_id, secret = "ASQT" + "B" * 16, "s" * 40
    sealed = seal_aws_secret(b"\x01" * 32, access_key_id, secret)  # not this server's secret
    env.runtime.store.insert_api_key(
        ApiKeyRecord(
            "k9",
            "bob",
            "h9",
            T.timestamp(),
            aws_access_key_id=access_key_id,
            aws_secret_sealed=sealed,
        )
    )
    with caplog.at_level("ERROR", logger="sqltide.dataapi.sigv4"):
        failure = refused(env, signed(Credentials(access_key_id, secret)))
    assert (failure.aws_type, failure.message) == INVALID_TOKEN
    assert "does not open with this server's secret" in caplog.text
    assert secret not in caplog.text


def test_a_long_malformed_header_is_echoed_cut_short(env: Env) -> None:
    request = signed(env.creds)
    request["headers"]["authorization"] = "AWS4-HMAC-SHA256 Credential=" + "x" * 5000
    failure = refused(env, request)
    assert failure.aws_type == "IncompleteSignatureException"
    assert failure.message.endswith("x" * 100 + "...") and len(failure.message) < 700
