"""Retry strategies for steps: the AWS durable execution SDK's ``retries`` module.

A retry strategy is a callable ``(error, attempts_made) -> RetryDecision``; ``attempts_made``
counts the attempts so far, the failed one included (1 after the first failure). A retry is
recorded as a PENDING checkpoint with its next attempt time and the execution suspends until
then, so a delay costs no thread. Delays are whole seconds, at least one.

Jitter draws from ``random.random`` unless a strategy is built with ``rand=`` (tests pass a
seeded ``random.Random().random``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from ..errors import SuspendExecution, ValidationError
from .config import Duration, JitterStrategy

if TYPE_CHECKING:
    from .config import ChildConfig
    from .context import DurableContext

T = TypeVar("T")

RetryStrategy = Callable[[Exception, int], "RetryDecision"]

__all__ = [
    "LinearRetryStrategyConfig",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategy",
    "RetryStrategyConfig",
    "WithRetryConfig",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "with_retry",
]


@dataclass(frozen=True)
class RetryDecision:
    """Whether to try again, and after how long."""

    should_retry: bool
    delay: Duration = field(default_factory=Duration)

    @property
    def delay_seconds(self) -> int:
        """The delay in seconds."""
        return self.delay.to_seconds()

    @classmethod
    def retry(cls, delay: Duration) -> RetryDecision:
        """Try again after ``delay`` (at least one second is waited in any case)."""
        return cls(should_retry=True, delay=delay)

    @classmethod
    def no_retry(cls) -> RetryDecision:
        """Give up: the step fails with its last error."""
        return cls(should_retry=False)


ErrorPatterns = Sequence["str | re.Pattern[str]"]
ErrorTypes = Sequence[type[BaseException]]


@dataclass
class RetryStrategyConfig:
    """An exponential backoff: ``initial_delay * backoff_rate ** (attempts_made - 1)``.

    Capped at ``max_delay``, jittered by ``jitter_strategy``. Only errors whose message
    contains one of ``retryable_errors`` (a substring, or a compiled pattern searched in it)
    or that are instances of one of ``retryable_error_types`` are retried; with neither
    given, every error is.
    """

    max_attempts: int = 3
    initial_delay: Duration = field(default_factory=lambda: Duration.from_seconds(5))
    max_delay: Duration = field(default_factory=lambda: Duration.from_minutes(5))
    backoff_rate: int | float = 2.0
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: list[str | re.Pattern[str]] | None = None
    retryable_error_types: list[type[BaseException]] | None = None

    def __post_init__(self) -> None:
        _check_attempts(self.max_attempts)
        if self.backoff_rate <= 0:
            raise ValidationError(f"backoff_rate must be positive, got {self.backoff_rate}")

    @property
    def initial_delay_seconds(self) -> int:
        return self.initial_delay.to_seconds()

    @property
    def max_delay_seconds(self) -> int:
        return self.max_delay.to_seconds()


@dataclass
class LinearRetryStrategyConfig:
    """A linear backoff: ``initial_delay + increment * (attempts_made - 1)``, capped."""

    max_attempts: int = 6
    initial_delay: Duration = field(default_factory=lambda: Duration.from_seconds(1))
    increment: Duration = field(default_factory=lambda: Duration.from_seconds(1))
    max_delay: Duration = field(default_factory=lambda: Duration.from_minutes(5))
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: list[str | re.Pattern[str]] | None = None
    retryable_error_types: list[type[BaseException]] | None = None

    def __post_init__(self) -> None:
        _check_attempts(self.max_attempts)

    @property
    def initial_delay_seconds(self) -> int:
        return self.initial_delay.to_seconds()

    @property
    def increment_seconds(self) -> int:
        return self.increment.to_seconds()

    @property
    def max_delay_seconds(self) -> int:
        return self.max_delay.to_seconds()


def _check_attempts(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"max_attempts must be at least 1, got {value!r}")


class _ErrorFilter:
    """Which errors a strategy retries (every error when no filter is given)."""

    def __init__(self, messages: ErrorPatterns | None, types: ErrorTypes | None):
        if messages is None and types is None:
            self.everything = True
            self.messages: list[str | re.Pattern[str]] = []
            self.types: tuple[type[BaseException], ...] = ()
            return
        self.everything = False
        self.messages = list(messages or [])
        for m in self.messages:
            if not isinstance(m, str | re.Pattern):
                raise ValidationError(
                    f"retryable_errors holds strings or compiled patterns, not {m!r}"
                )
        self.types = tuple(types or ())
        for t in self.types:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise ValidationError(f"retryable_error_types holds exception classes, not {t!r}")

    def matches(self, error: BaseException) -> bool:
        if self.everything:
            return True
        if self.types and isinstance(error, self.types):
            return True
        text = str(error)
        return any(
            m.search(text) is not None if isinstance(m, re.Pattern) else m in text
            for m in self.messages
        )


def create_retry_strategy(
    config: RetryStrategyConfig | None = None, *, rand: Callable[[], float] = random.random
) -> RetryStrategy:
    """An exponential backoff strategy from ``config`` (defaults: 3 attempts, 5 s → 5 min)."""
    cfg = config or RetryStrategyConfig()
    errors = _ErrorFilter(cfg.retryable_errors, cfg.retryable_error_types)

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= cfg.max_attempts or not errors.matches(error):
            return RetryDecision.no_retry()
        base = min(
            cfg.initial_delay_seconds * cfg.backoff_rate ** (attempts_made - 1),
            cfg.max_delay_seconds,
        )
        return RetryDecision.retry(Duration(cfg.jitter_strategy.finalize_delay(base, rand)))

    return strategy


def create_linear_retry_strategy(
    config: LinearRetryStrategyConfig | None = None, *, rand: Callable[[], float] = random.random
) -> RetryStrategy:
    """A linear backoff strategy from ``config`` (defaults: 6 attempts, 1 s, 2 s, 3 s, …)."""
    cfg = config or LinearRetryStrategyConfig()
    errors = _ErrorFilter(cfg.retryable_errors, cfg.retryable_error_types)

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= cfg.max_attempts or not errors.matches(error):
            return RetryDecision.no_retry()
        base = min(
            cfg.initial_delay_seconds + cfg.increment_seconds * (attempts_made - 1),
            cfg.max_delay_seconds,
        )
        return RetryDecision.retry(Duration(cfg.jitter_strategy.finalize_delay(base, rand)))

    return strategy


class RetryPresets:
    """Ready-made strategies (the AWS SDK's presets, with the same numbers)."""

    @classmethod
    def none(cls) -> RetryStrategy:
        """One attempt, no retry."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=1))

    @classmethod
    def default(cls) -> RetryStrategy:
        """What a step without a strategy gets: 6 attempts, 5 s doubling up to 1 min, full jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=6,
                initial_delay=Duration.from_seconds(5),
                max_delay=Duration.from_minutes(1),
                backoff_rate=2,
                jitter_strategy=JitterStrategy.FULL,
            )
        )

    @classmethod
    def transient(cls) -> RetryStrategy:
        """3 attempts, 5 s doubling, half jitter: for brief hiccups."""
        return create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, backoff_rate=2, jitter_strategy=JitterStrategy.HALF)
        )

    @classmethod
    def resource_availability(cls) -> RetryStrategy:
        """5 attempts, 5 s doubling up to 5 min: for something that takes a while to come back."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=5,
                initial_delay=Duration.from_seconds(5),
                max_delay=Duration.from_minutes(5),
                backoff_rate=2,
            )
        )

    @classmethod
    def critical(cls) -> RetryStrategy:
        """10 attempts, 1 s growing by 1.5 times up to 1 min, no jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=10,
                initial_delay=Duration.from_seconds(1),
                max_delay=Duration.from_minutes(1),
                backoff_rate=1.5,
                jitter_strategy=JitterStrategy.NONE,
            )
        )

    @classmethod
    def linear(cls) -> RetryStrategy:
        """6 attempts, 1 s, 2 s, 3 s, 4 s, 5 s apart, no jitter."""
        return create_linear_retry_strategy(
            LinearRetryStrategyConfig(
                max_attempts=6,
                initial_delay=Duration.from_seconds(1),
                increment=Duration.from_seconds(1),
                jitter_strategy=JitterStrategy.NONE,
            )
        )

    @classmethod
    def fixed(cls, interval: Duration | None = None) -> RetryStrategy:
        """5 attempts a fixed interval apart (5 s unless given), no jitter."""
        delay = interval if interval is not None else Duration.from_seconds(5)
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=5,
                initial_delay=delay,
                max_delay=delay,
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        )


@dataclass(frozen=True)
class WithRetryConfig(Generic[T]):
    """How :func:`with_retry` retries a block: its strategy and whether it is a child context."""

    retry_strategy: RetryStrategy | None = None
    wrap_with_run_in_child_context: bool = True
    child_context_config: ChildConfig[T] | None = None


def with_retry(
    context: DurableContext,
    func: Callable[[DurableContext, int], T],
    config: WithRetryConfig[T],
    name: str | None = None,
) -> T:
    """Run a block of durable operations again from its start when it fails.

    ``func(ctx, attempt)`` may hold several operations; between attempts a durable wait of the
    strategy's delay is recorded (named ``{name}-backoff-{attempt}`` when ``name`` is given).
    By default the block is a child context, so its final failure is a ChildContextError.
    """
    strategy = config.retry_strategy or create_retry_strategy()

    def attempts(ctx: DurableContext) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return func(ctx, attempt)
            except SuspendExecution:
                raise
            except Exception as err:
                decision = strategy(err, attempt)
                if not decision.should_retry:
                    raise
                ctx.wait(
                    Duration(max(1, decision.delay_seconds)),
                    name=f"{name}-backoff-{attempt}" if name else None,
                )

    if config.wrap_with_run_in_child_context:
        return context.run_in_child_context(attempts, name=name, config=config.child_context_config)
    return attempts(context)
