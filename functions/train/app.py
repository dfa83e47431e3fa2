"""Train function: read a CSV from S3, train, store the bundle, register a candidate.

Event: ``{"data": "s3://bucket/key.csv", "schema": "s3://bucket/schema.yaml"?, "config": {...}?,
"reason": "manual|schedule|drift", "drift_report": "s3://..."?}``.
Bad data raises DataValidationError before anything is written; the error names the problem.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.adapters.s3_objects import read_s3_uri
from churnguard.bootstrap import build_services
from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema import Schema
from churnguard.domain.training import TrainingConfig
from churnguard.services.lifecycle import train_and_register
from churnguard.settings import get_settings

logger = Logger()
metrics = Metrics()
_services = build_services(get_settings())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    data_uri = event.get("data")
    if not isinstance(data_uri, str) or not data_uri.startswith("s3://"):
        raise DataValidationError("event must name the training data as 'data': 's3://bucket/key.csv'")
    s3 = _services.store.s3
    schema = Schema.from_yaml(read_s3_uri(s3, event["schema"]).decode()) if event.get("schema") else Schema.default()
    config = TrainingConfig.from_dict(event.get("config") or {})
    data = read_s3_uri(s3, data_uri)
    lineage = {k: event[k] for k in ("reason", "drift_report", "execution") if k in event}
    summary = train_and_register(
        data, schema, config, _services.store, _services.registry, source=data_uri, lineage=lineage
    )
    logger.info("registered candidate", extra={"version": summary["version"], "metrics": summary["metrics"]})
    metrics.add_metric(name="ModelsTrained", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=summary["seconds"])
    return summary
