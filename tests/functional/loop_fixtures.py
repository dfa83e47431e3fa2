"""Helpers for the retraining-loop tests: a registered champion, a prediction log in S3, held-out data."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import boto3
import numpy as np

from churnguard.domain.bundle import ModelBundle
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.model_registry import ModelVersion
from churnguard.domain.prediction_log import partition_prefix, prediction_record, to_jsonl
from tests.conftest import synth_frame

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)


def register(
    services,
    bundle: ModelBundle,
    version: str | None = None,
    data_sha256: str = "0" * 64,
    created_at: str | None = None,
) -> str:
    """Store ``bundle`` (optionally under another version id) and register it as a candidate
    (``created_at``: when it was trained, default now)."""
    if version:
        bundle = ModelBundle(
            version=version, model_text=bundle.model_text, metadata={**bundle.metadata, "version": version}
        )
    stored = services.store.put(bundle)
    services.registry.register(
        ModelVersion(
            version=bundle.version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
            checksums=stored["files"],
            metrics=dict(bundle.metadata["metrics"]),
            lineage={"data_source": "s3://churnguard-modelbucket/data/train.csv", "data_sha256": data_sha256},
            **({"created_at": created_at} if created_at else {}),
        )
    )
    return bundle.version


def champion(services, trained, created_at: str | None = None) -> str:
    version = register(services, trained[0], created_at=created_at)
    services.registry.promote(version, reason="test")
    return version


def log_records(predictor, n=1500, seed=21, shift=None, day=DAY - timedelta(days=1), variant="champion"):
    """Prediction-log records for n generated customers, scored by ``predictor`` (features shifted first)."""
    frame = synth_frame(n, seed=seed)
    names = predictor.schema.feature_names
    rows = frame[names].to_dict("records")
    if shift == "tenure_halved":
        for r in rows:
            r["tenure"] = str(int(round(int(r["tenure"]) / 2)))
    X = FeatureEncoder(predictor.schema).encode_frame(frame[names].assign(tenure=[r["tenure"] for r in rows]))
    p = predictor.probabilities(X)
    ts = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    return [
        prediction_record(
            features=r,
            prediction={
                "model_version": predictor.version,
                "churn_probability": float(p[i]),
                "will_churn": bool(p[i] >= predictor.threshold),
            },
            variant=variant,
            customer_key=f"k{seed}-{i}",
            request_id=f"r{i}",
            feature_names=names,
            ts=ts + timedelta(seconds=i),
        )
        for i, r in enumerate(rows)
    ], (frame["Churn"] == "Yes").to_numpy()


def write_log(bucket: str, records, day=DAY - timedelta(days=1), part=0) -> str:
    key = f"{partition_prefix(day)}part-{part}.jsonl"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=to_jsonl(records))
    return key


def put_csv(bucket: str, key: str, n: int, seed: int, shuffle_labels: bool = False) -> str:
    frame = synth_frame(n, seed=seed)
    if shuffle_labels:
        frame["Churn"] = np.random.default_rng(seed).permutation(frame["Churn"].to_numpy())
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())
    return f"s3://{bucket}/{key}"


def keys(bucket: str, prefix: str) -> list[str]:
    resp = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def put_outcomes(table: str, outcomes) -> int:
    """Outcomes written as DynamoOutcomeStore lays them out, 25 a request: setting up thousands through its
    one-at-a-time conditional puts costs a minute under moto."""
    items = [
        {
            "PutRequest": {
                "Item": {
                    "customer_key": {"S": o.customer_key},
                    "observed_date": {"S": o.observed_date.isoformat()},
                    "churned": {"BOOL": bool(o.churned)},
                    "source": {"S": "test"},
                    "received_at": {"S": "2026-01-01T00:00:00.000000Z"},
                }
            }
        }
        for o in outcomes
    ]
    ddb = boto3.client("dynamodb")
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: items[i : i + 25]})
    return len(items)
