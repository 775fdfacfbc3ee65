"""When a map or parallel is complete, and what its BatchResult tells (pure, no store)."""

from __future__ import annotations

import pytest

from sqltide.workflows import (
    BatchCompletionError,
    ChildContextError,
    CompletionConfig,
    SerDesError,
    complete_batch,
    continue_batch,
)
from sqltide.workflows.batch import CompletionPolicy, Decision
from sqltide.workflows.types import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionItemStatus,
    CompletionOutcome,
    CompletionReason,
    CompletionStatus,
    ErrorObject,
    qualified_name,
)

R = CompletionReason


@pytest.mark.parametrize(
    ("config", "succeeded", "failed", "expected"),
    [
        # fail fast without limits (the map default)
        (CompletionConfig(), 2, 0, None),
        (CompletionConfig(), 2, 1, R.FAILURE_TOLERANCE_EXCEEDED),
        (CompletionConfig(), 5, 0, R.ALL_COMPLETED),
        # all_successful (the parallel default)
        (CompletionConfig.all_successful(), 4, 0, None),
        (CompletionConfig.all_successful(), 0, 1, R.FAILURE_TOLERANCE_EXCEEDED),
        # all_completed runs everything whatever fails
        (CompletionConfig.all_completed(), 0, 4, None),
        (CompletionConfig.all_completed(), 0, 5, R.ALL_COMPLETED),
        (CompletionConfig.all_completed(), 3, 2, R.ALL_COMPLETED),
        # first_successful: as the AWS SDK, with no failure limit a failure ends it too
        (CompletionConfig.first_successful(), 1, 0, R.MIN_SUCCESSFUL_REACHED),
        (CompletionConfig.first_successful(), 0, 1, R.FAILURE_TOLERANCE_EXCEEDED),
        # limits
        (CompletionConfig(min_successful=3, tolerated_failure_count=1), 2, 1, None),
        (
            CompletionConfig(min_successful=3, tolerated_failure_count=1),
            3,
            1,
            R.MIN_SUCCESSFUL_REACHED,
        ),
        (
            CompletionConfig(min_successful=3, tolerated_failure_count=1),
            1,
            2,
            R.FAILURE_TOLERANCE_EXCEEDED,
        ),
        (CompletionConfig(tolerated_failure_percentage=40), 1, 2, None),  # 2/5 = 40 %
        (CompletionConfig(tolerated_failure_percentage=40), 0, 3, R.FAILURE_TOLERANCE_EXCEEDED),
        (CompletionConfig(tolerated_failure_count=1), 4, 1, R.ALL_COMPLETED),
    ],
)
def test_completion_rules(
    config: CompletionConfig, succeeded: int, failed: int, expected: CompletionReason | None
) -> None:
    decision = CompletionPolicy(config, 5).decide(succeeded, failed)
    assert (decision.reason if decision else None) is expected


def test_an_empty_batch_is_complete_at_once() -> None:
    assert CompletionPolicy(CompletionConfig(), 0).decide(0, 0) == Decision(R.ALL_COMPLETED)


def test_should_complete_rules_see_every_item_and_decide_the_outcome() -> None:
    seen: list[CompletionStatus] = []

    def rule(status: CompletionStatus) -> object:
        seen.append(status)
        if status.failure_count >= 2:
            return complete_batch(CompletionOutcome.FAILED)
        return complete_batch() if status.success_count >= 2 else continue_batch()

    policy = CompletionPolicy(CompletionConfig(should_complete=rule), 4)  # type: ignore[arg-type]
    S = CompletionItemStatus
    assert policy.decide(1, 1, [S.SUCCEEDED, S.FAILED, S.STARTED, None]) is None
    assert seen[-1].item_statuses == (S.SUCCEEDED, S.FAILED, S.STARTED, None)
    assert seen[-1].started_count == 1 and seen[-1].completed_count == 2
    assert policy.decide(2, 0) == Decision(R.MIN_SUCCESSFUL_REACHED)
    assert policy.decide(0, 2) == Decision(R.FAILURE_TOLERANCE_EXCEEDED, failed_by_rule=True)
    # a plain bool answer works too, and the batch ends once every item ended
    never = CompletionPolicy(CompletionConfig(should_complete=lambda s: False), 2)
    assert never.decide(1, 1) == Decision(R.ALL_COMPLETED)
    assert CompletionPolicy(CompletionConfig(should_complete=lambda s: True), 2).decide(0, 0)


def result(*items: BatchItem[object], failed_by_rule: bool = False) -> BatchResult[object]:
    return BatchResult(list(items), R.ALL_COMPLETED, failed_by_rule)


def test_batch_result_views() -> None:
    res = result(
        BatchItem(0, BatchItemStatus.SUCCEEDED, "a"),
        BatchItem(1, BatchItemStatus.SUCCEEDED, None),
        BatchItem(2, BatchItemStatus.FAILED, error=ErrorObject("bad row", "ValueError")),
        BatchItem(3, BatchItemStatus.STARTED),
    )
    assert res.get_results() == ["a"]  # a None result is left out, as on AWS
    assert (res.success_count, res.failure_count, res.started_count, res.total_count) == (
        2,
        1,
        1,
        4,
    )
    assert [e.message for e in res.get_errors()] == ["bad row"]
    assert res.has_failure and res.status is BatchItemStatus.FAILED
    with pytest.raises(ChildContextError) as caught:
        res.throw_if_error()
    assert (caught.value.error_type, caught.value.message) == ("ValueError", "bad row")
    assert BatchResult.from_dict(res.to_dict()) == res


def test_throw_if_error_for_serdes_failures_and_failing_rules() -> None:
    serdes_failed = result(
        BatchItem(
            0, BatchItemStatus.FAILED, error=ErrorObject("cannot", qualified_name(SerDesError))
        )
    )
    with pytest.raises(SerDesError):
        serdes_failed.throw_if_error()
    by_rule = result(BatchItem(0, BatchItemStatus.SUCCEEDED, 1), failed_by_rule=True)
    assert by_rule.status is BatchItemStatus.FAILED
    with pytest.raises(BatchCompletionError):
        by_rule.throw_if_error()
    result(BatchItem(0, BatchItemStatus.SUCCEEDED, 1)).throw_if_error()  # nothing to raise
