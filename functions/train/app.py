"""Train function: read a CSV from S3, train, store the bundle, register a candidate.

Event: ``{"data": "s3://bucket/key.csv", "schema": "s3://bucket/schema.yaml"?, "config": {...}?,
"reason": "manual|schedule|drift|...", "drift_report": "s3://..."?}``; in the retraining state machine, the run's
state after BuildTrainingSet (its ``training_set`` summary goes into the candidate's lineage).
Bad data raises DataValidationError before anything is written; the error names the problem.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_services, build_training
from churnguard.entrypoints.events import require_str

logger = Logger()
metrics = Metrics()
_train = build_training(build_services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    data_uri = require_str(event, "data", "the training data", prefix="s3://")
    lineage = {k: event[k] for k in ("reason", "triggers", "drift_report", "execution") if k in event}
    if isinstance(event.get("training_set"), dict):  # what BuildTrainingSet assembled: rows, periods, report
        lineage["training_set"] = {
            k: event["training_set"].get(k) for k in ("source", "status", "rows", "period", "report")
        }
    summary = _train(data_uri, schema_uri=event.get("schema") or None, config=event.get("config"), lineage=lineage)
    logger.info("registered candidate", extra={"version": summary["version"], "metrics": summary["metrics"]})
    metrics.add_metric(name="ModelsTrained", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=summary["seconds"])
    return summary
