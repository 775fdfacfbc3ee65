"""The shape of delivery outcomes."""

from __future__ import annotations

import json

from sqltide.notify import DeliveryError, DeliveryResult


def test_a_failure_records_like_a_result() -> None:
    error = DeliveryError(
        "webhook_http_503",
        "https://example.com/hook answered HTTP 503",
        retryable=True,
        status=503,
        retry_after=30.0,
        latency_s=0.25,
        details={"attempt": 3},
    )
    assert str(error) == error.message
    assert "webhook_http_503" in repr(error) and "retryable=True" in repr(error)
    assert json.loads(json.dumps(error.to_dict())) == {
        "code": "webhook_http_503",
        "message": "https://example.com/hook answered HTTP 503",
        "retryable": True,
        "status": 503,
        "retry_after": 30.0,
        "latency_s": 0.25,
        "details": {"attempt": 3},
    }
    assert DeliveryResult.from_error(error) == DeliveryResult(
        ok=False,
        latency_s=0.25,
        status=503,
        summary="https://example.com/hook answered HTTP 503",
        error_code="webhook_http_503",
        retryable=True,
    )


def test_defaults() -> None:
    error = DeliveryError("smtp_unavailable", "down", retryable=True)
    assert (error.status, error.retry_after, error.latency_s, error.details) == (
        None,
        None,
        None,
        {},
    )
    assert DeliveryResult.from_error(error).latency_s == 0.0
    result = DeliveryResult(ok=True, latency_s=0.1)
    assert (result.status, result.summary, result.message_id, result.error_code) == (
        None,
        "",
        None,
        None,
    )
