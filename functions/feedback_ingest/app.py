"""Feedback ingest function: a CSV of outcomes dropped under ``feedback/`` in the model bucket.

An S3 "Object Created" event (through EventBridge in the stack; a classic S3 notification
works too, e.g. ``sam local invoke -e events/feedback_ingest.json``) -> each file is parsed, good rows
stored once (conditional writes), bad rows reported, never stored. The report lands beside it under
``feedback-reports/`` (outside ``feedback/``, so it does not trigger this function again):

    customer_id,churned,observed_date
    7590-VHVEG,yes,2026-05-01
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_feedback_ingest, build_services
from churnguard.entrypoints.events import dropped_objects

logger = Logger()
metrics = Metrics()
_ingest = build_feedback_ingest(build_services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    files = []
    for candidates in dropped_objects(event):
        if not candidates[0].lower().endswith(".csv"):
            logger.info("not a CSV, ignored", extra={"key": candidates[0]})
            continue
        # A failure to read or store raises: Lambda retries the asynchronous event, and a retry stores nothing twice.
        report = _ingest(candidates)
        logger.info(
            "feedback file ingested",
            extra={k: v for k, v in report.items() if k != "rejected"} | {"rejected_rows": len(report["rejected"])},
        )
        metrics.add_metric(name="FeedbackStored", unit=MetricUnit.Count, value=report["stored"])
        metrics.add_metric(name="FeedbackDuplicates", unit=MetricUnit.Count, value=report["duplicates"])
        metrics.add_metric(name="FeedbackRejected", unit=MetricUnit.Count, value=len(report["rejected"]))
        files.append(
            {k: report[k] for k in ("source", "stored", "duplicates", "ok", "report")}
            | {"rejected": len(report["rejected"])}
        )
    return {"files": files}
