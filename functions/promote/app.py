"""Promote function: switch the champion alias (conditional write), roll back, or record the end of a
retraining run that did not promote.

Events:
- ``{"action": "promote", "version": "v...", "evaluation": {...}, "expected_revision": n?}``: from the retraining
  state machine; the switch happens only if ``evaluation`` passed the gate and is about this version
  (GateNotPassedError otherwise), the version was never rolled back, and the champion alias is still at
  ``expected_revision`` (the champion the canary ran against: PromotionConflictError otherwise). Without
  ``evaluation`` it is an operator's manual promotion, logged and counted as such. Either starts the watch
  after the promotion (ROLLBACK_WATCH_HOURS: the watch alarm rolls back by itself, functions/auto_rollback).
- ``{"action": "rollback"}``: restore the previous champion.
- ``{"action": "reject", "version": "v...", "reasons": [...], "report": "s3://..."}``: the gate failed;
  the candidate is marked ``rejected`` with the reasons.
- ``{"action": "fail", "run": {<state>, "error": {"Error", "Cause"}}}``: a step failed; the run's candidate
  (if one was registered and is still a candidate) is marked ``failed``.
Not reachable from the public API: only the retraining state machine and operators invoke it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_promotion, build_services
from churnguard.entrypoints.events import BadEventError, require_version

logger = Logger()
metrics = Metrics()
_actions = build_promotion(build_services())


def _version(event: dict[str, Any]) -> str:
    return require_version(event, str(event.get("action", "promote")))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action", "promote")
    reason = str(event.get("reason", action))
    if action == "reject":
        out = _actions.reject(_version(event), event.get("reasons") or [], event.get("report"))
        metrics.add_metric(name="ModelsRejected", unit=MetricUnit.Count, value=1)
        logger.info("candidate rejected", extra=out)
        return out
    if action == "fail":
        run = event.get("run") if isinstance(event.get("run"), dict) else {}
        candidate = run.get("candidate") if isinstance(run.get("candidate"), dict) else {}
        out = _actions.record_failure(
            candidate.get("version"),
            run.get("error"),
            (run.get("execution") or {}).get("id") if isinstance(run.get("execution"), dict) else None,
        )
        metrics.add_metric(name="RetrainingFailed", unit=MetricUnit.Count, value=1)
        logger.error("retraining run failed", extra=out)
        return out
    if action == "rollback":
        alias = _actions.rollback(reason=reason)
    elif action == "promote":
        version = _version(event)
        evaluation = event.get("evaluation")
        expected = event.get("expected_revision")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise BadEventError(f"'expected_revision' must be an integer, not {expected!r}")
        if evaluation is not None:
            alias = _actions.promote_candidate(
                version,
                evaluation if isinstance(evaluation, dict) else {},
                reason=reason,
                now=datetime.now(UTC),
                expected_revision=expected,
            )
        else:
            logger.warning("manual promotion without an evaluation", extra={"version": version, "reason": reason})
            metrics.add_metric(name="ManualPromotions", unit=MetricUnit.Count, value=1)
            alias = _actions.promote(version, reason=reason, now=datetime.now(UTC), expected_revision=expected)
    else:
        raise BadEventError(f"unknown action {action!r}: use promote, rollback, reject or fail")
    logger.info("champion switched", extra={"alias": alias})
    metrics.add_metric(name="ChampionSwitched", unit=MetricUnit.Count, value=1)
    return {"champion": alias["version"], "revision": alias["revision"], "previous": alias["previous"]}
