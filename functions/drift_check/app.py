"""Drift check function: on the EventBridge schedule (daily by default), compare the recent
prediction log with the champion's reference profile, write the report (JSON + HTML) to S3,
publish metrics, and start the retraining state machine when drift or degradation crosses the
thresholds, unless an execution is already running.

Event: the scheduled event (its ``time`` is taken as "now", so a replayed event checks its own day),
or ``{}`` / ``{"time": "2026-05-01T06:00:00Z"}`` when invoked by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.adapters.prediction_log_reader import S3PredictionLogReader
from churnguard.adapters.retrain_launcher import StepFunctionsRetrainLauncher
from churnguard.bootstrap import build_services
from churnguard.domain.errors import DataValidationError
from churnguard.services.retraining import run_drift_check
from churnguard.settings import LoopSettings, get_settings

logger = Logger()
metrics = Metrics()
_services = build_services(get_settings())
_loop = LoopSettings.from_env()
_reader = S3PredictionLogReader(_services.settings.model_bucket, _services.store.s3)
_launcher = StepFunctionsRetrainLauncher(_loop.retrain_state_machine_arn) if _loop.retrain_state_machine_arn else None


def _outcomes():  # type: ignore[no-untyped-def]
    table = _services.settings.outcomes_table
    if not table:
        return None
    from churnguard.adapters.outcomes import DynamoOutcomeStore

    store = DynamoOutcomeStore(table, _services.registry.ddb)
    return lambda since: store.outcomes(since=since)


_outcome_source = _outcomes()


def _event_time(event: dict[str, Any]) -> datetime:
    raw = event.get("time")
    if raw is None:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as e:
        raise DataValidationError(f"'time' must be an ISO 8601 timestamp, not {raw!r}") from e


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = run_drift_check(
        _services.store,
        _services.registry,
        _reader,
        _services.store.s3,
        _services.settings.model_bucket,
        _loop,
        outcomes=_outcome_source,
        launcher=_launcher,
        now=_event_time(event or {}),
    )
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
