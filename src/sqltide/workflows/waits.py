"""Polling with ``wait_for_condition``: the AWS durable execution SDK's ``waits`` module.

``context.wait_for_condition(check, WaitForConditionConfig(wait_strategy, initial_state))``
calls ``check(state, ctx)`` and hands the new state to ``wait_strategy(state, attempt)``,
which stops polling or continues after a delay. The whole loop is one operation whose
attempts are checkpointed with their state; between attempts the execution is suspended.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import ValidationError, WaitForConditionError
from .config import Duration, JitterStrategy
from .types import WaitForConditionCheckContext

if TYPE_CHECKING:
    from .serdes import SerDes

T = TypeVar("T")

__all__ = [
    "WaitForConditionCheckContext",
    "WaitForConditionConfig",
    "WaitForConditionDecision",
    "WaitStrategyConfig",
    "create_wait_strategy",
]


@dataclass(frozen=True)
class WaitForConditionDecision:
    """Whether to poll again, and after how long."""

    should_continue: bool
    delay: Duration = field(default_factory=Duration)

    @property
    def delay_seconds(self) -> int:
        """The delay in seconds."""
        return self.delay.to_seconds()

    @classmethod
    def continue_waiting(cls, delay: Duration) -> WaitForConditionDecision:
        """Poll again after ``delay`` (at least one second)."""
        return cls(should_continue=True, delay=delay)

    @classmethod
    def stop_polling(cls) -> WaitForConditionDecision:
        """The condition is met: the operation succeeds with the current state."""
        return cls(should_continue=False)


@dataclass
class WaitStrategyConfig(Generic[T]):
    """A polling strategy: poll while ``should_continue_polling(state)`` holds.

    Delays grow as ``initial_delay * backoff_rate ** (attempt - 1)`` up to ``max_delay``,
    jittered; after ``max_attempts`` checks without the condition met the operation fails
    with :class:`~sqltide.errors.WaitForConditionError`.
    """

    should_continue_polling: Callable[[T], bool]
    max_attempts: int = 60
    initial_delay: Duration = field(default_factory=lambda: Duration.from_seconds(5))
    max_delay: Duration = field(default_factory=lambda: Duration.from_minutes(5))
    backoff_rate: int | float = 1.5
    jitter_strategy: JitterStrategy = JitterStrategy.FULL

    def __post_init__(self) -> None:
        if not callable(self.should_continue_polling):
            raise ValidationError("should_continue_polling must be callable (state) -> bool")
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValidationError(f"max_attempts must be at least 1, got {self.max_attempts!r}")
        if self.backoff_rate <= 0:
            raise ValidationError(f"backoff_rate must be positive, got {self.backoff_rate}")

    @property
    def initial_delay_seconds(self) -> int:
        return self.initial_delay.to_seconds()

    @property
    def max_delay_seconds(self) -> int:
        return self.max_delay.to_seconds()


def create_wait_strategy(
    config: WaitStrategyConfig[T], *, rand: Callable[[], float] = random.random
) -> Callable[[T, int], WaitForConditionDecision]:
    """A wait strategy from ``config``; ``rand`` is the jitter's random source."""

    def strategy(state: T, attempts_made: int) -> WaitForConditionDecision:
        # A condition met on the last attempt still succeeds: the check comes first.
        if not config.should_continue_polling(state):
            return WaitForConditionDecision.stop_polling()
        if attempts_made >= config.max_attempts:
            raise WaitForConditionError(
                f"wait_for_condition gave up after {config.max_attempts} attempts without "
                "the condition being met"
            )
        base = min(
            config.initial_delay_seconds * config.backoff_rate ** (attempts_made - 1),
            config.max_delay_seconds,
        )
        return WaitForConditionDecision.continue_waiting(
            Duration(config.jitter_strategy.finalize_delay(base, rand))
        )

    return strategy


@dataclass(frozen=True)
class WaitForConditionConfig(Generic[T]):
    """A ``wait_for_condition``'s strategy, first state and the serializer of its state."""

    wait_strategy: Callable[[T, int], WaitForConditionDecision]
    initial_state: T
    serdes: SerDes[Any] | None = None

    def __post_init__(self) -> None:
        if not callable(self.wait_strategy):
            raise ValidationError("wait_strategy must be callable (state, attempt) -> decision")
