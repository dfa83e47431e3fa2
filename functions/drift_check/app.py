"""Drift check function: on the EventBridge schedule (daily by default), compare the recent
prediction log with the champion's reference profile, write the report (JSON + HTML) to S3,
publish metrics, and start the retraining state machine when drift or degradation crosses the
thresholds, unless an execution is already running.

Event: the scheduled event (its ``time`` is taken as "now", so a replayed event checks its own day),
or ``{}`` / ``{"time": "2026-05-01T06:00:00Z"}`` when invoked by hand; ``{"trigger": "schedule"}`` (the
RetrainSchedule rule's input) also starts a retraining whatever the check finds. Any other kind of event is
refused (BadEventError). A run's ``reason`` names every trigger that fired: drift, degradation, schedule, volume.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_drift_check, build_services
from churnguard.entrypoints.events import scheduled_time, scheduled_trigger

logger = Logger()
metrics = Metrics()
_check = build_drift_check(build_services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = _check(now=scheduled_time(event or {}), trigger=scheduled_trigger(event or {}))
    decision = summary["decision"]
    metrics.add_metric(name="DriftChecks", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="DriftDetected", unit=MetricUnit.Count, value=1 if decision == "retrain" else 0)
    metrics.add_metric(
        name="DriftInsufficientData", unit=MetricUnit.Count, value=1 if decision == "insufficient_data" else 0
    )
    if decision != "no_champion":
        metrics.add_metric(name="DriftRowsChecked", unit=MetricUnit.Count, value=summary["rows"])
        metrics.add_metric(name="DriftedFeatures", unit=MetricUnit.Count, value=len(summary["drifted_features"]))
        metrics.add_metric(name="DriftMaxPSI", unit=MetricUnit.NoUnit, value=summary["max_psi"])
        if summary.get("score_psi") is not None:
            metrics.add_metric(name="DriftScorePSI", unit=MetricUnit.NoUnit, value=summary["score_psi"])
    if summary.get("retraining", {}).get("started"):
        metrics.add_metric(name="RetrainingStarted", unit=MetricUnit.Count, value=1)
    logger.info("drift check", extra={"summary": summary})
    return summary
