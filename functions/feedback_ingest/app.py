"""Feedback ingest function: a CSV of outcomes dropped under ``feedback/`` in the model bucket.

An S3 "Object Created" event (through EventBridge in the stack; a classic S3 notification
works too, e.g. ``sam local invoke -e events/feedback_ingest.json``) -> each file is parsed, good rows
stored once (conditional writes), bad rows reported, never stored. The report lands beside it under
``feedback-reports/`` (outside ``feedback/``, so it does not trigger this function again):

    customer_id,churned,observed_date
    7590-VHVEG,yes,2026-05-01
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from churnguard.bootstrap import build_outcome_store, customer_hash_key
from churnguard.domain.errors import StorageError
from churnguard.domain.outcomes import ingest_feedback_csv
from churnguard.settings import get_settings

logger = Logger()
metrics = Metrics()

_settings = get_settings()
_settings.require_outcomes()
_s3 = boto3.client("s3")
_store = build_outcome_store(_settings)
_hash_key = customer_hash_key(_settings)

REPORT_PREFIX = "feedback-reports/"


def report_key(key: str) -> str:
    name = key[len("feedback/") :] if key.startswith("feedback/") else key
    return f"{REPORT_PREFIX}{name}.report.json"


def dropped_files(event: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(bucket, key, key_is_url_encoded) from an S3 notification or an EventBridge "Object Created" event."""
    if event.get("source") == "aws.s3":
        detail = event.get("detail") or {}
        return [(detail["bucket"]["name"], detail["object"]["key"], False)]
    return [(r["s3"]["bucket"]["name"], r["s3"]["object"]["key"], True) for r in event.get("Records", [])]


def _read(bucket: str, key: str, encoded: bool) -> tuple[str, bytes]:
    # S3 notifications URL-encode the key; for EventBridge events try it as given, then decoded.
    keys = [unquote_plus(key)] if encoded else list(dict.fromkeys([key, unquote_plus(key)]))
    for k in keys:
        try:
            return k, _s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchKey" and k != keys[-1]:
                continue
            # Raising makes Lambda retry the asynchronous event; a retry stores nothing twice.
            raise StorageError(f"cannot read s3://{bucket}/{k}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot read s3://{bucket}/{k}: {e}") from e
    raise AssertionError("unreachable")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    files = []
    for bucket, raw_key, encoded in dropped_files(event):
        if not raw_key.lower().endswith(".csv"):
            logger.info("not a CSV, ignored", extra={"key": raw_key})
            continue
        key, data = _read(bucket, raw_key, encoded)
        report = ingest_feedback_csv(data, _hash_key, _store, source=f"s3://{bucket}/{key}")
        report["report"] = f"s3://{bucket}/{report_key(key)}"
        _s3.put_object(
            Bucket=bucket,
            Key=report_key(key),
            Body=json.dumps(report, indent=2, default=str).encode(),
            ContentType="application/json",
        )
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
