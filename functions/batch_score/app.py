"""Batch scoring function: the steps of the BatchScoring state machine, chosen by ``action``.

- ``{"action": "plan", "job_id", "job": {"input": "s3://...", "output": "s3://...", "model_version"?, "options"?}}``
  checks the inputs against the model's schema and writes the chunk manifest the Distributed Map reads;
- ``{"action": "score_chunk", "job_id", "chunk": {...}, "output", "model_version", "options"}`` scores one
  chunk; idempotent (Powertools, DynamoDB): a retried chunk returns the first run's counts and writes nothing twice;
- ``{"action": "finish", "job_id", "plan": {...}, "chunks": [counts...]}`` reconciles counts and records the summary;
- ``{"action": "fail", "job_id", "error": {"Error", "Cause"}}`` records why the job failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from churnguard.bootstrap import build_batch, build_services
from churnguard.entrypoints.events import BadEventError

logger = Logger()
metrics = Metrics()

_batch = build_batch(build_services())
_idempotency = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600, raise_on_no_idempotency_key=True)
_persistence = DynamoDBPersistenceLayer(
    table_name=_batch.settings.jobs_table or "unset-BATCH_JOBS_TABLE",
    key_attr="pk",
    boto3_client=_batch.services.clients.dynamodb,
)


@idempotent_function(data_keyword_argument="chunk_job", persistence_store=_persistence, config=_idempotency)
def _score_chunk(chunk_job: dict[str, Any]) -> dict[str, Any]:
    return _batch.score_chunk(chunk_job)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _idempotency.register_lambda_context(context)  # a timed-out chunk's lock expires with the invocation
    action, job_id = event.get("action"), event.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise BadEventError("event must carry a 'job_id'")
    logger.append_keys(job_id=job_id, action=action)
    if action == "plan":
        job = event.get("job") or {}
        plan = _batch.plan(job_id, job if isinstance(job, dict) else {})
        logger.info("planned", extra={"chunks": plan["chunks"], "model_version": plan["model_version"]})
        return plan
    if action == "score_chunk":
        chunk_job = {k: event.get(k) for k in ("job_id", "chunk", "output", "model_version", "options")}
        counts = _score_chunk(chunk_job=chunk_job)
        metrics.add_metric(name="RowsScored", unit=MetricUnit.Count, value=counts["scored"])
        metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=counts["rejected"])
        return counts
    if action == "finish":
        summary = _batch.finish(job_id, event.get("plan") or {}, event.get("chunks") or [])
        logger.info(
            "job finished", extra={k: summary[k] for k in ("rows_in", "scored", "rejected", "duration_seconds")}
        )
        return summary
    if action == "fail":
        record = _batch.fail(job_id, event.get("error"))
        logger.error("job failed", extra={"reason": record["reason"]})
        metrics.add_metric(name="BatchJobsFailed", unit=MetricUnit.Count, value=1)
        return record
    raise BadEventError(f"unknown action {action!r}: use plan, score_chunk, finish or fail")
