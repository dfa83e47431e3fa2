"""Evaluate function (a step of the retraining state machine): the candidate and the champion scored
on the same fresh held-out rows; a paired-bootstrap interval of the ROC-AUC difference and the
guardrails decide the gate; the report (JSON + HTML with plots) goes to S3 and is linked from the
candidate's registry entry.

Event: the state's input, ``{"candidate": {"version": "v..."}, "holdout": "s3://bucket/holdout.csv"?, ...}``;
without ``holdout`` the HOLDOUT_DATA_URI setting is used. Returns ``{"version", "passed", "reasons",
"report", "html", "champion", ...}`` for the state machine's Choice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_evaluation, build_services
from churnguard.entrypoints.events import BadEventError, require_version

logger = Logger()
metrics = Metrics()
_services = build_services()
_evaluate = build_evaluation(_services)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    candidate = event.get("candidate")
    version = require_version(candidate if isinstance(candidate, dict) else event, "evaluate ('candidate': {...})")
    holdout = event.get("holdout") or _services.settings.loop.holdout_data_uri
    if not isinstance(holdout, str) or not holdout.startswith("s3://"):
        raise BadEventError("no held-out data: pass 'holdout': 's3://bucket/key.csv' or set HOLDOUT_DATA_URI")
    summary = _evaluate(version, holdout)
    metrics.add_metric(
        name="EvaluationsPassed" if summary["passed"] else "EvaluationsFailed", unit=MetricUnit.Count, value=1
    )
    diff = summary.get("auc_difference")
    if diff and diff.get("estimate") is not None:
        metrics.add_metric(name="ChallengerAucGain", unit=MetricUnit.NoUnit, value=diff["estimate"])
    logger.info("evaluated candidate", extra={"summary": summary})
    return summary
