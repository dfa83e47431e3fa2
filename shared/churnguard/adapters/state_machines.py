"""Step Functions executions: the retraining state machine (at most one run at a time) and batch jobs.

launcher = StepFunctionsRetrainLauncher(arn, boto3.client("stepfunctions"))
launcher.start({"reason": "drift", "drift_report": "s3://...", "data": "s3://..."}, name="drift-20260501-ab12cd")
# -> {"started": True, "execution_arn": "..."} or {"started": False, "reason": "already running: ..."}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.errors import ChurnGuardError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class RetrainLaunchError(ChurnGuardError):
    """Step Functions refused or failed to start, list or describe executions."""


class StepFunctionsRetrainLauncher:
    def __init__(self, state_machine_arn: str, sfn_client: SFNClient) -> None:
        self.arn = state_machine_arn
        self.sfn = sfn_client

    def running(self) -> list[str]:
        """ARNs of executions still running."""
        try:
            resp = self.sfn.list_executions(stateMachineArn=self.arn, statusFilter="RUNNING", maxResults=10)
        except (ClientError, BotoCoreError) as e:
            raise RetrainLaunchError(f"cannot list executions of {self.arn}: {e}") from e
        return [e["executionArn"] for e in resp.get("executions", [])]

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest executions, newest first: ``{"name", "status", "started_at", "stopped_at"}`` (the console)."""
        try:
            resp = self.sfn.list_executions(stateMachineArn=self.arn, maxResults=limit)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list executions of {self.arn}: {e}") from e
        return [
            {
                "name": e["name"],
                "status": e["status"],
                "started_at": e["startDate"].isoformat() if e.get("startDate") else None,
                "stopped_at": e["stopDate"].isoformat() if e.get("stopDate") else None,
            }
            for e in resp.get("executions", [])
        ]

    def start(self, execution_input: Mapping[str, Any], name: str) -> dict[str, Any]:
        """Start an execution unless one is running. Two checks racing past ``running()`` both start one;
        the state machine tolerates that (the second promotion loses the registry's conditional write)."""
        running = self.running()
        if running:
            return {"started": False, "reason": f"already running: {running[0]}", "execution_arn": running[0]}
        try:
            resp = self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(execution_input))
        except ClientError as e:
            if error_code(e) == "ExecutionAlreadyExists":
                return {"started": False, "reason": f"an execution named {name} already exists"}
            raise RetrainLaunchError(f"cannot start {self.arn}: {e}") from e
        except BotoCoreError as e:
            raise RetrainLaunchError(f"cannot start {self.arn}: {e}") from e
        return {"started": True, "execution_arn": resp["executionArn"]}


class StepFunctionsJobRunner:
    """Starts and follows batch scoring jobs (one execution per job id; starting a known id follows it)."""

    def __init__(self, state_machine_arn: str, sfn_client: SFNClient) -> None:
        self.arn = state_machine_arn
        self.sfn = sfn_client

    def start(self, execution_input: Mapping[str, Any], name: str) -> str:
        """The execution ARN of the job named ``name``: started now, or already started earlier."""
        try:
            return self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(execution_input))[
                "executionArn"
            ]
        except ClientError as e:
            if error_code(e) == "ExecutionAlreadyExists":
                return f"{self.arn.replace(':stateMachine:', ':execution:')}:{name}"  # the same job again: follow it
            raise RetrainLaunchError(f"cannot start {self.arn}: {e}") from e
        except BotoCoreError as e:
            raise RetrainLaunchError(f"cannot start {self.arn}: {e}") from e

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """``{"status", "output"?, "error"?, "cause"?}`` of an execution."""
        try:
            desc = self.sfn.describe_execution(executionArn=execution_arn)
        except (ClientError, BotoCoreError) as e:
            raise RetrainLaunchError(f"cannot describe {execution_arn}: {e}") from e
        return {k: v for k, v in desc.items() if k in ("status", "output", "error", "cause")}
