"""Configuration of durable operations: the AWS durable execution SDK's ``config`` module.

Durations, step semantics, retry jitter and the per-operation configs (steps, callbacks, child
contexts, map and parallel with their completion rules, invoke). Everything here is a frozen
value checked when it is built: a bad value raises :class:`~sqltide.errors.ValidationError`
before anything is recorded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import ValidationError
from .types import (  # the AWS SDK's config module offers these too
    CompletionDecision,
    CompletionItemStatus,
    CompletionOutcome,
    CompletionStatus,
)

if TYPE_CHECKING:
    from .retries import RetryDecision
    from .serdes import SerDes

T = TypeVar("T")
P = TypeVar("P")  # an invoke's payload
R = TypeVar("R")  # an invoke's result

#: The longest wait, timeout or delay: one year, the longest an execution may live.
MAX_SECONDS = 366 * 86400

__all__ = [
    "MAX_SECONDS",
    "CallbackConfig",
    "ChildConfig",
    "CompletionConfig",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionStatus",
    "Duration",
    "InvokeConfig",
    "JitterStrategy",
    "MapConfig",
    "NestingType",
    "ParallelBranch",
    "ParallelConfig",
    "StepConfig",
    "StepSemantics",
    "WaitForCallbackConfig",
]


@dataclass(frozen=True)
class Duration:
    """A length of time in whole seconds (``Duration.from_minutes(5)``)."""

    seconds: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int | float):
            raise ValidationError(f"a duration is a number of seconds, not {self.seconds!r}")
        if not math.isfinite(self.seconds):
            raise ValidationError(f"a duration must be finite, got {self.seconds!r}")
        if self.seconds < 0:
            raise ValidationError(f"a duration cannot be negative, got {self.seconds} seconds")
        if self.seconds > MAX_SECONDS:
            raise ValidationError(
                f"a duration cannot exceed one year ({MAX_SECONDS} s), got {self.seconds} s"
            )
        if not isinstance(self.seconds, int):
            object.__setattr__(self, "seconds", int(self.seconds))

    def to_seconds(self) -> int:
        """The duration in seconds."""
        return self.seconds

    @classmethod
    def from_seconds(cls, value: float) -> Duration:
        """A duration of ``value`` seconds (fractions are dropped)."""
        return cls(seconds=_whole(value, 1))

    @classmethod
    def from_minutes(cls, value: float) -> Duration:
        """A duration of ``value`` minutes."""
        return cls(seconds=_whole(value, 60))

    @classmethod
    def from_hours(cls, value: float) -> Duration:
        """A duration of ``value`` hours."""
        return cls(seconds=_whole(value, 3600))

    @classmethod
    def from_days(cls, value: float) -> Duration:
        """A duration of ``value`` days."""
        return cls(seconds=_whole(value, 86400))


def _whole(value: float, unit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"a duration is a finite number, not {value!r}")
    return int(value * unit)


class StepSemantics(Enum):
    """How often a step's code may run for one attempt."""

    #: Nothing is recorded before the step runs: a crash mid-step runs the attempt again.
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    #: A STARTED checkpoint is committed before the step runs: an attempt found started on
    #: replay counts as failed (StepInterruptedError) and the retry strategy decides.
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"


class JitterStrategy(StrEnum):
    """Noise added to retry and polling delays so that many executions do not wake together."""

    #: The delay as computed.
    NONE = "NONE"
    #: A random delay between 0 and the computed one.
    FULL = "FULL"
    #: A random delay between half the computed one and all of it.
    HALF = "HALF"

    def apply_jitter(self, delay: float, rand: Callable[[], float] = random.random) -> float:
        """The delay with this jitter; ``rand`` gives a number in [0, 1) (injectable)."""
        if self is JitterStrategy.NONE:
            return delay
        if self is JitterStrategy.HALF:
            return delay / 2 + rand() * (delay / 2)
        return rand() * delay

    def finalize_delay(self, base_delay: float, rand: Callable[[], float] = random.random) -> int:
        """The delay with jitter, rounded up to whole seconds, at least one second."""
        return max(1, math.ceil(self.apply_jitter(base_delay, rand)))


class NestingType(Enum):
    """How map items and parallel branches are recorded."""

    #: Each item or branch is a CONTEXT operation of its own (visible in the history).
    NESTED = "NESTED"
    #: Items and branches are virtual contexts: their operations keep deterministic ids under
    #: the item's id but no CONTEXT operation is recorded for the item itself.
    FLAT = "FLAT"


@dataclass(frozen=True)
class StepConfig:
    """How a step runs: its retry strategy, semantics and serializer.

    Without a retry strategy a failing step follows ``RetryPresets.default()`` (6 attempts).
    """

    retry_strategy: Callable[[Exception, int], RetryDecision] | None = None
    step_semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: SerDes[Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.step_semantics, StepSemantics):
            raise ValidationError(
                f"step_semantics must be a StepSemantics, not {self.step_semantics!r}"
            )
        if self.retry_strategy is not None and not callable(self.retry_strategy):
            raise ValidationError("retry_strategy must be callable (error, attempts_made)")


@dataclass(frozen=True)
class CallbackConfig:
    """A callback's limits; a zero duration means no limit.

    ``timeout``: how long the callback may take in all; ``heartbeat_timeout``: the longest
    silence between heartbeats. Either ending first fails the callback with
    :class:`~sqltide.errors.CallbackTimeoutError`. ``serdes`` reads the result the outside
    system sent (by default the result is returned as the text it was sent as).
    """

    timeout: Duration = field(default_factory=Duration)
    heartbeat_timeout: Duration = field(default_factory=Duration)
    serdes: SerDes[Any] | None = None

    def __post_init__(self) -> None:
        for name in ("timeout", "heartbeat_timeout"):
            if not isinstance(getattr(self, name), Duration):
                raise ValidationError(f"{name} must be a Duration, not {getattr(self, name)!r}")

    @property
    def timeout_seconds(self) -> int:
        """The timeout in seconds (0: none)."""
        return self.timeout.to_seconds()

    @property
    def heartbeat_timeout_seconds(self) -> int:
        """The heartbeat timeout in seconds (0: none)."""
        return self.heartbeat_timeout.to_seconds()


@dataclass(frozen=True)
class WaitForCallbackConfig(CallbackConfig):
    """A ``wait_for_callback``'s callback limits, plus the retry strategy of its submitter."""

    retry_strategy: Callable[[Exception, int], RetryDecision] | None = None


@dataclass(frozen=True)
class ChildConfig(Generic[T]):
    """How a child context's result is serialized and what sub-type it is recorded with."""

    serdes: SerDes[Any] | None = None
    sub_type: str | None = None
    summary_generator: Callable[[Any], str] | None = None
    #: A virtual context records no CONTEXT operation of its own (see NestingType.FLAT).
    is_virtual: bool = False


@dataclass(frozen=True)
class CompletionConfig:
    """When a map or parallel is complete.

    It completes as soon as ``min_successful`` items succeeded, or when failures exceed
    ``tolerated_failure_count`` or ``tolerated_failure_percentage`` (of all items), or when
    every item ended. With none of them set, it completes at the first failure (fail fast).
    ``should_complete`` (instead of the three) decides from a :class:`CompletionStatus`.
    """

    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: int | float | None = None
    should_complete: Callable[[CompletionStatus], CompletionDecision | bool] | None = None

    def __post_init__(self) -> None:
        if self.min_successful is not None and self.min_successful < 1:
            raise ValidationError(f"min_successful must be at least 1, got {self.min_successful}")
        if self.tolerated_failure_count is not None and self.tolerated_failure_count < 0:
            raise ValidationError(
                f"tolerated_failure_count cannot be negative, got {self.tolerated_failure_count}"
            )
        pct = self.tolerated_failure_percentage
        if pct is not None and not 0 <= pct <= 100:
            raise ValidationError(f"tolerated_failure_percentage must be 0..100, got {pct}")
        if self.should_complete is not None and self.has_thresholds:
            raise ValidationError(
                "should_complete cannot be combined with min_successful or the tolerated_* limits"
            )

    @property
    def has_thresholds(self) -> bool:
        """Whether any of min_successful and the tolerated failure limits is set."""
        return (
            self.min_successful is not None
            or self.tolerated_failure_count is not None
            or self.tolerated_failure_percentage is not None
        )

    def validate_for_total(self, total: int) -> None:
        """Check the config against the number of items (before the operation starts)."""
        if self.min_successful is not None and self.min_successful > total:
            raise ValidationError(
                f"min_successful ({self.min_successful}) cannot be more than the number of "
                f"items ({total})"
            )

    @staticmethod
    def first_successful() -> CompletionConfig:
        """Complete at the first success."""
        return CompletionConfig(min_successful=1)

    @staticmethod
    def all_completed() -> CompletionConfig:
        """Run every item whatever fails."""
        return CompletionConfig(tolerated_failure_percentage=100)

    @staticmethod
    def all_successful() -> CompletionConfig:
        """Every item must succeed: complete (as failed) at the first failure."""
        return CompletionConfig(tolerated_failure_count=0, tolerated_failure_percentage=0)


def _check_concurrency(value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValidationError(f"max_concurrency must be at least 1, got {value!r}")


@dataclass(frozen=True)
class MapConfig(Generic[T]):
    """How a map runs: concurrency, completion rule (fail fast by default), serializers.

    ``serdes`` serializes the whole :class:`BatchResult`, ``item_serdes`` each item's result
    (when only ``serdes`` is given it serves both). ``item_namer(item, index)`` names the
    items (``map-item-{index}`` by default).
    """

    max_concurrency: int | None = None
    completion_config: CompletionConfig = field(default_factory=CompletionConfig)
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED
    item_namer: Callable[[T, int], str] | None = None

    def __post_init__(self) -> None:
        _check_concurrency(self.max_concurrency)


@dataclass(frozen=True)
class ParallelConfig:
    """How a parallel runs: concurrency, completion rule (all must succeed by default)."""

    max_concurrency: int | None = None
    completion_config: CompletionConfig = field(default_factory=CompletionConfig.all_successful)
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED

    def __post_init__(self) -> None:
        _check_concurrency(self.max_concurrency)


@dataclass(frozen=True)
class ParallelBranch(Generic[T]):
    """A branch of ``context.parallel`` with a name of its own (``parallel-branch-{i}`` else)."""

    func: Callable[..., T]
    name: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        return self.func(*args, **kwargs)


@dataclass(frozen=True)
class InvokeConfig(Generic[P, R]):
    """Serializers of an invoke's payload and result; ``tenant_id`` is accepted and unused."""

    serdes_payload: SerDes[Any] | None = None
    serdes_result: SerDes[Any] | None = None
    tenant_id: str | None = None
