"""Pre-traffic hook of PredictFunction code deploys (SAM DeploymentPreference): before CodeDeploy shifts any traffic,
the new version must be healthy, refuse a bad request by name and answer the fixed customers in customers.json
exactly as the live alias does (services/deploy_check.py). The verdict goes back to CodeDeploy: Failed stops the
deploy and leaves the alias on the old version.

Events: CodeDeploy's ``{"DeploymentId", "LifecycleEventHookExecutionId"}``; or, by hand, ``{"verify": "live"}``,
which runs the same checks against the live alias alone and reports nowhere (LocalStack has no CodeDeploy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from churnguard.bootstrap import build_deploy_check
from churnguard.entrypoints.events import BadEventError

logger = Logger()
_check = build_deploy_check()
CUSTOMERS = json.loads((Path(__file__).with_name("customers.json")).read_text())["customers"]


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("verify") == "live":
        result = _check.verify(CUSTOMERS, live_only=True)
        logger.info("live alias checked", extra={"result": result})
        return result
    deployment = event.get("DeploymentId") if isinstance(event, dict) else None
    hook = event.get("LifecycleEventHookExecutionId") if isinstance(event, dict) else None
    if not isinstance(deployment, str) or not isinstance(hook, str):
        raise BadEventError(
            "a CodeDeploy lifecycle hook event needs DeploymentId and LifecycleEventHookExecutionId "
            '(or {"verify": "live"} by hand)'
        )
    try:
        result = _check.verify(CUSTOMERS)
    except Exception as e:  # noqa: BLE001 - whatever broke, CodeDeploy must hear Failed, not wait for a timeout
        logger.exception("pre-traffic check crashed")
        result = {"passed": False, "checks": [{"name": "check", "passed": False, "detail": f"{type(e).__name__}: {e}"}]}
    _check.report(deployment, hook, result["passed"])
    (logger.info if result["passed"] else logger.error)("pre-traffic check", extra={"result": result})
    return result
