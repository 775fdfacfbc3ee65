"""Unchanged AWS durable functions: the Lambda durable execution API, and their invoker.

A handler written for the AWS durable execution SDK (``aws_durable_execution_sdk_python``,
``@durable_execution``) runs on sqltide without a changed line. The SDK keeps its state through
the Lambda service: it is *invoked* with its checkpoints, calls ``CheckpointDurableExecution``
with a boto3 ``lambda`` client as it goes, and returns ``SUCCEEDED``, ``FAILED`` or
``PENDING``. sqltide plays both parts of that service:

- **the invoker** (:mod:`.invoker`): an execution of such a handler is a sqltide execution like
  any other (same store, leases, suspensions, crash recovery, API, CLI and history); where a
  native workflow runs a :class:`~sqltide.workflows.replay.Replay`, the worker calls the handler
  once per claim, with the event Lambda would send (the execution's ARN, a fresh checkpoint
  token, its operations) and acts on what it returns;
- **the API** (:mod:`.routes` over :mod:`.service`): the Lambda operations the SDK calls, on
  sqltide's port, in the model's REST-JSON shapes (``/2025-12-01/...``), signed with a sqltide
  key's AWS credentials (Signature Version 4, service ``lambda``): checkpoints, the state, the
  callbacks, describing and stopping an execution.

Between them sit the checkpoint tokens (:mod:`.tokens`), the translation of the SDK's
``OperationUpdate`` into checkpoints of sqltide's store (:mod:`.updates`), and the operations
as the SDK reads them back (:mod:`.wire`). See docs/workflows.md, "Unchanged AWS durable
functions".
"""
