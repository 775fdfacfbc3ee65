"""Retry strategies: backoff, caps, jitter, error filters and the presets' numbers."""

from __future__ import annotations

import random
import re

import pytest

from sqltide.workflows import ValidationError
from sqltide.workflows.config import Duration, JitterStrategy
from sqltide.workflows.retries import (
    LinearRetryStrategyConfig,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_linear_retry_strategy,
    create_retry_strategy,
)


def delays(strategy: object, error: Exception, attempts: int) -> list[int | None]:
    out: list[int | None] = []
    for n in range(1, attempts + 1):
        d: RetryDecision = strategy(error, n)  # type: ignore[operator]
        out.append(d.delay_seconds if d.should_retry else None)
    return out


def test_exponential_backoff_is_capped_and_stops_at_max_attempts() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=6,
            initial_delay=Duration(2),
            max_delay=Duration(20),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    # attempts_made counts the failed attempt: 5 retries after 6 attempts' failures
    assert delays(strategy, ValueError("x"), 6) == [2, 6, 18, 20, 20, None]


def test_fractional_delays_round_up_to_at_least_one_second() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration(1),
            backoff_rate=1.5,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert delays(strategy, ValueError(), 3) == [1, 2, 3]  # 1, 1.5 → 2, 2.25 → 3
    zero = create_retry_strategy(
        RetryStrategyConfig(initial_delay=Duration(0), jitter_strategy=JitterStrategy.NONE)
    )
    assert delays(zero, ValueError(), 2) == [1, 1]


def test_full_jitter_draws_from_the_injected_source() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(max_attempts=3, initial_delay=Duration(10)), rand=lambda: 0.25
    )
    assert delays(strategy, ValueError(), 3) == [3, 5, None]  # ceil(2.5), ceil(5.0)
    seeded = [
        delays(create_retry_strategy(rand=random.Random(42).random), ValueError(), 3)
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_error_filters_by_substring_pattern_and_type() -> None:
    cfg = RetryStrategyConfig(
        retryable_errors=["throttl", re.compile(r"^timeout after \d+ s$")],
        retryable_error_types=[ConnectionError],
        jitter_strategy=JitterStrategy.NONE,
    )
    strategy = create_retry_strategy(cfg)
    assert strategy(RuntimeError("request throttled"), 1).should_retry
    assert strategy(RuntimeError("timeout after 30 s"), 1).should_retry
    assert not strategy(RuntimeError("a timeout after 30 s"), 1).should_retry
    assert strategy(ConnectionResetError("reset"), 1).should_retry  # a subclass
    assert not strategy(ValueError("bad input"), 1).should_retry
    # only types given: messages no longer match everything
    only_types = create_retry_strategy(RetryStrategyConfig(retryable_error_types=[KeyError]))
    assert not only_types(ValueError("anything"), 1).should_retry
    assert only_types(KeyError("k"), 1).should_retry
    # neither given: every error is retried
    assert create_retry_strategy()(ValueError("anything"), 1).should_retry


@pytest.mark.parametrize(
    "kw",
    [
        {"max_attempts": 0},
        {"backoff_rate": 0},
        {"retryable_errors": [3]},
        {"retryable_error_types": [ValueError("not a class")]},
    ],
)
def test_bad_retry_configs_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        create_retry_strategy(RetryStrategyConfig(**kw))  # type: ignore[arg-type]


def test_linear_backoff() -> None:
    strategy = create_linear_retry_strategy(
        LinearRetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration(2),
            increment=Duration(3),
            max_delay=Duration(9),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert delays(strategy, ValueError(), 5) == [2, 5, 8, 9, None]


def test_presets_have_the_aws_numbers() -> None:
    err = ValueError("x")
    assert delays(RetryPresets.none(), err, 1) == [None]
    assert delays(RetryPresets.critical(), err, 10) == [1, 2, 3, 4, 6, 8, 12, 18, 26, None]
    assert delays(RetryPresets.linear(), err, 6) == [1, 2, 3, 4, 5, None]
    assert delays(RetryPresets.fixed(), err, 5) == [5, 5, 5, 5, None]
    assert delays(RetryPresets.fixed(Duration(2)), err, 2) == [2, 2]
    default = delays(RetryPresets.default(), err, 6)  # full jitter: at most 5, 10, 20, 40, 60
    assert default[-1] is None and len([d for d in default if d is not None]) == 5
    assert all(1 <= d <= cap for d, cap in zip(default, [5, 10, 20, 40, 60], strict=False) if d)
    assert len([d for d in delays(RetryPresets.transient(), err, 3) if d]) == 2
    assert len([d for d in delays(RetryPresets.resource_availability(), err, 5) if d]) == 4
