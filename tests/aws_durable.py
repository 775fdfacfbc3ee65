"""Helpers for the tests of unchanged AWS durable functions (``sqltide.lambda_durable``).

Import them as ``from aws_durable import ...`` (``tests/`` is on ``sys.path``). A
:class:`World` is a real runtime and a real loopback server on one store, with workflow modules
that import the AWS SDK itself (``aws_durable_execution_sdk_python``), and this process's
environment set as a worker's must be: ``AWS_ENDPOINT_URL_LAMBDA`` (and
``AWS_ENDPOINT_URL_REDSHIFT_DATA``) at the server, and the AWS credentials of a sqltide key.
The SDK's boto3 ``lambda`` client, and any boto3 client a handler makes, are the real ones.

Its clock is real time plus an offset that :meth:`World.run_to_end` moves forward when an
execution is suspended until later: a 10-second durable wait takes no real time, and the wait
is still a suspension with its ``next_run_at`` in the store.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from aws_data_api import check_shape
from conftest import make_settings
from sqltide.client import Client
from sqltide.keys import AwsCredentials, create_key
from sqltide.runtime import Runtime
from sqltide.server import ServerThread, free_port
from sqltide.store import ExecutionRecord, store_from_url

REGION = "us-east-1"
PRINCIPAL = "alice"
#: The AWS settings a worker's environment holds (the rest are removed for the test).
_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


class JumpClock:
    """Real time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump_to(self, when: float) -> None:
        with self._lock:
            ahead = when - (time.time() + self.offset)
            if ahead > 0:
                self.offset += ahead + 0.001


@dataclass
class World:
    runtime: Runtime
    server: ServerThread
    clock: JumpClock
    aws: AwsCredentials
    #: The same key's bearer form, for sqltide's own API.
    key: str
    #: How far :meth:`run_to_end` moved the clock, each time.
    jumps: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def lambda_client(self, *, check: bool = True, validate: bool = True) -> Any:
        """boto3's ``lambda`` client on the server, checking every answer against the model
        (``validate=False``: botocore sends what its model would refuse, to see the server
        refuse it)."""
        client = boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.aws.access_key_id,
            aws_secret_access_key=self.aws.secret_access_key,
            config=Config(
                retries={"total_max_attempts": 1}, read_timeout=30, parameter_validation=validate
            ),
        )
        if check:
            client.meta.events.register("after-call.lambda", check_lambda_answer)
        return client

    def client(self) -> Client:
        """sqltide's own client, as the key's principal."""
        return Client(self.url, self.key)

    def module(self, workflow: str) -> dict[str, Any]:
        wf = self.runtime.workflows.registry.get(workflow)
        assert wf is not None, workflow
        return getattr(wf.fn, "__wrapped__", wf.fn).__globals__  # type: ignore[no-any-return]

    def start(self, workflow: str, event: Any = None, **kw: Any) -> str:
        rec, _ = self.runtime.workflows.start(PRINCIPAL, workflow, event, **kw)
        return rec.id

    def run_to_end(
        self, execution_id: str, *, jump: bool = True, timeout: float = 30.0
    ) -> ExecutionRecord:
        """The execution once it has ended, moving the clock to each time it is suspended
        until (``jump``)."""
        store = self.runtime.store
        deadline = time.monotonic() + timeout
        while True:
            rec = store.get_execution(execution_id)
            assert rec is not None
            if rec.status.is_terminal:
                return rec
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"execution {execution_id} still {rec.status} after {timeout} s"
                )
            due = rec.next_run_at
            if jump and rec.lease_owner is None and due is not None and due > self.clock():
                self.jumps.append(due - self.clock())
                self.clock.jump_to(due)
                self.runtime.notifier.publish("workflows", rec.workflow)
            time.sleep(0.01)  # polling a condition with a deadline

    def wait_for(self, what: str, check: Any, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.01)  # polling a condition with a deadline

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()


def build_world(
    tmp_path: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sources: list[str],
    *,
    env: dict[str, str] | None = None,
    role: str = "all",
    **settings: Any,
) -> World:
    """A runtime loading ``sources`` and its server, with the worker's environment set (with
    ``role="api"`` no worker runs: the test claims executions itself).

    The key comes first (its AWS pair goes into the environment before the modules are
    imported, as a module-level boto3 client reads it then), the server's port before the
    runtime (for the endpoints).
    """
    store = store_from_url(store_url)
    try:
        store.migrate()
        _, key, aws = create_key(store, PRINCIPAL, warehouses=["default"], aws=True)
    finally:
        store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ENDPOINT_URL_LAMBDA": url,
        "AWS_ENDPOINT_URL_REDSHIFT_DATA": url,
        "AWS_ACCESS_KEY_ID": aws.access_key_id,
        "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **(env or {}),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    # boto3's default session keeps the credentials it resolved first: a test's own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    clock = JumpClock()
    runtime = Runtime.build(
        make_settings(tmp_path, store=store_url, workflows=sources, **settings),
        role=role,
        clock=clock,
    )
    try:
        server = ServerThread(runtime, port=port).start()
    except BaseException:
        runtime.stop()
        raise
    return World(runtime, server, clock, aws, key)


def check_lambda_answer(http_response: Any, model: Any, **_: Any) -> None:
    """A ``lambda`` answer has exactly the members and types of the model's shape (the output,
    or the error botocore names from ``x-amzn-ErrorType``)."""
    body = json.loads(http_response.content or b"{}")
    if http_response.status_code >= 300:
        name = http_response.headers.get("x-amzn-ErrorType", "").split(":")[0]
        modeled = {e.name: e for e in model.error_shapes}
        assert name in modeled, f"{model.name}: {name} is not one of its errors: {body}"
        check_shape(modeled[name], body, f"{model.name}!{name}")
        return
    if model.output_shape is None:
        assert body == {}, body
        return
    payload = model.output_shape.serialization.get("payload")
    assert payload is None, "no served operation answers a payload"
    check_shape(model.output_shape, body, model.name)
