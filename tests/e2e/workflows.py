"""Helpers for the state machine tests: generated data in the stack's buckets, executions awaited and explained."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from tests.conftest import FAST, synth_frame


def put_customers(stack, bucket_output: str, key: str, n: int, seed: int, drop: tuple[str, ...] = ()) -> str:
    """Generated Telco-schema customers as a CSV at s3://<bucket>/<key>; returns the URI."""
    frame = synth_frame(n, seed=seed).drop(columns=list(drop))
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    bucket = stack.outputs[bucket_output]
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())
    return f"s3://{bucket}/{key}"


def retrain_input(data: str, holdout: str, reason: str = "manual") -> dict[str, Any]:
    # config travels with the state's input into Train: fast but real training. No canary wait: nobody sends
    # traffic in these tests, so a candidate past the gate ends "not promoted" (canary inconclusive) at once.
    return {"reason": reason, "data": data, "holdout": holdout, "config": FAST, "canary": {"wait_seconds": 0}}


def history(sfn, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def explain(sfn, execution_arn: str) -> str:
    """The states entered and the failures of an execution, for an assertion message."""
    lines = []
    for e in history(sfn, execution_arn):
        kind = e["type"]
        if kind.endswith("StateEntered"):
            lines.append(f"{kind}: {e['stateEnteredEventDetails']['name']}")
        elif "Failed" in kind or "TimedOut" in kind:
            details = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
            lines.append(f"{kind}: {details.get('error')} {str(details.get('cause'))[:400]}")
    return "\n".join(lines)


def run_execution(stack, arn_output: str, execution_input: dict[str, Any], timeout_s: float = 420) -> dict[str, Any]:
    """Start an execution of the state machine named by an output and wait until it ends."""
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.outputs[arn_output], input=json.dumps(execution_input))[
        "executionArn"
    ]
    return wait_execution(sfn, arn, timeout_s)


def wait_execution(sfn, execution_arn: str, timeout_s: float = 420) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, f"still running after {timeout_s:.0f} s:\n{explain(sfn, execution_arn)}"
        time.sleep(1)


def task_failures(sfn, execution_arn: str, state: str) -> list[dict[str, Any]]:
    """The failure details of every attempt of one Task state (a retried task fails more than once)."""
    current, out = None, []
    for e in history(sfn, execution_arn):
        if e["type"].endswith("StateEntered"):
            current = e["stateEnteredEventDetails"]["name"]
        elif current == state and e["type"] in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut"):
            out.append(next(v for k, v in e.items() if k.endswith("EventDetails")))
    return out


def output(execution: dict[str, Any]) -> dict[str, Any]:
    return json.loads(execution.get("output") or "null")
