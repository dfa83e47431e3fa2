"""Feature refresh function: features from raw event logs, with one definition for serving and training.

- The EventBridge schedule (``FeatureSchedule``; or ``{}`` / ``{"time": "2026-05-01T02:00:00Z"}`` by hand):
  every active customer's features as of the event's time, from the event logs the feature definition
  (FEATURE_DEFINITION_URI) names, into the feature table (what ``POST /customers/{id}/predict`` scores),
  and every customer scored by the champion into the score table (what ``GET /customers/{id}/score`` reads).
- ``{"action": "build", "cutoffs": ["2026-01-01", ...] (or "every": "30d", "from", "to"),
  "out": "s3://bucket/data/train.csv", "definition"?: "s3://..."}``: a point-in-time training set, its schema
  and report beside it, for the Train function.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_feature_refresh, build_services
from churnguard.entrypoints.events import BadEventError, feature_build_request, feature_refresh_request

logger = Logger()
metrics = Metrics()
_jobs = build_feature_refresh(build_services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = event or {}
    action = event.get("action", "refresh")
    if action == "build":
        request = feature_build_request(event)
        summary = _jobs.build(request["cutoffs"], request["out"], request["definition_uri"])
        summary.pop("report_body", None)
        metrics.add_metric(name="TrainingRowsBuilt", unit=MetricUnit.Count, value=summary["rows"])
        metrics.add_metric(name="FeatureLeakWarnings", unit=MetricUnit.Count, value=len(summary["leak_warnings"]))
        logger.info("training set built", extra={"summary": summary})
        return summary
    if action != "refresh":
        raise BadEventError(f"unknown action {action!r}: use refresh (the schedule's) or build")
    request = feature_refresh_request(event)
    summary = _jobs.refresh(request["now"], request["definition_uri"])
    rejected = sum(n for reasons in summary["rejected"].values() for n in reasons.values())
    metrics.add_metric(name="FeatureVectorsStored", unit=MetricUnit.Count, value=summary["features_stored"])
    metrics.add_metric(name="CustomersScored", unit=MetricUnit.Count, value=summary["scored"])
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)
    if summary.get("not_scored_because"):
        logger.warning("customers not scored", extra={"reason": summary["not_scored_because"]})
    logger.info("features refreshed", extra={"summary": summary})
    return summary
