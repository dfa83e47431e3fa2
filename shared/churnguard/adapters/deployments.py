"""Lambda and CodeDeploy for the pre-traffic check of a PredictFunction deploy (services/deploy_check.py).

LambdaInvoker(boto3.client("lambda"), "arn:aws:lambda:...:function:predict:7").invoke(event)
CodeDeployHookReporter(boto3.client("codedeploy")).report(deployment_id, hook_execution_id, passed=True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_lambda import LambdaClient


class LambdaInvoker:
    """Invokes one function version or alias synchronously; a function error comes back as a 500 answer."""

    def __init__(self, lambda_client: LambdaClient, function: str) -> None:
        self.lam = lambda_client
        self.function = function

    def invoke(self, event: Mapping[str, Any]) -> dict[str, Any]:
        try:
            resp = self.lam.invoke(FunctionName=self.function, Payload=json.dumps(event).encode())
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot invoke {self.function}: {e}") from e
        payload = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError"):
            return {"statusCode": 500, "body": json.dumps({"function_error": payload})}
        return payload if isinstance(payload, dict) else {"statusCode": 500, "body": json.dumps(payload)}


class CodeDeployHookReporter:
    def __init__(self, codedeploy_client: CodeDeployClient) -> None:
        self.cd = codedeploy_client

    def report(self, deployment_id: str, hook_execution_id: str, passed: bool) -> None:
        try:
            self.cd.put_lifecycle_event_hook_execution_status(
                deploymentId=deployment_id,
                lifecycleEventHookExecutionId=hook_execution_id,
                status="Succeeded" if passed else "Failed",
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot report the pre-traffic check of {deployment_id}: {e}") from e
