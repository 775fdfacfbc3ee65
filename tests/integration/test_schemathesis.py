"""Every operation in ``/openapi.json``, fuzzed by schemathesis against a live server: no
request, however odd, is answered with a server error (5xx).

Bounded: a few dozen examples per operation in positive and negative modes, on SQLite, with
long-polls capped at a fraction of a second (``max_wait_seconds``), so the whole run stays
around a minute on two cores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from conftest import make_settings
from sqltide.server import ServerThread
from sqltide.settings import Settings

#: Examples per operation and generation mode: enough for CI's budget (the examples are
#: derandomized, so a run is repeatable); set SQLTIDE_TEST_SCHEMATHESIS_EXAMPLES for a deeper one.
EXAMPLES = int(os.environ.get("SQLTIDE_TEST_SCHEMATHESIS_EXAMPLES", "20"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only (the run is about the API's edge, not the store), short long-polls."""
    return make_settings(
        tmp_path, store=f"sqlite:///{tmp_path / 'home' / 'state.db'}", max_wait_seconds=0.2
    )


def test_no_operation_answers_a_server_error(server: ServerThread, api_key: str) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {api_key}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10, "the schema lists the API's operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(
                    base_url=server.url, headers=headers, checks=[not_a_server_error], timeout=10
                )

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to negate in this operation (only free-form strings)
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
