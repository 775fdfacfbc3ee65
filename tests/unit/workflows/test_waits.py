"""Wait strategies of wait_for_condition: stop, continue with backoff, give up."""

from __future__ import annotations

import pytest

from sqltide.workflows import ValidationError, WaitForConditionError
from sqltide.workflows.config import Duration, JitterStrategy
from sqltide.workflows.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)


def test_strategy_backs_off_then_gives_up_and_a_met_condition_wins() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda s: s["status"] != "FINISHED",
            max_attempts=4,
            initial_delay=Duration(2),
            max_delay=Duration(5),
            backoff_rate=2,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    running = {"status": "STARTED"}
    assert [strategy(running, n).delay_seconds for n in (1, 2, 3)] == [2, 4, 5]
    assert strategy({"status": "FINISHED"}, 4) == WaitForConditionDecision.stop_polling()
    with pytest.raises(WaitForConditionError, match="4 attempts"):
        strategy(running, 4)


def test_defaults_and_jitter_source() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(should_continue_polling=lambda s: True), rand=lambda: 0.5
    )
    assert strategy(None, 1).delay_seconds == 3  # ceil(5 * 0.5)
    assert strategy(None, 59).should_continue
    with pytest.raises(WaitForConditionError):
        strategy(None, 60)


def test_decisions_and_configs() -> None:
    assert WaitForConditionDecision.continue_waiting(Duration(7)).delay_seconds == 7
    assert not WaitForConditionDecision.stop_polling().should_continue
    with pytest.raises(ValidationError):
        WaitForConditionConfig(wait_strategy=None, initial_state=0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WaitStrategyConfig(should_continue_polling=lambda s: True, max_attempts=0)
