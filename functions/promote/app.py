"""Promote function: switch the champion alias (conditional write) or roll back.

Event: ``{"action": "promote", "version": "v..."}`` or ``{"action": "rollback"}``.
Not reachable from the public API: only the retraining state machine and operators invoke it.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_services
from churnguard.service import promote, rollback
from churnguard.settings import get_settings

logger = Logger()
metrics = Metrics()
_services = build_services(get_settings())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action", "promote")
    reason = str(event.get("reason", action))
    if action == "rollback":
        alias = rollback(_services.registry, reason=reason)
    elif action == "promote":
        version = event.get("version")
        if not isinstance(version, str) or not version:
            raise ValueError("a promote event needs 'version'")
        alias = promote(_services.registry, version, reason=reason)
    else:
        raise ValueError(f"unknown action {action!r}: use promote or rollback")
    logger.info("champion switched", extra={"alias": alias})
    metrics.add_metric(name="ChampionSwitched", unit=MetricUnit.Count, value=1)
    return {"champion": alias["version"], "revision": alias["revision"], "previous": alias["previous"]}
