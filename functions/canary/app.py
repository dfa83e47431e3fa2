"""Canary function: the retraining state machine's canary stage, chosen by ``action``.

- ``{"action": "start", "version": "v...", "options": {"share"?, "shadow"?, "wait_seconds"?}, "execution": "..."}``:
  the candidate answers a share of customers (CANARY_SHARE, or shadow) for the wait; returns the canary's state
  (``wait_seconds`` for the Wait state, ``champion_revision`` for the conditional promotion). A canary of another
  version already running raises CanaryConflictError (the run ends without promoting, the other canary untouched).
- ``{"action": "check", "canary": <start's state>, "evaluation_report": "s3://..."}``: the verdict at the end of
  the wait (``decision``: promote, reject or inconclusive, with ``reasons`` and every check), report in S3.
- ``{"action": "finish", "version": "v...", "outcome": "reject|inconclusive|superseded|not_started",
  "reasons": [...]?, "error": {"Error", "Cause"}?, "report"?}``: clear the canary and record why on the candidate.
Only the retraining state machine invokes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_canary_stage, build_services
from churnguard.entrypoints.events import BadEventError, require_str

logger = Logger()
metrics = Metrics()
_stage = build_canary_stage(build_services())
# What a run's input may change for its own canary ({"canary": {...}}); the judging limits are the stack's.
RUN_OPTIONS = ("share", "shadow", "wait_seconds")
OUTCOMES = ("reject", "inconclusive", "superseded", "not_started")


def _start(event: dict[str, Any]) -> dict[str, Any]:
    options = event.get("options") or {}
    if not isinstance(options, dict) or set(options) - set(RUN_OPTIONS):
        raise BadEventError(f"'options' may set {list(RUN_OPTIONS)} of the canary, not {options!r}")
    try:
        policy = type(_stage.policy).from_dict({**_stage.policy.__dict__, **options})
    except ValueError as e:
        raise BadEventError(str(e)) from e
    state = _stage.start(
        require_str(event, "version", "the candidate"), policy, datetime.now(UTC), event.get("execution")
    )
    metrics.add_metric(name="CanariesStarted", unit=MetricUnit.Count, value=1)
    return state


def _finish(event: dict[str, Any]) -> dict[str, Any]:
    outcome = event.get("outcome")
    if outcome not in OUTCOMES:
        raise BadEventError(f"'outcome' must be one of {list(OUTCOMES)}, not {outcome!r}")
    reasons = event.get("reasons")
    error = event.get("error")
    if not isinstance(reasons, list):
        cause = str(error.get("Cause") or error.get("Error")) if isinstance(error, dict) else "no reason recorded"
        reasons = [cause[:1500]]
    return _stage.finish(
        require_str(event, "version", "the candidate"), outcome, [str(r) for r in reasons], event.get("report")
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    logger.append_keys(action=action)
    if action == "start":
        out = _start(event)
    elif action == "check":
        canary = event.get("canary")
        if not isinstance(canary, dict) or not canary.get("version") or not canary.get("started_at"):
            raise BadEventError("a check event needs 'canary': the state the start action returned")
        out = _stage.check(canary, event.get("evaluation_report"), datetime.now(UTC))
        metrics.add_metric(name=f"Canary{out['decision'].capitalize()}", unit=MetricUnit.Count, value=1)
    elif action == "finish":
        out = _finish(event)
    elif action is None:
        raise BadEventError("a canary event needs 'action': start, check or finish (from the retraining state machine)")
    else:
        raise BadEventError(f"unknown action {action!r}: use start, check or finish")
    logger.info(f"canary {action}", extra={"result": out})
    return out
