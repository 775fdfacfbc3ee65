"""Durations and operation configs: the AWS SDK's values and defaults, checked when built."""

from __future__ import annotations

import random

import pytest

from sqltide.workflows import ValidationError
from sqltide.workflows.config import (
    MAX_SECONDS,
    CallbackConfig,
    CompletionConfig,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
)


def test_durations_convert_to_whole_seconds() -> None:
    assert Duration.from_seconds(10).to_seconds() == 10
    assert Duration.from_seconds(1.9).to_seconds() == 1  # fractions are dropped, as on AWS
    assert Duration.from_minutes(5).seconds == 300
    assert Duration.from_hours(1.5).seconds == 5400
    assert Duration.from_days(2).seconds == 172_800
    assert Duration() == Duration(0) == Duration.from_seconds(0)
    assert Duration(7.0).seconds == 7 and isinstance(Duration(7.0).seconds, int)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Duration(-1),
        lambda: Duration.from_minutes(-0.5),
        lambda: Duration(MAX_SECONDS + 1),
        lambda: Duration.from_days(400),
        lambda: Duration.from_seconds(float("nan")),
        lambda: Duration.from_seconds(float("inf")),
        lambda: Duration("10"),  # type: ignore[arg-type]
        lambda: Duration(True),
    ],
)
def test_bad_durations_are_refused(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_step_config_defaults_to_at_least_once_without_strategy() -> None:
    cfg = StepConfig()
    assert cfg.step_semantics is StepSemantics.AT_LEAST_ONCE_PER_RETRY
    assert cfg.retry_strategy is None and cfg.serdes is None
    with pytest.raises(ValidationError):
        StepConfig(step_semantics="AT_MOST_ONCE_PER_RETRY")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        StepConfig(retry_strategy=3)  # type: ignore[arg-type]


def test_callback_configs_take_durations_and_zero_means_none() -> None:
    cfg = CallbackConfig(timeout=Duration.from_minutes(5), heartbeat_timeout=Duration(30))
    assert (cfg.timeout_seconds, cfg.heartbeat_timeout_seconds) == (300, 30)
    assert CallbackConfig().timeout_seconds == 0
    assert WaitForCallbackConfig(timeout=Duration(10)).retry_strategy is None
    with pytest.raises(ValidationError):
        CallbackConfig(timeout=60)  # type: ignore[arg-type]


def test_completion_presets() -> None:
    assert CompletionConfig.first_successful() == CompletionConfig(min_successful=1)
    assert CompletionConfig.all_completed() == CompletionConfig(tolerated_failure_percentage=100)
    assert CompletionConfig.all_successful() == CompletionConfig(
        tolerated_failure_count=0, tolerated_failure_percentage=0
    )
    # map fails fast by default, parallel wants every branch to succeed
    assert MapConfig().completion_config == CompletionConfig()
    assert ParallelConfig().completion_config == CompletionConfig.all_successful()


@pytest.mark.parametrize(
    "kw",
    [
        {"min_successful": 0},
        {"tolerated_failure_count": -1},
        {"tolerated_failure_percentage": 101},
        {"tolerated_failure_percentage": -0.1},
        {"min_successful": 1, "should_complete": lambda s: True},
    ],
)
def test_bad_completion_configs_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CompletionConfig(**kw)  # type: ignore[arg-type]


def test_min_successful_cannot_exceed_the_items() -> None:
    CompletionConfig(min_successful=3).validate_for_total(3)
    with pytest.raises(ValidationError, match=r"min_successful \(4\).*\(3\)"):
        CompletionConfig(min_successful=4).validate_for_total(3)


@pytest.mark.parametrize("bad", [0, -2, True, 1.5])
def test_max_concurrency_is_a_positive_int(bad: object) -> None:
    with pytest.raises(ValidationError):
        MapConfig(max_concurrency=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ParallelConfig(max_concurrency=bad)  # type: ignore[arg-type]


def test_jitter_with_an_injected_random_source() -> None:
    half = lambda: 0.5  # noqa: E731
    assert JitterStrategy.NONE.apply_jitter(10, half) == 10
    assert JitterStrategy.FULL.apply_jitter(10, half) == 5
    assert JitterStrategy.HALF.apply_jitter(10, half) == 7.5
    assert JitterStrategy.HALF.finalize_delay(10, half) == 8  # rounded up
    assert JitterStrategy.FULL.finalize_delay(10, lambda: 0.0) == 1  # at least one second
    rng = random.Random(7)
    delays = {JitterStrategy.FULL.finalize_delay(100, rng.random) for _ in range(200)}
    assert min(delays) >= 1 and max(delays) <= 100 and len(delays) > 50
